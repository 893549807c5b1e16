"""DCGAN generator and discriminator (Radford et al., 2016) as Flax linen modules.

    g = Generator(image_size=(32, 32), channels=1)
    variables = g.init(rng, z, train=False)           # {'params', 'batch_stats'}
    images, updates = g.apply(variables, z, train=True, mutable=["batch_stats"])
    d = Discriminator(conditioning="projection", num_classes=10, spectral_norm=True)
    logits, class_logits = d.apply(d_variables, images, labels, train=True,
                                   mutable=["batch_stats"])[0]

Options beyond the paper (all off by default, which keeps the original parameter tree):
class conditioning (conditional BatchNorm in G; projection or an AC-GAN head in D),
spectral norm in either network, and a minibatch-stddev layer before D's last block.

The generator's BatchNorm normalizes over the whole global batch: inside a jit over a
data-sharded batch, the mean is a global reduction, so the statistics do not depend on
how many devices the batch is split over.

Speed on XLA:CPU shaped two choices (bench/RESULTS.md has the measurements):
- `upsample`: XLA:CPU computes the weight gradient of a transposed convolution many times
  slower than that of a plain one. The default "subpixel" block is a 2x2 convolution to
  4x the channels followed by depth-to-space: the same parameters and FLOPs as DCGAN's
  4x4 stride-2 transposed convolution (each output phase sees a 2x2 input window).
- `downsample`: "space_to_depth" computes DCGAN's 4x4 stride-2 convolution as
  space-to-depth followed by a 2x2 convolution (same parameters and FLOPs, a half-pixel
  shifted window), which XLA:CPU runs faster than the strided convolution.
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from pgen.models import layers

UPSAMPLE_MODES = ("subpixel", "nearest", "transpose")
DOWNSAMPLE_MODES = ("space_to_depth", "strided")

_init = nn.initializers.normal(0.02)  # The DCGAN paper's initialization.


def depth_to_space(x: jnp.ndarray, block: int = 2) -> jnp.ndarray:
  """(B, H, W, C*b*b) -> (B, H*b, W*b, C)."""
  b, h, w, c = x.shape
  out = c // (block * block)
  x = x.reshape(b, h, w, block, block, out)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * block, w * block, out)


def space_to_depth(x: jnp.ndarray, block: int = 2) -> jnp.ndarray:
  """(B, H, W, C) -> (B, H/b, W/b, C*b*b), the inverse of depth_to_space."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // block, block, w // block, block, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // block, w // block, c * block * block)


def num_blocks(image_size) -> int:
  """Resolution doublings from the base feature map (4 to 7 pixels on its shorter side) to
  `image_size` (height, width): e.g. 3 for 32x32 (from 4x4) or 64x48 (from 8x6)."""
  h, w = image_size
  blocks = int(math.log2(min(h, w) / 4)) if min(h, w) >= 8 else 0
  if blocks == 0 or h % 2 ** blocks or w % 2 ** blocks:
    raise ValueError(
        f"data.resolution={h}x{w} is not supported by the convolutional models: each side "
        "must be at least 8 and the shorter side divided by the largest power of two that "
        "leaves at least 4 must divide both sides (e.g. 32, 64, 128, (64, 48), (96, 64)).")
  return blocks


class Upsample(nn.Module):
  """Doubles height and width and maps to `features` channels."""
  features: int
  mode: str
  spectral_norm: bool = False
  use_bias: bool = True

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    def conv(layer, inputs):
      return layers.apply_layer(layer, inputs, spectral_norm=self.spectral_norm,
                                update_stats=update_stats)

    if self.mode == "transpose":
      return conv(nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding="SAME",
                                   use_bias=self.use_bias, kernel_init=_init), x)
    if self.mode == "subpixel":
      x = conv(nn.Conv(self.features * 4, (2, 2), padding="SAME", use_bias=self.use_bias,
                       kernel_init=_init), x)
      return depth_to_space(x)
    if self.mode == "nearest":
      x = layers.upsample_nearest(x)
      return conv(nn.Conv(self.features, (3, 3), padding="SAME", use_bias=self.use_bias,
                          kernel_init=_init), x)
    raise ValueError(f"model.upsample={self.mode!r} is unknown; choose one of {UPSAMPLE_MODES}.")


