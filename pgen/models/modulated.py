"""StyleGAN2's layers: equalized learning rate, modulated and demodulated convolution,
noise inputs, and FIR-filtered resampling convolutions.

    x = EqualizedConv(64, 3, kit=kit, down=True, activate=True)(x)      # D's layers
    w = EqualizedDense(512, kit=kit, lr_multiplier=0.01, activate=True)(z)  # mapping layers
    x = SynthesisLayer(64, kit=kit, up=True)(x, w, noise_mode="random")   # G's layers
    rgb = ToRGB(3, kit=kit)(x, w)

Equalized learning rate (Karras et al. 2018): every weight is stored as N(0, 1) / lr_mult
and scaled at run time by lr_mult / sqrt(fan_in), so Adam's per-parameter steps are the
same relative size in every layer; `lr_multiplier` 0.01 slows the mapping network.

Modulated convolution (Karras et al. 2020, eq. 1-3): the style s scales the input
channels of the weight, and demodulation rescales each output channel to unit expected
variance. It runs for the whole batch at once, in one of two equal forms:
`fused=False` scales the activations instead of the weights (x * s -> conv -> * d: one
convolution with the shared weight); `fused=True` builds every sample's weight and runs one
grouped convolution with the batch folded into the channels (feature_group_count = B).

Activations go through the kit's activation (leaky ReLU 0.2) times sqrt(2), then an
optional clamp (`conv_clamp`, StyleGAN2-ADA's guard for reduced precision). Parameters,
styles and demodulation coefficients are float32; convolutions run in the kit's dtype.
"""

import functools
import zlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pgen.models import layers, resample

ACTIVATION_GAIN = float(np.sqrt(2.0))  # Keeps a leaky ReLU layer's output variance at 1.
DEMODULATION_EPSILON = 1e-8
NOISE_MODES = ("random", "const", "none")


def at_least_float32(x):
  """x in float32, or in its own dtype if that is wider (float64 in tests)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def bias_act(x, bias, kit: layers.LayerKit, *, activate: bool, gain: float = 1.0,
             clamp: float = 0.0):
  """x + bias, then the kit's activation times sqrt(2) (if `activate`), times `gain`,
  clamped to [-clamp, clamp] when clamp > 0."""
  x = x + bias.astype(x.dtype)
  if activate:
    x = kit.activation(x) * ACTIVATION_GAIN
  if gain != 1.0:
    x = x * gain
  if clamp:
    x = jnp.clip(x, -clamp, clamp)
  return x


class EqualizedDense(nn.Module):
  """A dense layer with equalized learning rate, computed in float32 (mapping networks,
  affine style transforms, heads)."""
  features: int
  kit: layers.LayerKit
  lr_multiplier: float = 1.0
  bias_init: float = 0.0  # Its value at run time (StyleGAN2's affines start at 1).
  activate: bool = False

  @nn.compact
  def __call__(self, x):
    x = at_least_float32(x)
    fan_in = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_multiplier),
                        (fan_in, self.features), self.kit.param_dtype)
    bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier),
                      (self.features,), self.kit.param_dtype)
    x = x @ (kernel * (self.lr_multiplier / np.sqrt(fan_in)))
    return bias_act(x, bias * self.lr_multiplier, self.kit, activate=self.activate)


def _conv(x, kernel, *, groups: int = 1, stride: int = 1, padding="SAME"):
  return jax.lax.conv_general_dilated(
      x, kernel.astype(x.dtype), (stride, stride), padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def _subpixel_kernel(kernel):
  """A (3, 3, I, O) kernel as the (2, 2, I, 4*O) kernel that, applied to a 2-pixel window
  of the input and followed by depth-to-space, equals inserting zeros between pixels and
  convolving with `kernel` ('SAME'): a stride-2 transposed convolution without its 4x
  wasted multiplications by zero, as plain convolutions (fast on every backend).

  Along one axis, output 2i sees x[i] through tap 1; output 2i+1 sees x[i] through tap 0
  and x[i+1] through tap 2."""
  taps = ((1, None), (0, 2))  # taps[phase][offset]: the kernel row used, or none.
  rows = []
  for ay in range(2):
    cols = []
    for ax in range(2):
      phases = [kernel[taps[py][ay], taps[px][ax]] if None not in (taps[py][ay], taps[px][ax])
                else jnp.zeros_like(kernel[0, 0]) for py in range(2) for px in range(2)]
      cols.append(jnp.stack(phases, axis=-1))  # (I, O, 4): output channel o*4 + phase
    rows.append(jnp.stack(cols))
  sub = jnp.stack(rows)  # (2, 2, I, O, 4)
  return sub.reshape(*sub.shape[:3], -1)


def _depth_to_space_phases(x):
  """(B, H, W, O*4) with channel o*4 + 2*py + px -> (B, 2H, 2W, O)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, c // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, 2 * h, 2 * w, c // 4)


