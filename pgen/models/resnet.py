"""SNGAN/BigGAN-style residual generator and discriminator as Flax linen modules.

    g = Generator(image_size=(32, 32), channels=1, width=64, num_classes=10)
    d = Discriminator(width=64, conditioning="projection", num_classes=10, spectral_norm=True)
    images, g_updates = g.apply(g_variables, z, labels, train=True, mutable=["batch_stats"])
    (logits, _), d_updates = d.apply(d_variables, images, labels, train=True,
                                     mutable=["batch_stats"])

Widths mirror the DCGAN models: `width` is the channel count at the highest resolution,
doubled per block towards the base map (4x4 for square images, as `dcgan.num_blocks`
gives for others) and capped at `max_width`. G upsamples by nearest neighbour + 3x3
convolution rather than a transposed convolution, whose weight gradient XLA:CPU computes
slowly. Shortcut 1x1 convolutions run at the lower resolution (they commute with nearest
upsampling and average pooling, so the result is the same at a quarter of the cost).
"""

import flax.linen as nn
import jax.numpy as jnp

from pgen.models import layers
from pgen.models.dcgan import num_blocks

_init = nn.initializers.xavier_uniform()  # SNGAN's initialization.


def level_widths(width: int, max_width: int, levels: int):
  """Channels per resolution level, highest resolution first: width, 2*width, ... capped."""
  return [min(width * 2 ** i, max_width) for i in range(levels)]


def attention_resolutions(image_size):
  """Heights where both networks have a block output to put self-attention after: from
  twice the base map's height up to half the image height."""
  blocks = num_blocks(image_size)
  base_height = image_size[0] // 2 ** blocks
  return tuple(base_height * 2 ** k for k in range(1, blocks))


def check_attention_resolution(attention_resolution: int, image_size):
  if attention_resolution and attention_resolution not in attention_resolutions(image_size):
    raise ValueError(
        f"model.attention_resolution={attention_resolution} is not a feature-map height of "
        f"the ResNet models at {image_size[0]}x{image_size[1]}; choose 0 (no attention) or "
        f"one of {attention_resolutions(image_size)}.")


class _Conv(nn.Module):
  """A convolution, spectrally normalized when `spectral_norm`."""
  features: int
  kernel_size: int
  spectral_norm: bool
  use_bias: bool = True

  @nn.compact
  def __call__(self, x, update_stats: bool):
    conv = nn.Conv(self.features, (self.kernel_size, self.kernel_size), padding="SAME",
                   use_bias=self.use_bias, kernel_init=_init, name="conv")
    return layers.apply_layer(conv, x, spectral_norm=self.spectral_norm,
                              update_stats=update_stats)


class GeneratorBlock(nn.Module):
  """BN -> ReLU -> upsample -> conv3x3 -> BN -> ReLU -> conv3x3, plus an upsampled 1x1-conv
  shortcut. BatchNorms are class-conditional when `num_classes` > 0.

  The convolutions have no bias: a BatchNorm (with its own bias) follows each of them, so
  a bias would get an exactly-zero gradient, which Adam turns from rounding noise into
  full-size steps that differ between device layouts."""
  features: int
  num_classes: int = 0
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, labels, train: bool):
    norm = lambda t: layers.batch_norm(t, labels, train=train, num_classes=self.num_classes)
    h = layers.upsample_nearest(nn.relu(norm(x)))
    h = _Conv(self.features, 3, self.spectral_norm, use_bias=False, name="conv1")(h, train)
    h = nn.relu(norm(h))
    h = _Conv(self.features, 3, self.spectral_norm, use_bias=False, name="conv2")(h, train)
    shortcut = _Conv(self.features, 1, self.spectral_norm, use_bias=False,
                     name="shortcut")(x, train)
    return h + layers.upsample_nearest(shortcut)


