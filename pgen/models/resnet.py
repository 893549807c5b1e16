"""SNGAN/BigGAN-style residual generator and discriminator as Flax linen modules.

    generator, discriminator = build(config.model, image_shape=(32, 32, 1), num_classes=10)
    images, g_updates = generator.apply(g_variables, z, labels, train=True,
                                        mutable=["batch_stats"])
    (logits, _), d_updates = discriminator.apply(d_variables, images, labels, train=True,
                                                 mutable=["batch_stats"])

Widths mirror the DCGAN models: `width` is the channel count at the highest resolution,
doubled per block towards the base map (4x4 for square images, as `layers.num_blocks`
gives for others) and capped at `max_width`. G upsamples by nearest neighbour + 3x3
convolution rather than a transposed convolution, whose weight gradient XLA:CPU computes
slowly. Shortcut 1x1 convolutions run at the lower resolution (they commute with nearest
upsampling and average pooling, so the result is the same at a quarter of the cost).
"""

import functools

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from pgen.core.config_keys import Key, at_least
from pgen.data import options as data_options
from pgen.models import layers

_init = nn.initializers.xavier_uniform()  # SNGAN's initialization.
GENERATION_OPTIONS = ()  # What `generate` may set beyond z and labels: nothing.

# The keys only this family reads (model.max_width, which r3gan reads too, is shared).
CONFIG_KEYS = (
    Key("model.attention_resolution", 0,
        "Feature-map height where G and D get SAGAN self-attention; 0 = none.",
        at_least(0, "an integer")),
)


def _attention_only_here(config: ml_collections.ConfigDict) -> str | None:
  attention, name = config.model.attention_resolution, config.model.name
  if not attention or name == "resnet":
    return None
  return (f"model.attention_resolution={attention} is only supported by model.name='resnet'; "
          f"set it to 0 for {name!r}.")


def _attention_at_a_block_height(config: ml_collections.ConfigDict) -> str | None:
  attention = config.model.attention_resolution
  image_size = data_options.target_size(config.data.resolution)
  if config.model.name != "resnet" or not attention or (
      attention in attention_resolutions(image_size)):
    return None
  return (f"model.attention_resolution={attention} is not a feature-map height of the ResNet "
          f"models at {image_size[0]}x{image_size[1]}; choose 0 (no attention) or one of "
          f"{attention_resolutions(image_size)}.")


CONFIG_RULES = (_attention_only_here, _attention_at_a_block_height)


def build(model: ml_collections.ConfigDict, image_shape, num_classes: int, *,
          dtype=jnp.float32, param_dtype=jnp.float32, label_sizes: tuple = ()):
  """(Generator, Discriminator) for images of `image_shape` (H, W, C); `num_classes` > 0
  makes both class-conditional."""
  image_size = tuple(image_shape[:2])
  kit = functools.partial(layers.LayerKit, kernel_init=_init, activation=nn.relu, dtype=dtype,
                          param_dtype=param_dtype, label_sizes=tuple(label_sizes))
  generator = Generator(
      image_size=image_size, channels=image_shape[2], width=model.g_width,
      max_width=model.max_width, num_classes=num_classes,
      attention_resolution=model.attention_resolution,
      kit=kit(spectral_norm=model.g_spectral_norm))
  discriminator = Discriminator(
      width=model.d_width, max_width=model.max_width, conditioning=model.conditioning,
      num_classes=num_classes, minibatch_std=model.minibatch_std,
      attention_resolution=model.attention_resolution,
      kit=kit(spectral_norm=model.d_spectral_norm))
  return generator, discriminator


def level_widths(width: int, max_width: int, levels: int):
  """Channels per resolution level, highest resolution first: width, 2*width, ... capped."""
  return [min(width * 2 ** i, max_width) for i in range(levels)]


def attention_resolutions(image_size):
  """Heights where both networks have a block output to put self-attention after: from
  twice the base map's height up to half the image height."""
  blocks = layers.num_blocks(image_size)
  base_height = layers.base_size(image_size)[0]
  return tuple(base_height * 2 ** k for k in range(1, blocks))


class _Conv(nn.Module):
  """A square convolution with padding "SAME", named "conv" (as the checkpoints have it)."""
  features: int
  kernel_size: int
  kit: layers.LayerKit
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    return self.kit.conv(self.features, (self.kernel_size, self.kernel_size), padding="SAME",
                            use_bias=self.use_bias, name="conv")(x)