def transposed_conv_2x(x, kernel, *, groups: int = 1, full: bool = False):
  """Zeros inserted after every pixel, then a 'SAME' convolution with the 3x3 `kernel`:
  (B, H, W, I) -> (B, 2H, 2W, O). `full`: the whole stride-2 transposed convolution
  (StyleGAN2's, unpadded), (B, 2H+1, 2W+1, O): the same outputs plus the one before the
  first pixel, where the kernel's last tap meets x[0]."""
  before = 1 if full else 0
  x = jnp.pad(x, ((0, 0), (before, 1), (before, 1), (0, 0)))
  y = _depth_to_space_phases(_conv(x, _subpixel_kernel(kernel), groups=groups,
                                   padding="VALID"))
  return y[:, 1:, 1:] if full else y  # With `full`, row and column 0 are x's zero padding.


def resampling_conv(x, kernel, *, up: bool = False, down: bool = False, groups: int = 1):
  """A 'SAME'-size convolution with a square kernel, or with StyleGAN2's FIR resampling:
  `up` (transposed conv, then the [1,3,3,1] filter), `down` (the filter, then a stride-2
  conv; 1x1 kernels downsample first)."""
  k = kernel.shape[0]
  if up:
    if k != 3:
      raise ValueError(f"Upsampling convolutions take 3x3 kernels, not {k}x{k}.")
    # As StyleGAN2's conv2d_resample: the full transposed convolution (2H+1), then the
    # filter padded by 1 on each side, so both borders keep all their terms.
    return resample.blur(transposed_conv_2x(x, kernel, groups=groups, full=True),
                         (1, 1, 1, 1), gain=4.0)
  if down:
    if k == 1:
      return _conv(resample.downsample_2x(x), kernel, groups=groups)
    pad = (len(resample.DEFAULT_FILTER) - 2 + k - 1) // 2
    return _conv(resample.blur(x, (pad, pad, pad, pad)), kernel, groups=groups, stride=2,
                 padding="VALID")
  return _conv(x, kernel, groups=groups)



def modulated_conv(x, kernel, styles, *, demodulate: bool = True, fused: bool = False,
                   up: bool = False):
  """x (B, H, W, I) in its compute dtype, kernel (k, k, I, O) at run-time scale, styles
  (B, I) float32 -> (B, H', W', O): every sample convolved with kernel * styles (and
  demodulated) in one convolution over the batch."""
  kernel, styles = at_least_float32(kernel), at_least_float32(styles)
  coefficients = None
  if demodulate:  # 1 / ||kernel * s||_2 per output channel, without building B kernels.
    energy = jnp.einsum("bi,io->bo", jnp.square(styles), jnp.sum(jnp.square(kernel), (0, 1)))
    coefficients = jax.lax.rsqrt(energy + DEMODULATION_EPSILON)
  if not fused:
    x = x * styles[:, None, None, :].astype(x.dtype)
    x = resampling_conv(x, kernel, up=up)
    if coefficients is not None:
      x = x * coefficients[:, None, None, :].astype(x.dtype)
    return x
  b, h, w, i = x.shape
  k, o = kernel.shape[0], kernel.shape[-1]
  per_sample = kernel[None] * styles[:, None, None, :, None]  # (B, k, k, I, O)
  if coefficients is not None:
    per_sample = per_sample * coefficients[:, None, None, None, :]
  grouped_kernel = per_sample.transpose(1, 2, 3, 0, 4).reshape(k, k, i, b * o)
  folded = x.transpose(1, 2, 0, 3).reshape(1, h, w, b * i)
  y = resampling_conv(folded, grouped_kernel, up=up, groups=b)
  return y.reshape(*y.shape[1:3], b, o).transpose(2, 0, 1, 3)


