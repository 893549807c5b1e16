"""The options that official weights select (pgen/models/official_stylegan2.py and
official_r3gan.py set them), each against its definition: StyleGAN2-ADA's minibatch stddev
(strided groups, epsilon 1e-8), stored noise_const images, the discriminator's own label
mapping depth, and R3GAN's zero-border resampling; and that the defaults are unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.configs import fashion_mnist_stylegan2
from pgen.errors import ConfigError
from pgen.models import build_models, layers, r3gan, resample

pytestmark = pytest.mark.usefixtures("fast_compile")


def _official_minibatch_std(x, group_size):
  """StyleGAN2-ADA's MinibatchStdLayer (one channel) by its definition, NHWC."""
  n = x.shape[0]
  group = min(group_size, n)
  y = x.reshape(group, -1, *x.shape[1:]).astype(np.float64)
  std = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + 1e-8)  # (n/G, H, W, C)
  per_group = std.mean(axis=(1, 2, 3))
  extra = np.tile(per_group, group)[:, None, None, None] * np.ones((1, *x.shape[1:3], 1))
  return np.concatenate([x, extra], axis=-1)


def test_strided_minibatch_std_is_stylegan2_adas_layer():
  x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype(np.float32)
  layer = layers.MinibatchStdDev(4, strided=True, epsilon=1e-8)
  ours = layer.apply({}, jnp.asarray(x))
  np.testing.assert_allclose(ours, _official_minibatch_std(x, 4), rtol=1e-6, atol=1e-6)
  consecutive = layers.MinibatchStdDev(4).apply({}, jnp.asarray(x))
  assert not np.allclose(consecutive[..., -1], ours[..., -1])  # Other groups.


def _stylegan2_config(**model):
  config = fashion_mnist_stylegan2.get_config("smoke")
  for key, value in model.items():
    config.model[key] = value
  return config_lib.resolve(config)


def test_stored_noise_const_starts_as_the_derived_noise_and_renders_from_the_state():
  z = jax.random.normal(jax.random.PRNGKey(1), (2, 16))
  generators = {stored: build_models(_stylegan2_config(stored_noise_const=stored),
                                     (32, 32, 1))[0] for stored in (False, True)}
  variables = jax.jit(generators[True].init)(jax.random.PRNGKey(0), z)
  stored_noise = variables["batch_stats"]["synthesis"]
  assert stored_noise["b8x8_conv0"]["noise_const"].shape == (8, 8)
  derived = {"params": variables["params"],
             "batch_stats": {"mapping": variables["batch_stats"]["mapping"]}}
  silenced = {"params": variables["params"], "batch_stats": {
      **variables["batch_stats"], "synthesis": jax.tree_util.tree_map(jnp.zeros_like,
                                                                      stored_noise)}}

  def render(generator):
    return jax.jit(lambda v: {mode: generator.apply(v, z, noise_mode=mode)
                              for mode in ("const", "none")})

  with_derived = render(generators[False])(derived)
  with_stored = render(generators[True])
  np.testing.assert_array_equal(with_derived["const"], with_stored(variables)["const"])
  np.testing.assert_allclose(with_stored(silenced)["const"], with_stored(variables)["none"],
                             rtol=0, atol=1e-6)


def test_d_mapping_layers_sets_the_depth_of_the_discriminators_label_mapping():
  config = _stylegan2_config(conditioning="projection", mapping_layers=2, d_mapping_layers=3)
  generator, discriminator = build_models(config, (32, 32, 1), num_classes=5)
  labels = jnp.zeros((2,), jnp.int32)
  key = jax.random.PRNGKey(0)
  d_params = jax.eval_shape(discriminator.init, key, jnp.zeros((2, 32, 32, 1)), labels)
  g_params = jax.eval_shape(generator.init, key, jnp.zeros((2, 16)), labels)
  assert sorted(d_params["params"]["label_mapping"]) == ["embed", "fc0", "fc1", "fc2"]
  assert sorted(g_params["params"]["mapping"]) == ["embed", "fc0", "fc1"]


def test_minibatch_std_form_is_refused_outside_stylegan2():
  config = fashion_mnist_stylegan2.get_config("smoke")
  config.model.name = "dcgan"
  config.loss.pl_weight = 0.0
  config.model.minibatch_std_form = "stylegan2_ada"
  with pytest.raises(ConfigError, match="model.minibatch_std_form='stylegan2_ada' is read by "):
    config_lib.resolve(config)


@pytest.mark.parametrize("up", (True, False))
def test_zero_border_resampling_is_upfirdn2d_with_zero_padding(up):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  taps = r3gan.RESAMPLE_TAPS
  expected = resample.upsample_2x(x, taps) if up else resample.downsample_2x(x, taps)
  ours = r3gan.upsample(x, "zeros") if up else r3gan.downsample(x, "zeros")
  np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
  edge = r3gan.upsample(x) if up else r3gan.downsample(x)
  interior = (slice(None), slice(2, -2), slice(2, -2)) if up else (
      slice(None), slice(1, -1), slice(1, -1))
  np.testing.assert_allclose(edge[interior], ours[interior], rtol=0, atol=1e-6)
  assert not np.allclose(edge, ours)  # Only the borders differ.