class GeneratorBlock(nn.Module):
  """BN -> ReLU -> upsample -> conv3x3 -> BN -> ReLU -> conv3x3, plus an upsampled 1x1-conv
  shortcut. BatchNorms are class-conditional when `num_classes` > 0.

  The convolutions have no bias: a BatchNorm (with its own bias) follows each of them, so
  a bias would get an exactly-zero gradient, which Adam turns from rounding noise into
  full-size steps that differ between device layouts."""
  features: int
  kit: layers.LayerKit
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, labels):
    kit = self.kit
    norm_act = lambda t: kit.activation(kit.batch_norm(t, labels, self.num_classes))  # noqa: E731
    h = layers.upsample_nearest(norm_act(x))
    h = _Conv(self.features, 3, kit, use_bias=False, name="conv1")(h)
    h = _Conv(self.features, 3, kit, use_bias=False, name="conv2")(norm_act(h))
    shortcut = _Conv(self.features, 1, kit, use_bias=False, name="shortcut")(x)
    return h + layers.upsample_nearest(shortcut)


class DiscriminatorBlock(nn.Module):
  """ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avgpool], plus a shortcut ([avgpool ->] 1x1
  conv) when the block downsamples or changes the width.

  `first` is SNGAN's optimized first block: no ReLU on the input image, and the shortcut
  is always pooled and projected.
  """
  features: int
  kit: layers.LayerKit
  downsample: bool = True
  first: bool = False

  @nn.compact
  def __call__(self, x):
    act = self.kit.activation
    h = x if self.first else act(x)
    h = _Conv(self.features, 3, self.kit, name="conv1")(h)
    h = _Conv(self.features, 3, self.kit, name="conv2")(act(h))
    shortcut = x
    if self.downsample:
      h, shortcut = layers.avg_pool_2x2(h), layers.avg_pool_2x2(shortcut)
    if self.first or self.downsample or x.shape[-1] != self.features:
      shortcut = _Conv(self.features, 1, self.kit, name="shortcut")(shortcut)
    return h + shortcut


class Generator(nn.Module):
  """z -> dense -> base map -> residual up-blocks (optional self-attention) -> BN -> ReLU ->
  conv3x3 -> tanh image in [-1, 1]."""
  image_size: tuple = (32, 32)  # (height, width)
  channels: int = 1
  width: int = 64  # Channels at the highest resolution.
  max_width: int = 512
  num_classes: int = 0  # 0: unconditional (labels are ignored).
  attention_resolution: int = 0  # Height after whose block self-attention goes; 0 = none.
  kit: layers.LayerKit = layers.LayerKit(kernel_init=_init)

  @nn.compact
  def __call__(self, z, labels=None, train: bool = False):
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    kit = self.kit.training(train)
    blocks = layers.num_blocks(self.image_size)
    widths = level_widths(self.width, self.max_width, blocks + 1)[::-1]  # base map first
    base_h, base_w = layers.base_size(self.image_size)
    # No bias: the first block starts with a BatchNorm (see GeneratorBlock).
    x = kit.dense(base_h * base_w * widths[0], use_bias=False)(z)
    x = x.reshape(z.shape[0], base_h, base_w, widths[0])
    for features in widths[1:]:
      x = GeneratorBlock(features, kit, self.num_classes)(x, labels)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(kit)(x)
    x = kit.activation(kit.batch_norm(x))
    x = _Conv(self.channels, 3, kit, name="to_image")(x)
    return jnp.tanh(x).astype(jnp.float32)  # Images leave in float32 whatever kit.dtype.


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
  minibatch_std: int = 0  # Group size; 0 = off.
  attention_resolution: int = 0  # Height after whose block self-attention goes; 0 = none.
  kit: layers.LayerKit = layers.LayerKit(kernel_init=_init)

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    image_size = x.shape[1:3]
    kit = self.kit.training(train)
    widths = level_widths(self.width, self.max_width, layers.num_blocks(image_size))
    for i, features in enumerate(widths):
      x = DiscriminatorBlock(features, kit, first=i == 0)(x)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(kit)(x)
    if self.minibatch_std:
      x = layers.MinibatchStdDev(self.minibatch_std)(x)
    x = DiscriminatorBlock(widths[-1], kit, downsample=False)(x)
    features = jnp.sum(kit.activation(x).astype(jnp.float32), axis=(1, 2))
    return layers.discriminator_head(kit, features, labels, self.conditioning, self.num_classes)