class EqualizedConv(nn.Module):
  """A square convolution with equalized learning rate and optional FIR down-sampling
  (the discriminator's layers); the output times `gain`, clamped to +-conv_clamp * gain."""
  features: int
  kernel_size: int
  kit: layers.LayerKit
  down: bool = False
  use_bias: bool = True
  activate: bool = True
  gain: float = 1.0
  conv_clamp: float = 0.0

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1] * self.kernel_size ** 2
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (self.kernel_size, self.kernel_size, x.shape[-1], self.features),
                        self.kit.param_dtype)
    x = resampling_conv(x.astype(self.kit.dtype), kernel / np.sqrt(fan_in), down=self.down)
    bias = (self.param("bias", nn.initializers.zeros, (self.features,), self.kit.param_dtype)
            if self.use_bias else jnp.zeros((self.features,), jnp.float32))
    # The clamp scales with the gain, as StyleGAN2-ADA's (conv_clamp * gain).
    return bias_act(x, bias, self.kit, activate=self.activate, gain=self.gain,
                    clamp=self.conv_clamp * self.gain)


def _constant_noise(shape, module: nn.Module):
  """The layer's fixed noise image (H, W): drawn from a key that its place in the network
  names, so it needs no stored state and is the same in every process and run."""
  path = "/".join(str(part) for part in module.scope.path)
  return jax.random.normal(jax.random.PRNGKey(zlib.crc32(path.encode())), (*shape, 1))[..., 0]


class SynthesisLayer(nn.Module):
  """Modulated 3x3 convolution (optionally upsampling) + per-pixel noise with a learned
  strength + bias + leaky ReLU (gain sqrt(2)) [+ clamp]. `stored_noise_const` keeps the
  fixed noise image of noise_mode "const" as the variable batch_stats/noise_const (H, W),
  as StyleGAN2-ADA's buffer of that name, instead of deriving it from the layer's name."""
  features: int
  kit: layers.LayerKit
  up: bool = False
  fused: bool = False
  conv_clamp: float = 0.0
  stored_noise_const: bool = False

  @nn.compact
  def __call__(self, x, w, noise_mode: str = "random"):
    in_features = x.shape[-1]
    styles = EqualizedDense(in_features, self.kit, bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (3, 3, in_features, self.features), self.kit.param_dtype)
    x = modulated_conv(x.astype(self.kit.dtype), kernel / np.sqrt(9 * in_features), styles,
                       fused=self.fused, up=self.up)
    strength = self.param("noise_strength", nn.initializers.zeros, (), self.kit.param_dtype)
    stored = (self.variable("batch_stats", "noise_const", _constant_noise, x.shape[1:3], self)
              if self.stored_noise_const else None)
    if noise_mode == "random":
      noise = jax.random.normal(self.make_rng("noise"), (*x.shape[:3], 1))
    elif noise_mode == "const":
      const = _constant_noise(x.shape[1:3], self) if stored is None else stored.value
      noise = const[None, :, :, None]
    elif noise_mode == "none":
      noise = None
    else:
      raise ValueError(f"noise_mode={noise_mode!r} is unknown; choose one of {NOISE_MODES}.")
    if noise is not None:
      x = x + (noise * strength).astype(x.dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), self.kit.param_dtype)
    return bias_act(x, bias, self.kit, activate=True, clamp=self.conv_clamp)


class ToRGB(nn.Module):
  """Modulated 1x1 convolution to image channels, without demodulation, + bias [+ clamp]."""
  channels: int
  kit: layers.LayerKit
  fused: bool = False
  conv_clamp: float = 0.0

  @nn.compact
  def __call__(self, x, w):
    in_features = x.shape[-1]
    styles = EqualizedDense(in_features, self.kit, bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (1, 1, in_features, self.channels), self.kit.param_dtype)
    x = modulated_conv(x.astype(self.kit.dtype), kernel / np.sqrt(in_features), styles,
                       demodulate=False, fused=self.fused)
    bias = self.param("bias", nn.initializers.zeros, (self.channels,), self.kit.param_dtype)
    return bias_act(x, bias, self.kit, activate=False, clamp=self.conv_clamp)


def normalize_second_moment(x, axis: int = -1):
  """x / sqrt(mean(x^2)): StyleGAN's normalization of latents and label embeddings."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + 1e-8)


leaky_relu = functools.partial(nn.leaky_relu, negative_slope=0.2)