class Downsample(nn.Module):
  """Halves height and width and maps to `features` channels."""
  features: int
  mode: str
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    def conv(layer, inputs):
      return layers.apply_layer(layer, inputs, spectral_norm=self.spectral_norm,
                                update_stats=update_stats)

    if self.mode == "space_to_depth":
      return conv(nn.Conv(self.features, (2, 2), padding="SAME", kernel_init=_init),
                  space_to_depth(x))
    if self.mode == "strided":
      return conv(nn.Conv(self.features, (4, 4), strides=(2, 2), padding="SAME",
                          kernel_init=_init), x)
    raise ValueError(
        f"model.downsample={self.mode!r} is unknown; choose one of {DOWNSAMPLE_MODES}.")


class Generator(nn.Module):
  """z -> base feature map (4x4 for square images) -> upsampling blocks with BatchNorm and
  ReLU -> tanh image. With `num_classes` > 0 every BatchNorm is class-conditional.

  Layers followed by a BatchNorm have no bias (as in PyTorch's reference DCGAN): its
  gradient would be exactly zero, and Adam would turn the rounding noise into full-size
  steps that differ between device layouts."""
  image_size: tuple = (32, 32)  # (height, width)
  channels: int = 1
  width: int = 64
  upsample: str = "subpixel"
  num_classes: int = 0  # 0: unconditional (labels are ignored).
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, z, labels=None, train: bool = False):
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    blocks = num_blocks(self.image_size)
    features = [self.width * 2 ** i for i in reversed(range(blocks))]  # e.g. 256, 128, 64
    base_h, base_w = (side // 2 ** blocks for side in self.image_size)

    def norm_relu(x):
      return nn.relu(layers.batch_norm(x, labels, train=train, num_classes=self.num_classes))

    x = layers.apply_layer(
        nn.Dense(base_h * base_w * features[0], use_bias=False, kernel_init=_init), z,
        spectral_norm=self.spectral_norm, update_stats=train)
    x = norm_relu(x.reshape(z.shape[0], base_h, base_w, features[0]))
    for f in features[1:]:
      x = norm_relu(Upsample(f, self.upsample, self.spectral_norm, use_bias=False)(
          x, update_stats=train))
    x = Upsample(self.channels, self.upsample, self.spectral_norm)(x, update_stats=train)
    return jnp.tanh(x)


class Discriminator(nn.Module):
  """Image -> halving 4x4-window convolutions with LeakyReLU down to the base size ->
  (logits (B,), class_logits (B, num_classes) for "acgan", else None).

  No BatchNorm: the discriminator sees real and fake batches separately and must stay a
  per-example function for R1 and the gradient penalty. The one exception is the optional
  minibatch-stddev layer (`minibatch_std` > 0), which is per-group by design.
  """
  width: int = 64
  downsample: str = "space_to_depth"
  conditioning: str = "none"  # layers.CONDITIONINGS
  num_classes: int = 0
  spectral_norm: bool = False
  minibatch_std: int = 0  # Group size; 0 = off.

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    blocks = num_blocks(x.shape[1:3])
    for i in range(blocks):
      if self.minibatch_std and i == blocks - 1:
        x = layers.MinibatchStdDev(self.minibatch_std)(x)
      x = Downsample(self.width * 2 ** i, self.downsample, self.spectral_norm)(
          x, update_stats=train)
      x = nn.leaky_relu(x, 0.2)
    x = x.reshape(x.shape[0], -1)
    return layers.discriminator_head(
        x, labels, conditioning=self.conditioning, num_classes=self.num_classes,
        spectral_norm=self.spectral_norm, update_stats=train, kernel_init=_init)
