"""StyleGAN2's pieces against references: FIR resampling, modulated convolution, the
mapping network, path length; its networks at square and non-square sizes; truncation,
noise modes and style mixing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from pgen import config as config_lib
from pgen.configs import fashion_mnist_stylegan2
from pgen.core import sharding
from pgen.gan import regularizers
from pgen.gan.state import build, lazy_regularization_ratios
from pgen.generation import generators
from pgen.models import build_models, layers, modulated, resample, stylegan2

pytestmark = pytest.mark.usefixtures("fast_compile")  # Numbers are compared with references.


def _reference_upfirdn(x, taps, up, down, padding, gain):
  """upfirdn2d in NumPy, one loop per step: zeros inserted, padded (negative crops), a 2-D
  convolution with the outer product of the taps, every `down`-th pixel."""
  b, h, w, c = x.shape
  upsampled = np.zeros((b, h * up, w * up, c))
  upsampled[:, ::up, ::up] = x
  x0, x1, y0, y1 = padding
  padded = np.pad(upsampled, ((0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0)),
                              (0, 0)))
  padded = padded[:, max(-y0, 0):padded.shape[1] - max(-y1, 0),
                  max(-x0, 0):padded.shape[2] - max(-x1, 0)]
  kernel = np.outer(taps, taps) * gain
  out = np.stack([np.stack([scipy.signal.convolve2d(padded[i, ..., j], kernel, mode="valid")
                            for j in range(c)], -1) for i in range(b)])
  return out[:, ::down, ::down]


@pytest.mark.parametrize("up, down, padding", [
    (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (3, 0, -1, 2)), (2, 2, (1, 2, 0, 1))])
def test_upfirdn2d_equals_a_numpy_reference(up, down, padding):
  x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype(np.float32)
  taps = np.asarray([1.0, 3.0, 2.0, 1.0], np.float32) / 7  # Asymmetric: convolution, not
  got = resample.upfirdn2d(jnp.asarray(x), taps, up=up, down=down, padding=padding, gain=3.0)
  want = _reference_upfirdn(x, taps, up, down, padding, 3.0)  # correlation, is checked.
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_transposed_convolution_equals_zero_insertion_and_a_same_convolution():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
  stuffed = jnp.zeros((2, 10, 12, 3)).at[:, ::2, ::2].set(x)
  want = jax.lax.conv_general_dilated(stuffed, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  got = modulated.transposed_conv_2x(x, kernel)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def _per_sample_reference(x, kernel, styles, demodulate, up):
  """Modulated convolution one sample at a time, with that sample's own weight."""
  outputs = []
  for xi, si in zip(x, styles):
    w = kernel * si[None, None, :, None]
    if demodulate:
      w = w / jnp.sqrt(jnp.sum(jnp.square(w), axis=(0, 1, 2)) + 1e-8)
    outputs.append(modulated.resampling_conv(xi[None], w, up=up)[0])
  return jnp.stack(outputs)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("demodulate, up", [(True, False), (True, True), (False, False)])
def test_modulated_convolution_equals_a_per_sample_convolution(fused, demodulate, up):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(3, 6, 4, 5)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 5, 7)), jnp.float32)
  styles = jnp.asarray(rng.uniform(0.2, 2.0, size=(3, 5)), jnp.float32)
  got = modulated.modulated_conv(x, kernel, styles, demodulate=demodulate, fused=fused, up=up)
  want = _per_sample_reference(x, kernel, styles, demodulate, up)
  assert got.shape == ((3, 12, 8, 7) if up else (3, 6, 4, 7))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-4, atol=2e-4)


def test_demodulation_gives_unit_variance_outputs_for_unit_variance_inputs_and_weights():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(16, 16, 16, 64)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 64, 32)), jnp.float32)
  styles = jnp.asarray(rng.normal(size=(16, 64)), jnp.float32)  # Any scale: demodulated.
  y = modulated.modulated_conv(x, kernel, styles * 5.0)
  interior = np.asarray(y[:, 1:-1, 1:-1])  # Zero padding lowers the border's variance.
  assert abs(interior.var() - 1.0) < 0.05, interior.var()
  assert abs(interior.mean()) < 0.05


