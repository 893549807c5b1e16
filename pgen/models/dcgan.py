"""DCGAN generator and discriminator (Radford et al., 2016) as Flax linen modules.

    g = Generator(resolution=32, channels=1)
    variables = g.init(rng, z, train=False)           # {'params', 'batch_stats'}
    images, updates = g.apply(variables, z, train=True, mutable=["batch_stats"])

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


def num_blocks(resolution: int) -> int:
  """Blocks that take 4x4 to `resolution` (a power of two >= 8)."""
  blocks = math.log2(resolution / 4)
  if resolution < 8 or blocks != int(blocks):
    raise ValueError(
        f"data.resolution={resolution} is not supported by the DCGAN model: use a power of "
        "two of at least 8 (e.g. 32 or 64).")
  return int(blocks)


class Upsample(nn.Module):
  """Doubles height and width and maps to `features` channels."""
  features: int
  mode: str

  @nn.compact
  def __call__(self, x):
    if self.mode == "transpose":
      return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding="SAME",
                              kernel_init=_init)(x)
    if self.mode == "subpixel":
      x = nn.Conv(self.features * 4, (2, 2), padding="SAME", kernel_init=_init)(x)
      return depth_to_space(x)
    if self.mode == "nearest":
      b, h, w, c = x.shape
      x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
      x = x.reshape(b, 2 * h, 2 * w, c)
      return nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=_init)(x)
    raise ValueError(f"model.upsample={self.mode!r} is unknown; choose one of {UPSAMPLE_MODES}.")


class Downsample(nn.Module):
  """Halves height and width and maps to `features` channels."""
  features: int
  mode: str

  @nn.compact
  def __call__(self, x):
    if self.mode == "space_to_depth":
      return nn.Conv(self.features, (2, 2), padding="SAME", kernel_init=_init)(space_to_depth(x))
    if self.mode == "strided":
      return nn.Conv(self.features, (4, 4), strides=(2, 2), padding="SAME", kernel_init=_init)(x)
    raise ValueError(
        f"model.downsample={self.mode!r} is unknown; choose one of {DOWNSAMPLE_MODES}.")


class Generator(nn.Module):
  """z -> 4x4 feature map -> upsampling blocks with BatchNorm and ReLU -> tanh image."""
  resolution: int = 32
  channels: int = 1
  width: int = 64
  upsample: str = "subpixel"

  @nn.compact
  def __call__(self, z, train: bool):
    blocks = num_blocks(self.resolution)
    features = [self.width * 2 ** i for i in reversed(range(blocks))]  # e.g. 256, 128, 64
    x = nn.Dense(4 * 4 * features[0], kernel_init=_init)(z)
    x = x.reshape(z.shape[0], 4, 4, features[0])
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    for f in features[1:]:
      x = Upsample(f, self.upsample)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    x = Upsample(self.channels, self.upsample)(x)
    return jnp.tanh(x)


class Discriminator(nn.Module):
  """Image -> halving 4x4-window convolutions with LeakyReLU down to 4x4 -> one logit.

  No BatchNorm: the discriminator sees real and fake batches separately and must stay a
  per-example function for the regularizers that later configs add.
  """
  width: int = 64
  downsample: str = "space_to_depth"

  @nn.compact
  def __call__(self, x):
    blocks = num_blocks(x.shape[1])
    for i in range(blocks):
      x = nn.leaky_relu(Downsample(self.width * 2 ** i, self.downsample)(x), 0.2)
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(1, kernel_init=_init)(x)[:, 0]
