"""The GAN network modules: shapes, conditioning, spectral norm, minibatch stddev,
self-attention and the per-example property of the discriminator."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen.configs import fashion_mnist_dcgan, fashion_mnist_stylegan2
from pgen.models import build_models, for_dataset, layers, resnet

pytestmark = pytest.mark.usefixtures("fast_compile")

NUM_CLASSES = 10
LATENT_DIM = 16


def make_config(name="dcgan", **model_overrides):
  config = fashion_mnist_dcgan.base()
  config.model.name = name
  config.model.latent_dim = LATENT_DIM
  config.model.g_width = 8
  config.model.d_width = 8
  config.model.max_width = 32
  for key, value in model_overrides.items():
    config.model[key] = value
  return config


def init_models(config, image_shape, num_classes=NUM_CLASSES, batch=4, seed=0):
  generator, discriminator = build_models(config, image_shape, num_classes=num_classes)
  g_key, d_key, z_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  z = jax.random.normal(z_key, (batch, LATENT_DIM))
  labels = jnp.arange(batch) % NUM_CLASSES
  g_vars = generator.init(g_key, z, labels, train=False)
  d_vars = discriminator.init(d_key, jnp.zeros((batch, *image_shape)), labels, train=False)
  return generator, discriminator, g_vars, d_vars, z, labels


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
@pytest.mark.parametrize("image_size, conditioning", [
    ((32, 32), "none"), ((32, 32), "projection"), ((32, 32), "acgan"), ((64, 48), "acgan"),
    pytest.param((64, 64), "none", marks=pytest.mark.slow),
    pytest.param((128, 128), "none", marks=pytest.mark.slow)])
def test_output_shapes_and_ranges(name, image_size, conditioning):
  config = make_config(name, conditioning=conditioning)
  image_shape = (*image_size, 3)
  generator, discriminator, g_vars, d_vars, z, labels = init_models(config, image_shape)
  images, g_updates = generator.apply(g_vars, z, labels, train=True, mutable=["batch_stats"])
  assert images.shape == (4, *image_shape)
  assert float(jnp.min(images)) >= -1.0 and float(jnp.max(images)) <= 1.0
  assert set(g_updates) == {"batch_stats"}
  logits, class_logits = discriminator.apply(d_vars, images, labels, train=False)
  assert logits.shape == (4,) and logits.dtype == jnp.float32
  if conditioning == "acgan":
    assert class_logits.shape == (4, NUM_CLASSES) and class_logits.dtype == jnp.float32
  else:
    assert class_logits is None


def test_unconditional_dcgan_keeps_its_parameter_tree():
  """The default DCGAN's parameter tree is pinned: changing it breaks existing checkpoints,
  so it must be deliberate (the last change dropped G's biases in front of BatchNorm)."""
  _, _, g_vars, d_vars, _, _ = init_models(make_config(), (32, 32, 1))
  g_shapes = flax.traverse_util.flatten_dict(jax.tree.map(jnp.shape, g_vars), sep="/")
  d_shapes = flax.traverse_util.flatten_dict(jax.tree.map(jnp.shape, d_vars), sep="/")
  assert g_shapes == {
      "params/Dense_0/kernel": (16, 512),
      "params/BatchNorm_0/scale": (32,), "params/BatchNorm_0/bias": (32,),
      "params/Upsample_0/Conv_0/kernel": (2, 2, 32, 64),
      "params/BatchNorm_1/scale": (16,), "params/BatchNorm_1/bias": (16,),
      "params/Upsample_1/Conv_0/kernel": (2, 2, 16, 32),
      "params/BatchNorm_2/scale": (8,), "params/BatchNorm_2/bias": (8,),
      "params/Upsample_2/Conv_0/kernel": (2, 2, 8, 4), "params/Upsample_2/Conv_0/bias": (4,),
      "batch_stats/BatchNorm_0/mean": (32,), "batch_stats/BatchNorm_0/var": (32,),
      "batch_stats/BatchNorm_1/mean": (16,), "batch_stats/BatchNorm_1/var": (16,),
      "batch_stats/BatchNorm_2/mean": (8,), "batch_stats/BatchNorm_2/var": (8,),
  }
  assert d_shapes == {
      "params/Downsample_0/Conv_0/kernel": (2, 2, 4, 8), "params/Downsample_0/Conv_0/bias": (8,),
      "params/Downsample_1/Conv_0/kernel": (2, 2, 32, 16),
      "params/Downsample_1/Conv_0/bias": (16,),
      "params/Downsample_2/Conv_0/kernel": (2, 2, 64, 32),
      "params/Downsample_2/Conv_0/bias": (32,),
      "params/Dense_0/kernel": (512, 1), "params/Dense_0/bias": (1,),
  }


def _spectral_norm_layers(variables):
  """(stored sigma, the kernel it normalizes reshaped to a matrix) for every
  spectrally normalized layer."""
  stats = flax.traverse_util.flatten_dict(variables["batch_stats"])
  params = flax.traverse_util.flatten_dict(variables["params"])
  found = []
  for path, sigma in stats.items():
    if not path[-1].endswith("/sigma"):
      continue
    module_path = tuple(p for p in path[:-1] if not p.startswith("SpectralNorm_"))
    param_path = module_path + tuple(path[-1].split("/")[:-1])
    kernel = np.asarray(params[param_path])
    found.append((float(sigma), kernel.reshape(-1, kernel.shape[-1])))
  return found


@pytest.mark.parametrize("name", ["dcgan", pytest.param("resnet", marks=pytest.mark.slow)])
@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_spectral_norm_power_iteration_converges(name, network):
  config = make_config(name, conditioning="projection", d_spectral_norm=True,
                       g_spectral_norm=True, attention_resolution=16 if name == "resnet" else 0)
  generator, discriminator, g_vars, d_vars, z, labels = init_models(config, (32, 32, 1))
  if network == "generator":
    model, variables, inputs = generator, g_vars, z
  else:
    model, variables = discriminator, d_vars
    inputs = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32, 1))
  assert "batch_stats" in variables
  assert not any("sigma" in "/".join(p) or p[-1].endswith("/u")
                 for p in flax.traverse_util.flatten_dict(variables["params"]))

  @jax.jit
  def power_iteration(variables):
    _, updates = model.apply(variables, inputs, labels, train=True, mutable=["batch_stats"])
    return {**variables, "batch_stats": updates["batch_stats"]}

  for _ in range(200):
    variables = power_iteration(variables)
  normalized = _spectral_norm_layers(variables)
  assert len(normalized) >= 4
  for sigma, matrix in normalized:
    largest_singular_value = np.linalg.svd(matrix, compute_uv=False)[0]
    np.testing.assert_allclose(largest_singular_value / sigma, 1.0, rtol=1e-2)

  # Without train=True the power-iteration state is left alone (no mutable collection).
  model.apply(variables, inputs, labels, train=False)