def test_the_mapping_network_of_depth_8_and_width_512_has_8_dense_layers_of_512():
  kit = layers.LayerKit(activation=modulated.leaky_relu)
  mapping = stylegan2.MappingNetwork(512, 8, 0.01, 0, kit)
  variables = mapping.init(jax.random.PRNGKey(0), jnp.zeros((2, 512)), None)
  count = sum(p.size for p in jax.tree.leaves(variables["params"]))
  assert count == 8 * (512 * 512 + 512)
  assert variables["batch_stats"]["w_avg"].shape == (1, 512)


def _tiny_config(**changes):
  config = fashion_mnist_stylegan2.get_config("smoke")
  for key, value in changes.items():
    section, _, name = key.rpartition(".")
    node = config
    for part in filter(None, section.split(".")):
      node = node[part]
    node[name] = value
  return config_lib.resolve(config)


@pytest.mark.parametrize("height, width, base", [  # The fast suite keeps a non-square frame.
    pytest.param(32, 32, (4, 4), marks=pytest.mark.slow), (32, 24, (8, 6)),
    pytest.param(64, 48, (8, 6), marks=pytest.mark.slow),
    pytest.param(128, 96, (8, 6), marks=pytest.mark.slow)])
def test_networks_make_and_score_non_square_frames_from_a_non_square_constant(height, width,
                                                                             base):
  config = _tiny_config(**{"model.conditioning": "projection"})
  generator, discriminator = build_models(config, (height, width, 3), 10)
  z, labels = jnp.ones((4, config.model.latent_dim)), jnp.arange(4)
  g_vars = generator.init(jax.random.PRNGKey(0), z, labels)
  assert g_vars["params"]["synthesis"]["const"].shape[:2] == base
  images = generator.apply(g_vars, z, labels)
  assert images.shape == (4, height, width, 3) and images.dtype == jnp.float32
  d_vars = discriminator.init(jax.random.PRNGKey(1), images, labels)
  logits, class_logits = discriminator.apply(d_vars, images, labels)
  assert logits.shape == (4,) and class_logits is None


@pytest.mark.slow  # 30 s; the fast suite checks the penalty's running mean and its step.
def test_path_length_penalty_gradient_matches_finite_differences():
  """In float64 on a tiny generator: d penalty / d params along a random direction. With the
  running mean held (decay 0): its update from the batch is not differentiated, as in
  StyleGAN2, which finite differences would see."""
  with jax.enable_x64(True):
    kit = layers.LayerKit(activation=modulated.leaky_relu, dtype=jnp.float64,
                          param_dtype=jnp.float64)
    synthesis = stylegan2.SynthesisNetwork((8, 8), 1, (4, 3), kit)
    ws = jax.random.normal(jax.random.PRNGKey(0), (3, stylegan2.num_ws((8, 8)), 4), jnp.float64)
    params = synthesis.init(jax.random.PRNGKey(1), ws, "const")["params"]
    key = jax.random.PRNGKey(2)

    def penalty(params):
      value, _ = regularizers.path_length_penalty(
          lambda w: synthesis.apply({"params": params}, w, "const"), ws, key,
          jnp.asarray(0.3, jnp.float64), 0.0)
      return value

    direction = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(3), p.shape,
                                                         jnp.float64), params)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(jax.grad(penalty)(params)),
                                                   jax.tree.leaves(direction)))
    eps = 1e-5
    shifted = lambda sign: jax.tree.map(lambda p, d: p + sign * eps * d, params, direction)  # noqa: E731
    numeric = (penalty(shifted(1)) - penalty(shifted(-1))) / (2 * eps)
    assert abs(float(analytic)) > 1e-6
    np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6)


