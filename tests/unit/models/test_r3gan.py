"""The R3GAN family (pgen/models/r3gan.py): shapes and dtypes, blocks that start as the
identity, MSR initialization, interpolating resampling, its config rules and a train step."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.errors import ConfigError
from pgen.gan import objectives
from pgen.gan.state import build
from pgen.gan.step_spec import LazyPhases, StepSpec
from pgen.models import build_models, layers, r3gan

pytestmark = pytest.mark.usefixtures("fast_compile")

NUM_CLASSES = 10
LATENT_DIM = 8
KIT = layers.LayerKit(kernel_init=r3gan.msr_init(), activation=r3gan.leaky_relu)  # build's


def make_config(**model_overrides):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.model.name = "r3gan"
  config.model.latent_dim = LATENT_DIM
  config.model.g_width = 8
  config.model.d_width = 8
  config.model.max_width = 16
  config.model.blocks_per_stage = 1
  config.model.cardinality = 4
  for key, value in model_overrides.items():
    config.model[key] = value
  return config_lib.resolve(config)


def _abstract(config, image_shape, batch=4):
  """(generator, discriminator, their variables' and outputs' shapes): traced, not run."""
  generator, discriminator = build_models(config, image_shape, num_classes=NUM_CLASSES)
  z = jax.ShapeDtypeStruct((batch, LATENT_DIM), jnp.float32)
  labels = jax.ShapeDtypeStruct((batch,), jnp.int32)
  key = jax.random.PRNGKey(0)
  g_vars = jax.eval_shape(functools.partial(generator.init, train=False), key, z, labels)
  images = jax.eval_shape(functools.partial(generator.apply, train=True), g_vars, z, labels)
  d_vars = jax.eval_shape(functools.partial(discriminator.init, train=False), key, images,
                          labels)
  outputs = jax.eval_shape(functools.partial(discriminator.apply, train=True), d_vars, images,
                           labels)
  return generator, discriminator, g_vars, d_vars, images, outputs


@pytest.mark.parametrize("image_shape, conditioning, dtype", [
    ((32, 32, 1), "none", "float32"),
    pytest.param((64, 48, 3), "projection", "float32", marks=pytest.mark.slow),
    ((32, 32, 3), "acgan", "float32"), ((64, 48, 3), "acgan", "bfloat16")])
def test_output_shapes_and_dtypes(image_shape, conditioning, dtype):
  # Minibatch stddev (one more channel, folded back by a 1x1 conv) in one case.
  config = make_config(conditioning=conditioning, dtype=dtype,
                       minibatch_std=2 if conditioning == "projection" else 0)
  _, _, g_vars, d_vars, images, (logits, class_logits) = _abstract(config, image_shape)
  assert set(g_vars) == {"params"} and set(d_vars) == {"params"}  # No batch statistics.
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves((g_vars, d_vars)))
  assert images.shape == (4, *image_shape) and images.dtype == jnp.float32
  assert logits.shape == (4,) and logits.dtype == jnp.float32
  if conditioning == "acgan":
    assert class_logits.shape == (4, NUM_CLASSES) and class_logits.dtype == jnp.float32
  else:
    assert class_logits is None
  base = (8, 6) if image_shape[:2] == (64, 48) else (4, 4)  # layers.base_size
  assert g_vars["params"]["GenerativeBasis_0"]["basis"].shape == (*base, 16)
  assert d_vars["params"]["basis"].shape == (*base, 1, 16)  # Depthwise, over the whole map.
  if conditioning == "projection":
    assert d_vars["params"]["minibatch_std_project"]["kernel"].shape == (17, 16)


def _conv_dtypes(function, *args):
  jaxpr = jax.make_jaxpr(function)(*args)
  return {v.aval.dtype for eqn in jaxpr.eqns if eqn.primitive.name == "conv_general_dilated"
          for v in eqn.invars}


def test_bfloat16_convolutions_compute_in_bfloat16():
  config = make_config(dtype="bfloat16")
  generator, discriminator, g_vars, d_vars, images, _ = _abstract(config, (32, 32, 1))
  z = jnp.zeros((4, LATENT_DIM))
  assert _conv_dtypes(lambda v: generator.apply(v, z), g_vars) == {jnp.dtype(jnp.bfloat16)}
  assert _conv_dtypes(lambda v, x: discriminator.apply(v, x), d_vars, images) == {
      jnp.dtype(jnp.bfloat16)}


def test_stage_groups_keep_channels_per_group():
  assert r3gan.stage_groups([256, 512, 768, 768], 2, 96) == [32, 64, 96, 96]  # The paper's.
  assert r3gan.stage_groups([8, 16, 16], 2, 4) == [2, 4, 4]
  assert r3gan.stage_groups([8, 16, 32], 2, 2) is None  # The widest's half: not whole.
  assert r3gan.stage_groups([8, 16], 2, 3) is None


def test_the_grouped_convolution_as_a_dense_one_is_the_same_function():
  """model.grouped_conv_dense changes how the 3x3 convolution is computed, not what: the
  same parameters give the same output and gradients."""
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 6, 5, 16))
  forms = [r3gan.GroupedConv3x3(24, 4, KIT, dense, gain=1.0) for dense in (False, True)]
  params = forms[0].init(jax.random.PRNGKey(4), x)
  outputs = [form.apply(params, x) for form in forms]
  np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
  grads = [jax.grad(lambda p, v, f=form: jnp.sum(f.apply(p, v) ** 2), argnums=(0, 1))(params, x)
           for form in forms]
  for dense, grouped in zip(jax.tree.leaves(grads[1]), jax.tree.leaves(grads[0])):
    np.testing.assert_allclose(dense, grouped, rtol=1e-4, atol=1e-4)


def test_a_block_diagonal_kernel_joins_each_group_s_inputs_to_its_outputs_only():
  kernel = jnp.arange(1, 1 + 3 * 3 * 2 * 6, dtype=jnp.float32).reshape(3, 3, 2, 6)
  dense = r3gan.block_diagonal(kernel, groups=3)
  assert dense.shape == (3, 3, 6, 6)
  for group in range(3):
    inputs, outputs = slice(2 * group, 2 * group + 2), slice(2 * group, 2 * group + 2)
    np.testing.assert_array_equal(dense[:, :, inputs, outputs], kernel[:, :, :, outputs])
  assert int(jnp.count_nonzero(dense)) == kernel.size


def _real_variables(module, *inputs):
  return jax.jit(module.init)(jax.random.PRNGKey(0), *inputs)


def test_residual_blocks_start_as_the_identity_with_msr_initialization():
  width, expansion, groups, num_blocks = 64, 2, 8, 6
  gain = r3gan.block_gain(num_blocks)
  np.testing.assert_allclose(gain, np.sqrt(2 / 1.04) * 6 ** -0.25)
  block = r3gan.ResidualBlock(KIT, expansion, groups, gain)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, width))
  params = _real_variables(block, x)["params"]
  # N(0, gain^2 / fan_in), fan_in = input channels per group * kernel area.
  for name, fan_in in (("expand", width), ("grouped", width * expansion // groups * 9)):
    kernel = np.asarray(params[name]["kernel"])
    assert abs(kernel.mean()) < 0.05 * gain / np.sqrt(fan_in)
    np.testing.assert_allclose(kernel.var(), gain ** 2 / fan_in, rtol=0.08)
  assert params["grouped"]["kernel"].shape == (3, 3, width * expansion // groups, 128)
  assert not np.any(params["project"]["kernel"])  # The last convolution starts at zero.
  assert not np.any(params["act1"]["bias"]) and not np.any(params["act2"]["bias"])
  np.testing.assert_array_equal(jax.jit(block.apply)({"params": params}, x), x)


@pytest.mark.parametrize("up, features", [(True, 6), (False, 4), (False, 6)])
def test_resampling_keeps_a_constant_image_constant(up, features):
  layer = r3gan.Resample(features, KIT, up=up)
  x = jnp.broadcast_to(jnp.arange(1.0, 5.0), (2, 8, 6, 4))  # Constant per channel.
  y = jax.jit(layer.apply)(_real_variables(layer, x), x)
  assert y.shape == ((2, 16, 12, features) if up else (2, 4, 3, features))
  np.testing.assert_allclose(y, jnp.broadcast_to(y[:, :1, :1], y.shape), rtol=1e-5, atol=1e-6)
  if features == 4:  # No projection: the same constants.
    np.testing.assert_allclose(y, jnp.broadcast_to(x[:, :1, :1], y.shape), rtol=1e-6)


def _bilinear_2x(x: np.ndarray, axis: int) -> np.ndarray:
  """Half-pixel-centre bilinear 2x along `axis`, edges repeated: output 2i is 3/4 of pixel i
  and 1/4 of pixel i - 1, output 2i + 1 3/4 of pixel i and 1/4 of pixel i + 1."""
  n = x.shape[axis]
  before = np.take(x, np.maximum(np.arange(n) - 1, 0), axis)
  after = np.take(x, np.minimum(np.arange(n) + 1, n - 1), axis)
  pair = np.stack([0.25 * before + 0.75 * x, 0.75 * x + 0.25 * after], axis + 1)
  return pair.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])


def test_upsampling_is_bilinear():
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (1, 6, 4, 2)))
  np.testing.assert_allclose(jax.jit(r3gan.upsample)(x), _bilinear_2x(_bilinear_2x(x, 1), 2),
                             atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    ({"model.cardinality": 3},
     r"^model[.]cardinality=3 does not split every stage of the R3GAN generator .* choose one "
     r"of \[2, 4, 8, 16, 32\]"),  # Widths (8, 16, 16, 16).
    ({"model.d_width": 2, "model.cardinality": 4},
     r"^model[.]cardinality=4 does not split every stage of the R3GAN discriminator"),
    ({"model.expansion": 0}, r"^model[.]expansion=0 must be an integer >= 1"),
    ({"model.blocks_per_stage": 0}, r"^model[.]blocks_per_stage=0 must be an integer >= 1"),
    ({"model.d_spectral_norm": True},
     r"^model[.]d_spectral_norm=True is not supported by model.name='r3gan'"),
    ({"model.attention_resolution": 16}, r"attention_resolution=16 is only supported by"),
])
def test_config_rules_name_the_key(overrides, message):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.model.name = "r3gan"
  config.model.g_width = config.model.d_width = 8
  config.model.max_width = 16
  for key, value in overrides.items():
    config.model[key.split(".")[1]] = value
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(config)


def test_other_families_ignore_r3gan_s_keys():
  config = fashion_mnist_dcgan.get_config("smoke")
  config.model.cardinality = 3  # Would not fit r3gan's widths: dcgan does not read it.
  assert config_lib.resolve(config).model.cardinality == 3


@pytest.fixture(scope="module")
def setup_and_state(fast_compile):
  """An 8x8 conditional model's Setup and initial train state (pgen.gan.state.build): the
  smallest frame (one doubling), as compiling the train step takes most of this file's time."""
  config = fashion_mnist_dcgan.get_config("smoke")
  config.batch_size = 4
  config.data.resolution = 8
  config.model.update(name="r3gan", latent_dim=LATENT_DIM, g_width=8, d_width=8, max_width=16,
                      blocks_per_stage=1, cardinality=4, conditioning="projection")
  config = config_lib.resolve(config)
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (8, 8, 1), NUM_CLASSES)
  return config, mesh, setup, setup.init()