@pytest.mark.parametrize("sizes", [(4,), (2, 2)])  # Four classes, or two attributes of two.
def test_conditional_batch_norm_at_init_equals_batch_norm(sizes):
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 4, 5)) * 3.0 + 1.0
  labels = jnp.array([0, 1, 2, 3, 0, 1, 2, 3])
  conditional = layers.ConditionalBatchNorm(sizes)
  cond_vars = conditional.init(jax.random.PRNGKey(1), x, labels, train=True)
  cond_out, _ = conditional.apply(cond_vars, x, labels, train=True, mutable=["batch_stats"])
  plain = nn.BatchNorm(use_running_average=False, momentum=layers.BATCH_NORM_MOMENTUM)
  plain_out, _ = plain.apply(plain.init(jax.random.PRNGKey(1), x), x, mutable=["batch_stats"])
  np.testing.assert_allclose(cond_out, plain_out, atol=1e-6)


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
def test_conditional_generator_depends_on_labels(name):
  config = make_config(name, conditioning="projection")
  generator, _, g_vars, _, z, _ = init_models(config, (32, 32, 1))
  same_z = jnp.repeat(z[:1], 2, axis=0)
  two_labels = jnp.array([0, 1])
  at_init = generator.apply(g_vars, same_z, two_labels, train=False)
  np.testing.assert_allclose(at_init[0], at_init[1], atol=1e-6)  # identity gains at init

  # Per-class gains and biases, as training makes them, separate the classes.
  def perturb(path, value):
    if any(p.key in ("gain", "bias") for p in path if hasattr(p, "key")) and value.ndim == 2:
      return value + 0.5 * jax.random.normal(jax.random.PRNGKey(len(path)), value.shape)
    return value

  trained = {**g_vars, "params": jax.tree_util.tree_map_with_path(perturb, g_vars["params"])}
  images = generator.apply(trained, same_z, two_labels, train=False)
  assert float(jnp.max(jnp.abs(images[0] - images[1]))) > 1e-3


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
def test_projection_term_is_embedding_dot_features(name):
  """logit(x, y) = dense(h(x)) + sum(E[y] * h(x)): the logit is linear in the class
  embedding E, with gradient h at row y."""
  config = make_config(name, conditioning="projection")
  _, discriminator, _, d_vars, _, _ = init_models(config, (32, 32, 1))
  images = jax.random.normal(jax.random.PRNGKey(3), (4, 32, 32, 1))
  labels = jnp.array([3, 1, 4, 0])  # distinct, so each embedding row sees one example

  def logits_for(embedding, labels):
    params = {**d_vars["params"], "class_embedding": {"embedding": embedding}}
    return discriminator.apply({"params": params}, images, labels)[0]

  embedding = d_vars["params"]["class_embedding"]["embedding"]
  logits = logits_for(embedding, labels)
  unconditional_part = logits_for(jnp.zeros_like(embedding), labels)
  features = jax.grad(lambda e: jnp.sum(logits_for(e, labels)))(embedding)[labels]  # h(x)
  projection = jnp.sum(embedding[labels] * features, axis=-1)
  np.testing.assert_allclose(logits, unconditional_part + projection, rtol=1e-5, atol=1e-5)
  assert float(jnp.max(jnp.abs(projection))) > 1e-4
  other_labels = (labels + 1) % NUM_CLASSES
  assert float(jnp.max(jnp.abs(logits_for(embedding, other_labels) - logits))) > 1e-4


