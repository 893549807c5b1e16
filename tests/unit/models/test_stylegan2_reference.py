"""pgen's StyleGAN2 against references computed here in NumPy from the definitions of the
paper (Karras et al. 2020) and StyleGAN2-ADA's public code: upfirdn2d's gains, padding and
pixel centres; the up- and down-sampling convolutions (conv2d_resample's transposed
convolution and blur padding); demodulation; equalized learning rate and its multipliers;
noise inputs; toRGB; the skip generator and the residual discriminator block; the
activation and its clamp; Adam's correction for lazy regularization. The references use
no pgen helper: only the layers' parameters."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.configs import fashion_mnist_stylegan2
from pgen.gan.state import make_optimizers
from pgen.models import layers, modulated, resample, stylegan2

pytestmark = pytest.mark.usefixtures("fast_compile")  # Numbers are compared with references.

KIT = layers.LayerKit(activation=modulated.leaky_relu)
FIR = np.asarray([1.0, 3.0, 3.0, 1.0])
SQRT2 = np.sqrt(2.0)


def _lrelu(x):
  """StyleGAN2's 'lrelu': leaky ReLU of slope 0.2 times its default gain sqrt(2)."""
  return np.where(x >= 0, x, 0.2 * x) * SQRT2


def _upfirdn(x, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
  """upfirdn2d by its definition, NHWC: zeros inserted, padded (x0, x1, y0, y1), convolved
  with the 2-D filter outer(f, f) / sum * gain, every `down`-th pixel kept."""
  b, h, w, c = x.shape
  z = np.zeros((b, h * up, w * up, c))
  z[:, ::up, ::up] = x
  x0, x1, y0, y1 = pad
  z = np.pad(z, ((0, 0), (y0, y1), (x0, x1), (0, 0)))
  f = np.outer(FIR, FIR) / FIR.sum() ** 2 * gain
  oh, ow = z.shape[1] - 3, z.shape[2] - 3
  out = sum(f[3 - i, 3 - j] * z[:, i:i + oh, j:j + ow] for i in range(4) for j in range(4))
  return out[:, ::down, ::down]


def _conv(x, w, stride=1, pad=0):
  """Correlation of NHWC x with an HWIO kernel, zero padding `pad`, as torch's conv2d."""
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  k = w.shape[0]
  oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
  return sum(np.einsum("bhwi,io->bhwo", x[:, i:i + stride * oh:stride, j:j + stride * ow:stride],
                       w[i, j]) for i in range(k) for j in range(k))


def _up_modulated(x, kernel, styles):
  """StyleGAN2's modulated, demodulated up=2 convolution, one sample at a time: the weight
  times the style, demodulated; a stride-2 transposed convolution with no padding
  ((H-1)*2+3 rows); then the filter (gain up^2) with the padding conv2d_resample computes
  for a 3x3 kernel (padding 1) and a 4-tap filter. pgen's kernels are correlations, the
  original's up layer a convolution: its weight is pgen's flipped."""
  k, fw, up, p = 3, 4, 2, 1
  pad0 = p + (fw + up - 1) // 2 - (k - 1)  # = 1
  pad1 = p + (fw - up) // 2 - (k - up)  # = 1
  outs = []
  for xb, sb in zip(x, styles):
    w = kernel[::-1, ::-1] * sb[None, None, :, None]
    w = w / np.sqrt(np.sum(w ** 2, axis=(0, 1, 2)) + 1e-8)
    h, wd = xb.shape[:2]
    t = np.zeros(((h - 1) * 2 + k, (wd - 1) * 2 + k, w.shape[-1]))
    for i in range(k):
      for j in range(k):
        t[i:i + 2 * h:2, j:j + 2 * wd:2] += xb @ w[i, j]
    outs.append(_upfirdn(t[None], pad=(pad0, pad1, pad0, pad1), gain=up ** 2)[0])
  return np.stack(outs)


def _init(module, *args):
  """`module`'s initial parameters, from one compiled program (not one per operation)."""
  return jax.jit(lambda key: module.init(key, *args)["params"])(jax.random.PRNGKey(0))


def _apply(module, params, *args, **kwargs):
  """`module` applied to constant inputs, compiled as one program."""
  return jax.jit(lambda p: module.apply({"params": p}, *args, **kwargs))(params)


def _random_params(module, seed, *args):
  """N(0, 1) values in the shapes of `module`'s parameters (no init to compile)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args))["params"]
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32), shapes)


_up2, _down2 = jax.jit(resample.upsample_2x), jax.jit(resample.downsample_2x)


def _normal(seed, *shape, scale=1.0):
  return np.random.default_rng(seed).normal(size=shape) * scale


def _close(got, want, tol=1e-4):
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)


def test_upsampling_has_gain_4_keeps_constants_and_centres_the_filter_between_pixels():
  impulse = np.zeros((1, 6, 6, 1))
  impulse[0, 2, 3] = 1.0
  got = np.asarray(_up2(jnp.asarray(impulse, jnp.float32)))
  want = np.zeros((1, 12, 12, 1))  # Input pixel (i, j) feeds output rows 2i-1 .. 2i+2.
  want[0, 3:7, 5:9, 0] = np.outer(FIR, FIR) / 64 * 4
  _close(got, want, 1e-6)
  assert abs(got.sum() - 4.0) < 1e-5
  flat = _up2(jnp.full((1, 6, 5, 2), 0.7))
  _close(flat[:, 2:-2, 2:-2], 0.7, 1e-6)
  x = _normal(0, 2, 5, 7, 3)
  want = _upfirdn(x, up=2, pad=(2, 1, 2, 1), gain=4.0)  # upsample2d's padding for 4 taps.
  _close(_up2(jnp.asarray(x, jnp.float32)), want)


def test_downsampling_keeps_constants_and_matches_upfirdn2d():
  x = _normal(1, 2, 8, 6, 3)
  want = _upfirdn(x, down=2, pad=(1, 1, 1, 1))  # downsample2d's padding for 4 taps.
  _close(_down2(jnp.asarray(x, jnp.float32)), want)
  _close(_down2(jnp.full((1, 8, 6, 1), 0.3))[:, 1:-1, 1:-1], 0.3, 1e-6)


def test_upsampled_pixel_centres_are_aligned_and_up_then_down_is_the_identity():
  """A ramp upsampled is the ramp sampled at the new pixel centres (n - 1/2) / 2, no shift;
  downsampled back it is itself (away from the zero-padded borders)."""
  rows, cols = np.meshgrid(np.arange(8.0), np.arange(10.0), indexing="ij")
  ramp = (0.3 * rows - 0.2 * cols + 1.0)[None, :, :, None]
  up = np.asarray(_up2(jnp.asarray(ramp, jnp.float32)))
  r2, c2 = np.meshgrid((np.arange(16) - 0.5) / 2, (np.arange(20) - 0.5) / 2, indexing="ij")
  _close(up[0, 2:-2, 2:-2, 0], (0.3 * r2 - 0.2 * c2 + 1.0)[2:-2, 2:-2], 1e-5)
  back = np.asarray(_down2(jnp.asarray(up)))
  _close(back[:, 2:-2, 2:-2], ramp[:, 2:-2, 2:-2], 1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_up_convolution_equals_stylegan2s_transposed_convolution_and_blur(fused):
  """Every output pixel, borders included: a term missing at the top and left borders (or
  a shifted padding) makes G lopsided, and the next layers carry the error inwards."""
  x, kernel = _normal(2, 2, 4, 5, 3), _normal(3, 3, 3, 3, 4)
  styles = np.random.default_rng(4).uniform(0.3, 2.0, size=(2, 3))
  conv = jax.jit(functools.partial(modulated.modulated_conv, fused=fused, up=True))
  got = conv(jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32),
             jnp.asarray(styles, jnp.float32))
  assert got.shape == (2, 8, 10, 4)
  _close(got, _up_modulated(x, kernel, styles), 2e-4)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_down_convolution_is_the_blur_then_a_stride_2_convolution(kernel_size):
  x = _normal(5, 2, 8, 6, 3)
  conv = modulated.EqualizedConv(4, kernel_size, KIT, down=True, activate=False)
  params = _init(conv, jnp.asarray(x, jnp.float32))
  kernel = np.asarray(params["kernel"]) / np.sqrt(3 * kernel_size ** 2)
  if kernel_size == 1:  # Filter and downsample first, then the 1x1 convolution.
    want = _conv(_upfirdn(x, down=2, pad=(1, 1, 1, 1)), kernel)
  else:  # Padding 1 + the filter's (4-2+1)//2, (4-2)//2: 2 on each side.
    want = _conv(_upfirdn(x, pad=(2, 2, 2, 2)), kernel, stride=2)
  _close(_apply(conv, params, jnp.asarray(x, jnp.float32)), want)


def _mirrored(tree, axis: int, image_shape=None):
  """Parameters of the mirror-image network: every spatial kernel and the constant flipped
  along `axis` (0 rows, 1 columns); the discriminator's dense layer on the flattened
  (H, W, C) map permuted to match."""
  def flip(path, leaf):
    name = path[-1].key
    if name == "const" or (name == "kernel" and leaf.ndim == 4):
      return jnp.flip(leaf, axis)
    if name == "kernel" and image_shape and path[-2].key == "epilogue_fc":
      return jnp.flip(leaf.reshape(*image_shape, -1), axis).reshape(leaf.shape)
    return leaf
  return jax.tree_util.tree_map_with_path(flip, tree)


def test_networks_are_mirror_equivariant_so_no_shift_accumulates_over_blocks():
  """StyleGAN2's resampling is symmetric: mirroring every kernel and the constant (up-down,
  then left-right) mirrors G's image exactly, and D scores a mirrored image with mirrored
  kernels as the original."""
  synthesis = stylegan2.SynthesisNetwork((16, 16), 1, (4, 3, 2), KIT)
  ws = jax.random.normal(jax.random.PRNGKey(0), (2, stylegan2.num_ws((16, 16)), 8))
  params = _random_params(synthesis, 1, ws, "none")
  generate = jax.jit(lambda p: synthesis.apply({"params": p}, ws, "none"))
  image = generate(params)
  d = stylegan2.Discriminator((2, 3, 4), 8, 2, 0.01, KIT, minibatch_std=2)
  d_params = _random_params(d, 2, image)
  score = jax.jit(lambda p, x: d.apply({"params": p}, x)[0])
  logits = np.asarray(score(d_params, image))
  for axis in (0, 1):
    mirrored = generate(_mirrored(params, axis))
    _close(mirrored, np.flip(np.asarray(image), axis + 1), 1e-5)
    flipped = score(_mirrored(d_params, axis, (4, 4, 4)), jnp.flip(image, axis + 1))
    _close(flipped, logits, 1e-5)


def test_equalized_dense_scales_weights_and_biases_by_the_lr_multiplier():
  dense = modulated.EqualizedDense(64, KIT, lr_multiplier=0.01, activate=True)
  x = _normal(9, 4, 48)
  params = _init(dense, jnp.asarray(x, jnp.float32))
  assert abs(np.std(params["kernel"]) - 100.0) < 5.0  # N(0, 1) / lr_multiplier.
  assert np.all(np.asarray(params["bias"]) == 0.0)
  params = {"kernel": params["kernel"], "bias": jnp.asarray(_normal(10, 64, scale=50.0),
                                                           jnp.float32)}
  want = _lrelu(x @ (np.asarray(params["kernel"]) * 0.01 / np.sqrt(48))
                + np.asarray(params["bias"]) * 0.01)
  _close(_apply(dense, params, jnp.asarray(x, jnp.float32)), want, 2e-4)
  linear = modulated.EqualizedDense(64, KIT, lr_multiplier=0.01)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(linear.apply({"params": p}, x))))(
      params)  # The runtime scales reach the gradients: lr / sqrt(fan_in), and lr.
  _close(grads["kernel"], np.tile(x.sum(0)[:, None] * 0.01 / np.sqrt(48), (1, 64)), 1e-5)
  _close(grads["bias"], np.full(64, 4 * 0.01), 1e-6)


def test_mapping_network_and_its_running_mean_of_w():
  mapping = stylegan2.MappingNetwork(6, 2, 0.01, 0, KIT)
  z = _normal(11, 3, 5)
  variables = jax.jit(lambda key: mapping.init(key, z, None))(jax.random.PRNGKey(0))
  w, updates = jax.jit(lambda v: mapping.apply(v, z, None, update_w_avg=True,
                                               mutable=["batch_stats"]))(variables)
  h = z / np.sqrt(np.mean(z ** 2, axis=1, keepdims=True) + 1e-8)
  for i in range(2):
    layer = variables["params"][f"fc{i}"]
    h = _lrelu(h @ np.asarray(layer["kernel"]) * 0.01 / np.sqrt(h.shape[1])
               + np.asarray(layer["bias"]) * 0.01)
  _close(w, h)
  _close(updates["batch_stats"]["w_avg"][0], (1 - 0.995) * h.mean(0), 1e-6)


def test_synthesis_layer_inits_and_computes_as_stylegan2():
  layer = modulated.SynthesisLayer(4, KIT, up=True)
  x, w = _normal(12, 2, 3, 4, 3), _normal(13, 2, 5)
  params = _init(layer, jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), "none")
  assert float(params["noise_strength"]) == 0.0 and params["noise_strength"].shape == ()
  assert np.all(np.asarray(params["affine"]["bias"]) == 1.0)  # Styles start around 1.
  assert np.all(np.asarray(params["bias"]) == 0.0)
  params = {**params, "bias": jnp.asarray(_normal(14, 4), jnp.float32)}
  styles = w @ np.asarray(params["affine"]["kernel"]) / np.sqrt(5) + 1.0
  want = _lrelu(_up_modulated(x, np.asarray(params["kernel"]), styles)
                + np.asarray(params["bias"]))  # Demodulated: the weight gain cancels.
  _close(_apply(layer, params, jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32),
                "none"), want, 2e-4)


def test_noise_is_one_image_per_sample_broadcast_over_channels_with_learned_strength():
  layer = modulated.SynthesisLayer(3, KIT)
  x, w = jnp.ones((4, 16, 16, 2)), jnp.ones((4, 5))
  params = _random_params(layer, 0, x, w, "none")
  params = {**params, "kernel": jnp.zeros_like(params["kernel"]), "bias": jnp.zeros(3),
            "noise_strength": jnp.asarray(1.0)}  # The output is lrelu(noise) * sqrt(2).
  out = np.asarray(_apply(layer, params, x, w, "random", rngs={"noise": jax.random.PRNGKey(1)}))
  _close(out, np.repeat(out[..., :1], 3, axis=-1), 0.0)
  noise = np.where(out[..., 0] > 0, out[..., 0], out[..., 0] / 0.2) / SQRT2
  assert abs(noise.std() - 1.0) < 0.06 and not np.allclose(noise[0], noise[1])
  const = np.asarray(_apply(layer, params, x, w, "const"))
  _close(const, np.broadcast_to(const[:1], const.shape), 0.0)
  synthesis = stylegan2.SynthesisNetwork((8, 8), 1, (64, 8), KIT)
  const_init = jax.jit(lambda key: synthesis.init(key, jnp.ones((1, 4, 8)), "none")["params"][
      "const"])(jax.random.PRNGKey(2))  # Only the constant: the rest is never compiled.
  assert abs(np.std(const_init) - 1.0) < 0.06  # N(0, 1), 4x4x64 values.


def test_to_rgb_is_modulated_with_gain_one_over_sqrt_fan_in_and_not_demodulated():
  to_rgb = modulated.ToRGB(3, KIT, conv_clamp=0.5)
  x, w = _normal(15, 2, 4, 4, 6), _normal(16, 2, 5)
  params = _init(to_rgb, jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
  params = {**params, "bias": jnp.asarray(_normal(17, 3, scale=0.1), jnp.float32)}
  styles = w @ np.asarray(params["affine"]["kernel"]) / np.sqrt(5) + 1.0
  kernel = np.asarray(params["kernel"])[0, 0] / np.sqrt(6)
  want = np.einsum("bhwi,io->bhwo", x * styles[:, None, None], kernel) + np.asarray(
      params["bias"])
  assert np.abs(want).max() > 0.5  # The clamp acts (gain 1 here).
  _close(_apply(to_rgb, params, jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)),
         np.clip(want, -0.5, 0.5))


def test_skip_generator_sums_each_blocks_image_onto_the_upsampled_image_so_far():
  synthesis = stylegan2.SynthesisNetwork((16, 16), 1, (4, 3, 2), KIT)
  ws = jax.random.normal(jax.random.PRNGKey(0), (2, stylegan2.num_ws((16, 16)), 8))
  variables = {"params": _random_params(synthesis, 1, ws, "none")}
  image, state = jax.jit(lambda v: synthesis.apply(v, ws, "none", capture_intermediates=True,
                                                   mutable=["intermediates"]))(variables)
  rgb = {name: np.asarray(state["intermediates"][f"b{name}_torgb"]["__call__"][0])
         for name in ("4x4", "8x8", "16x16")}
  up = lambda y: _upfirdn(y, up=2, pad=(2, 1, 2, 1), gain=4.0)  # noqa: E731
  _close(image, up(up(rgb["4x4"]) + rgb["8x8"]) + rgb["16x16"], 1e-5)


def test_residual_discriminator_block_gains_and_clamps_as_stylegan2():
  """conv0 -> conv1 (down) with gain sqrt(1/2) and clamp conv_clamp * sqrt(1/2), plus the
  unclamped 1x1 skip (down) with gain sqrt(1/2)."""
  block = stylegan2.DiscriminatorBlock(3, KIT, conv_clamp=0.5)
  x = _normal(18, 2, 8, 8, 2, scale=3.0)
  params = _init(block, jnp.asarray(x, jnp.float32))
  params = jax.tree.map(lambda p: p + 0.3 if p.ndim == 1 else p, params)  # Non-zero biases.
  p = jax.tree.map(np.asarray, params)
  g, c = np.sqrt(0.5), 0.5
  h = np.clip(_lrelu(_conv(x, p["conv0"]["kernel"] / np.sqrt(18), pad=1)
                     + p["conv0"]["bias"]), -c, c)
  h = _conv(_upfirdn(h, pad=(2, 2, 2, 2)), p["conv1"]["kernel"] / np.sqrt(18), stride=2)
  main = np.clip(_lrelu(h + p["conv1"]["bias"]) * g, -c * g, c * g)
  skip = _conv(_upfirdn(x, down=2, pad=(1, 1, 1, 1)), p["skip"]["kernel"] / np.sqrt(2)) * g
  assert np.abs(skip).max() > c and np.any(np.abs(main) == c * g)  # Both cases are seen.
  _close(_apply(block, params, jnp.asarray(x, jnp.float32)), skip + main)


def test_activation_is_leaky_relu_02_times_sqrt2_then_the_clamp():
  x = jnp.asarray([-300.0, -2.0, -0.5, 0.0, 1.0, 3.0, 300.0])
  got = modulated.bias_act(x, jnp.zeros(()), KIT, activate=True, clamp=256.0)
  _close(got, np.clip(_lrelu(np.asarray(x)), -256, 256), 1e-6)


def test_adam_is_corrected_for_separate_lazy_regularization_steps():
  """c = k / (k + 1): Adam's learning rate times c, its betas to the power c (G: path
  length every 4, D: R1 every 16); checked on three steps against Adam written out."""
  config = fashion_mnist_stylegan2.get_config("smoke")
  config.loss.r1_weight, config.loss.r1_every, config.loss.pl_every = 1.0, 16, 4
  config = config_lib.resolve(config)
  assert config.loss.lazy_regularization == "separate" and config.loss.pl_weight > 0
  grads = _normal(19, 3, 5)
  for tx, k, lr, (b1, b2) in zip(make_optimizers(config), (4, 16),
                                 (config.optim.g_learning_rate, config.optim.d_learning_rate),
                                 (config.optim.g_betas, config.optim.d_betas)):
    c = k / (k + 1)
    b1, b2 = b1 ** c, b2 ** c
    params, state = jnp.zeros(5), tx.init(jnp.zeros(5))
    want, m, v = np.zeros(5), np.zeros(5), np.zeros(5)
    for t, grad in enumerate(grads, 1):
      updates, state = tx.update(jnp.asarray(grad, jnp.float32), state, params)
      params = params + updates
      m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad ** 2
      want = want - lr * c * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    # beta2 ** c moves these three steps by ~2e-6 of ~5e-3: a relative 1e-5 sees it.
    np.testing.assert_allclose(np.asarray(params, np.float64), want, rtol=1e-5, atol=1e-9)