class DiscriminatorBlock(nn.Module):
  """ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avgpool], plus a shortcut ([avgpool ->] 1x1
  conv) when the block downsamples or changes the width.

  `first` is SNGAN's optimized first block: no ReLU on the input image, and the shortcut
  is always pooled and projected.
  """
  features: int
  downsample: bool = True
  first: bool = False
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, update_stats: bool):
    h = x if self.first else nn.relu(x)
    h = _Conv(self.features, 3, self.spectral_norm, name="conv1")(h, update_stats)
    h = _Conv(self.features, 3, self.spectral_norm, name="conv2")(nn.relu(h), update_stats)
    shortcut = x
    if self.downsample:
      h, shortcut = layers.avg_pool_2x2(h), layers.avg_pool_2x2(shortcut)
    if self.first or self.downsample or x.shape[-1] != self.features:
      shortcut = _Conv(self.features, 1, self.spectral_norm, name="shortcut")(
          shortcut, update_stats)
    return h + shortcut


class Generator(nn.Module):
  """z -> dense -> base map -> residual up-blocks (optional self-attention) -> BN -> ReLU ->
  conv3x3 -> tanh image in [-1, 1]."""
  image_size: tuple = (32, 32)  # (height, width)
  channels: int = 1
  width: int = 64  # Channels at the highest resolution.
  max_width: int = 512
  num_classes: int = 0  # 0: unconditional (labels are ignored).
  spectral_norm: bool = False
  attention_resolution: int = 0  # Height after whose block self-attention goes; 0 = none.

  @nn.compact
  def __call__(self, z, labels=None, train: bool = False):
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    check_attention_resolution(self.attention_resolution, self.image_size)
    blocks = num_blocks(self.image_size)
    widths = level_widths(self.width, self.max_width, blocks + 1)[::-1]  # base map first
    base_h, base_w = (side // 2 ** blocks for side in self.image_size)
    # No bias: the first block starts with a BatchNorm (see GeneratorBlock).
    x = layers.apply_layer(
        nn.Dense(base_h * base_w * widths[0], use_bias=False, kernel_init=_init), z,
        spectral_norm=self.spectral_norm, update_stats=train)
    x = x.reshape(z.shape[0], base_h, base_w, widths[0])
    for features in widths[1:]:
      x = GeneratorBlock(features, self.num_classes, self.spectral_norm)(x, labels, train)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(self.spectral_norm)(x, update_stats=train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train,
                             momentum=layers.BATCH_NORM_MOMENTUM)(x))
    x = _Conv(self.channels, 3, self.spectral_norm, name="to_image")(x, train)
    return jnp.tanh(x)


class Discriminator(nn.Module):
  """Image -> optimized block -> residual down-blocks to the base map (optional
  self-attention, optional minibatch stddev) -> a last block at the base size -> ReLU ->
  global sum pool -> (logits (B,), class_logits (B, num_classes) for "acgan", else None).

  Per-example (no BatchNorm), as R1 and the gradient penalty need, except for the
  minibatch-stddev layer (`minibatch_std` > 0), which is per-group by design.
  """
  width: int = 64  # Channels of the first (highest-resolution) block.
  max_width: int = 512
  conditioning: str = "none"  # layers.CONDITIONINGS
  num_classes: int = 0
  spectral_norm: bool = False
  minibatch_std: int = 0  # Group size; 0 = off.
  attention_resolution: int = 0  # Height after whose block self-attention goes; 0 = none.

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    image_size = x.shape[1:3]
    check_attention_resolution(self.attention_resolution, image_size)
    widths = level_widths(self.width, self.max_width, num_blocks(image_size))
    for i, features in enumerate(widths):
      x = DiscriminatorBlock(features, first=i == 0, spectral_norm=self.spectral_norm)(
          x, train)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(self.spectral_norm)(x, update_stats=train)
    if self.minibatch_std:
      x = layers.MinibatchStdDev(self.minibatch_std)(x)
    x = DiscriminatorBlock(widths[-1], downsample=False, spectral_norm=self.spectral_norm)(
        x, train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))
    return layers.discriminator_head(
        features, labels, conditioning=self.conditioning, num_classes=self.num_classes,
        spectral_norm=self.spectral_norm, update_stats=train, kernel_init=_init)