def test_minibatch_stddev_matches_numpy():
  x = np.array(jax.random.normal(jax.random.PRNGKey(0), (8, 3, 5, 2)))
  x[4:] *= 3.0  # the second group varies more
  out = np.asarray(layers.MinibatchStdDev(group_size=4).apply({}, jnp.asarray(x)))
  assert out.shape == (8, 3, 5, 3)
  np.testing.assert_array_equal(out[..., :2], x)
  groups = x.reshape(2, 4, 3, 5, 2)
  expected = np.sqrt(groups.var(axis=1) + layers.MINIBATCH_STD_EPSILON).mean(axis=(1, 2, 3))
  for example in range(8):
    np.testing.assert_allclose(out[example, ..., 2], expected[example // 4], rtol=1e-5)
  assert expected[1] > 2 * expected[0]


def test_minibatch_stddev_group_must_divide_batch():
  with pytest.raises(ValueError, match=r"minibatch_std=4 does not divide .* 6 images"):
    layers.MinibatchStdDev(group_size=4).apply({}, jnp.zeros((6, 4, 4, 2)))


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
@pytest.mark.parametrize("minibatch_std", [0, 2])
def test_discriminator_is_per_example_without_minibatch_std(name, minibatch_std):
  config = make_config(name, conditioning="projection", d_spectral_norm=True,
                       minibatch_std=minibatch_std,
                       attention_resolution=16 if name == "resnet" else 0)
  _, discriminator, _, d_vars, _, labels = init_models(config, (32, 32, 1))
  images = jax.random.normal(jax.random.PRNGKey(3), (4, 32, 32, 1))
  changed = images.at[1].set(jax.random.normal(jax.random.PRNGKey(4), (32, 32, 1)))
  before = discriminator.apply(d_vars, images, labels)[0]
  after = discriminator.apply(d_vars, changed, labels)[0]
  assert abs(float(after[1] - before[1])) > 1e-5
  np.testing.assert_array_equal(after[2:], before[2:])  # other group (or other examples)
  if minibatch_std:
    assert abs(float(after[0] - before[0])) > 1e-7  # example 0 shares example 1's group
  else:
    np.testing.assert_array_equal(after[0], before[0])


def test_self_attention_is_identity_at_init():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
  attention = layers.SelfAttention()
  variables = attention.init(jax.random.PRNGKey(1), x)
  np.testing.assert_array_equal(attention.apply(variables, x), x)
  opened = {"params": {**variables["params"], "gamma": jnp.ones(())}}
  assert float(jnp.max(jnp.abs(attention.apply(opened, x) - x))) > 1e-3


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
def test_unconditional_models_need_no_labels(name):
  generator, discriminator, g_vars, d_vars, z, _ = init_models(make_config(name), (32, 32, 1))
  images = generator.apply(g_vars, z, train=False)
  logits, class_logits = discriminator.apply(d_vars, images)
  assert logits.shape == (4,) and class_logits is None


def test_conditional_models_require_labels_after_init():
  generator, discriminator, g_vars, d_vars, z, _ = init_models(
      make_config("resnet", conditioning="acgan"), (32, 32, 1))
  with pytest.raises(ValueError, match="class-conditional.*without labels"):
    generator.apply(g_vars, z, train=False)
  with pytest.raises(ValueError, match="class-conditional.*without labels"):
    discriminator.apply(d_vars, jnp.zeros((4, 32, 32, 1)))


def test_conditioning_needs_a_labelled_dataset():
  with pytest.raises(ValueError, match=r"model.conditioning='projection' needs a labelled"):
    build_models(make_config(conditioning="projection"), (32, 32, 1), num_classes=0)


def test_resnet_widths_double_towards_the_base_and_are_capped():
  assert resnet.level_widths(64, 512, 4) == [64, 128, 256, 512]
  assert resnet.level_widths(64, 128, 4) == [64, 128, 128, 128]
  assert resnet.attention_resolutions((128, 128)) == (8, 16, 32, 64)
  assert resnet.attention_resolutions((64, 48)) == (16, 32)
  assert layers.num_blocks((64, 48)) == 3


def test_auto_conditioning_is_a_projection_for_two_or_more_classes_and_none_for_one():
  config = fashion_mnist_dcgan.get_config("smoke")
  config.model.conditioning = "auto"
  assert for_dataset(config, 3).model.conditioning == "projection"
  assert for_dataset(config, 1).model.conditioning == "none"
  assert config.model.conditioning == "auto"  # A copy is decided, not the config given.
  with pytest.raises(ValueError, match="models.for_dataset"):
    build_models(config, (32, 32, 1), 3)
  config.model.conditioning = "acgan"
  assert for_dataset(config, 1) is config


SIZES = (3, 2)  # Labels combining two attributes: label = first x 2 + second, 6 classes.


@pytest.mark.parametrize("name", ["dcgan", "resnet", "stylegan2", "r3gan"])
@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_combined_labels_embed_each_attribute_so_every_combination_is_generable(
    name, conditioning):
  """Every family on labels of two attributes: one embedding row per attribute value, so a
  combination never trained has its parts' embeddings; an AC-GAN head gives normalized
  log-probabilities of the combinations, one factor per attribute."""
  if name == "stylegan2":
    config = fashion_mnist_stylegan2.get_config("smoke")
    config.model.latent_dim, config.model.conditioning = LATENT_DIM, conditioning
  else:
    config = make_config(name, conditioning=conditioning, blocks_per_stage=1, cardinality=4,
                         max_width=16)
  config.model.minibatch_std = 0  # Any batch.
  generator, discriminator = build_models(config, (32, 32, 1), 6, label_sizes=SIZES)
  z = jax.random.normal(jax.random.PRNGKey(0), (6, LATENT_DIM))
  labels = jnp.arange(6)
  g_vars = generator.init(jax.random.PRNGKey(1), z, labels, train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(2), jnp.zeros((6, 32, 32, 1)), labels)
  tables = [leaf.shape[0] for path, leaf in jax.tree_util.tree_flatten_with_path(
      {**g_vars["params"], **d_vars["params"]})[0]
            if any(getattr(p, "key", None) in ("embedding", "gain", "bias")
                   for p in path[-1:]) and leaf.ndim == 2]
  if name != "stylegan2":  # StyleGAN2 maps a multi-hot vector with a dense layer instead.
    assert tables and set(tables) == {sum(SIZES)}, tables
  images = generator.apply(g_vars, z, labels, train=False)
  assert images.shape == (6, 32, 32, 1) and bool(jnp.all(jnp.isfinite(images)))
  logits, class_logits = discriminator.apply(d_vars, images, labels)
  assert logits.shape == (6,)
  if conditioning == "acgan":
    assert class_logits.shape == (6, 6)
    np.testing.assert_allclose(jax.nn.logsumexp(class_logits, axis=-1), 0.0, atol=1e-5)
    grid = class_logits.reshape(6, 3, 2)  # log p(first) + log p(second): rank one in exp.
    np.testing.assert_allclose(grid[:, :, :1] - grid[:, :1, :1],
                               grid[:, :, 1:] - grid[:, :1, 1:], atol=1e-5)


def test_attribute_rows_split_a_combined_label_into_each_attribute_s_table_rows():
  rows = layers.attribute_rows(jnp.arange(6), (3, 2))
  np.testing.assert_array_equal(rows, [[0, 3], [0, 4], [1, 3], [1, 4], [2, 3], [2, 4]])
  np.testing.assert_array_equal(layers.attribute_rows(jnp.array([7]), (10,)), [[7]])