def test_the_state_has_no_batch_statistics_and_every_block_starts_at_zero(setup_and_state):
  _, _, _, state = setup_and_state
  assert state.g_batch_stats == {} and state.d_batch_stats == {}
  for params in (state.g_params, state.d_params):
    flat = flax.traverse_util.flatten_dict(params, sep="/")
    last = [k for k in flat if k.startswith("ResidualBlock_") and "/project/" in k]
    assert len(last) == 2  # One block per stage: the base map and one doubling.
    assert not any(np.any(flat[k]) for k in last)
    assert all(np.any(v) for k, v in flat.items() if k.endswith("kernel") and k not in last)


def test_discriminator_is_per_example_and_generator_depends_on_labels(setup_and_state):
  """No normalization: D's logit of an image depends on that image alone (as R1 and R2
  need); G joins an embedded label to z, so the class changes its images from init on."""
  _, _, setup, state = setup_and_state
  z = jnp.repeat(jax.random.normal(jax.random.PRNGKey(1), (1, LATENT_DIM)), 4, axis=0)
  labels = jnp.array([0, 1, 2, 3])
  images = jax.jit(setup.generator.apply)({"params": state.g_params}, z, labels)
  assert float(jnp.max(jnp.abs(images[1] - images[0]))) > 1e-4  # Same z, other class.
  d_apply = jax.jit(setup.discriminator.apply)
  changed = images.at[1].set(jax.random.normal(jax.random.PRNGKey(2), (8, 8, 1)))
  before = d_apply({"params": state.d_params}, images, labels)[0]
  after = d_apply({"params": state.d_params}, changed, labels)[0]
  assert abs(float(after[1] - before[1])) > 1e-5
  np.testing.assert_array_equal(np.delete(after, 1), np.delete(before, 1))


def test_a_train_step_runs_with_finite_metrics(setup_and_state):
  config, mesh, setup, state = setup_and_state
  spec = StepSpec.create(config, setup, mesh)
  batch = {"image": jnp.full((4, 8, 8, 1), 200, jnp.uint8),
           "label": jnp.arange(4, dtype=jnp.int32)}
  step = jax.jit(functools.partial(objectives.train_step, spec=spec), static_argnums=2)
  new, metrics = step(state, batch, LazyPhases())
  assert int(new.step) == 1
  assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(metrics))
  moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.g_params, new.g_params)
  assert any(jax.tree.leaves(moved))