def test_path_length_mean_moves_by_decay_towards_the_batch_mean_and_is_not_differentiated():
  ws = jnp.ones((4, 2, 3))
  penalty, mean = regularizers.path_length_penalty(lambda w: jnp.tile(w[:, :1, :1, None],
                                                                      (1, 2, 2, 1)),
                                                   ws, jax.random.PRNGKey(0), 0.5, 0.25)
  lengths_mean = (float(mean) - 0.75 * 0.5) / 0.25
  assert 0 < lengths_mean and np.isfinite(float(penalty))
  grad = jax.grad(lambda m: regularizers.path_length_penalty(
      lambda w: w[:, :1, :1, None] * 2.0, ws, jax.random.PRNGKey(0), m, 0.25)[1])(0.5)
  assert float(grad) == 0.0


def test_separate_lazy_regularization_scales_adam_as_stylegan2():
  config = _tiny_config(**{"loss.r1_weight": 1.0, "loss.r1_every": 16, "loss.pl_every": 4})
  assert lazy_regularization_ratios(config) == (4 / 5, 16 / 17)
  joint = _tiny_config(**{"loss.lazy_regularization": "joint", "loss.r1_weight": 1.0})
  assert lazy_regularization_ratios(joint) == (1.0, 1.0)


def _trained_generator(conditioning="none", **options):
  """The tiny generator with w_avg set away from 0, as an EMA generator would be."""
  config = _tiny_config(**{"model.conditioning": conditioning})
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1), 10)
  state = setup.init()
  w_avg = state.g_batch_stats["mapping"]["w_avg"]
  stats = {"mapping": {"w_avg": jax.random.normal(jax.random.PRNGKey(5), w_avg.shape)}}
  state = state.replace(g_batch_stats=stats)
  return generators.from_state(setup, state, config=config, image_shape=(32, 32, 1),
                               class_names=tuple(str(i) for i in range(10)), source="test",
                               options=generators.RenderOptions(**options))


def test_truncation_zero_renders_w_avg_and_one_renders_as_untruncated():
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  plain = _trained_generator().render(z, None)
  np.testing.assert_array_equal(_trained_generator(truncation=1.0).render(z, None), plain)
  collapsed = _trained_generator(truncation=0.0).render(z, None)
  assert all(np.array_equal(collapsed[0], image) for image in collapsed)
  assert not all(np.array_equal(plain[0], image) for image in plain)


def test_truncation_of_a_conditional_generator_pulls_towards_its_class_mean():
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  labels = np.asarray([3, 3, 7, 7], np.int32)
  images = _trained_generator("projection", truncation=0.0).render(z, labels)
  np.testing.assert_array_equal(images[0], images[1])
  np.testing.assert_array_equal(images[2], images[3])
  assert not np.array_equal(images[0], images[2])


def test_noise_modes_const_and_none_are_fixed_random_follows_each_latent():
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  const = _trained_generator(noise_mode="const")
  np.testing.assert_array_equal(const.render(z, None), const.render(z, None))
  np.testing.assert_array_equal(const.render(z, None), _trained_generator().render(z, None))
  noisy = _trained_generator(noise_mode="random")
  first = noisy.render(z, None)
  np.testing.assert_array_equal(noisy.render(z[1:], None), first[1:])  # Per image, not batch.
  assert first.shape == (3, 32, 32, 1)


def test_style_mixing_takes_the_coarse_layers_from_one_latent_and_the_rest_from_the_other():
  generator = _trained_generator()
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  coarse, fine = z[:2], z[2:]
  np.testing.assert_array_equal(generator.mix_styles(coarse, fine, None, generator.num_ws),
                                generator.render(coarse, None))
  np.testing.assert_array_equal(generator.mix_styles(coarse, fine, None, 0),
                                generator.render(fine, None))
  mixed = generator.mix_styles(coarse, fine, None, generator.num_ws // 2)
  assert not np.array_equal(mixed, generator.render(coarse, None))
  assert not np.array_equal(mixed, generator.render(fine, None))
