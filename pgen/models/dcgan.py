"""DCGAN generator and discriminator (Radford et al., 2016) as Flax linen modules.

    generator, discriminator = build(config.model, image_shape=(32, 32, 1), num_classes=0)
    variables = generator.init(rng, z, train=False)           # {'params', 'batch_stats'}
    images, updates = generator.apply(variables, z, train=True, mutable=["batch_stats"])
    logits, class_logits = discriminator.apply(d_variables, images, labels)

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

import functools

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from pgen.core.config_keys import Key, one_of
from pgen.models import layers

GENERATION_OPTIONS = ()  # What `generate` may set beyond z and labels: nothing.
UPSAMPLE_MODES = ("subpixel", "nearest", "transpose")
DOWNSAMPLE_MODES = ("space_to_depth", "strided")

_init = nn.initializers.normal(0.02)  # The DCGAN paper's initialization.

# The keys only this family reads.
CONFIG_KEYS = (
    Key("model.upsample", "subpixel",
        "How G doubles resolution: \"subpixel\" (2x2 conv + depth-to-space), \"nearest\" "
        "(upsample + 3x3 conv) or \"transpose\" (DCGAN's 4x4 stride-2 transposed conv).",
        one_of(UPSAMPLE_MODES)),
    Key("model.downsample", "space_to_depth",
        "How D halves resolution: \"space_to_depth\" (+ 2x2 conv) or \"strided\" (DCGAN's 4x4 "
        "stride-2 conv). Each pair has the same parameters and FLOPs; bench/RESULTS.md has "
        "speeds.", one_of(DOWNSAMPLE_MODES)),
)
# Nothing beyond its keys' checks: the attention it lacks is refused by resnet's rule.
CONFIG_RULES = ()


def build(model: ml_collections.ConfigDict, image_shape, num_classes: int, *,
          dtype=jnp.float32, param_dtype=jnp.float32, label_sizes: tuple = ()):
  """(Generator, Discriminator) for images of `image_shape` (H, W, C); `num_classes` > 0
  makes both class-conditional."""
  kit = functools.partial(layers.LayerKit, kernel_init=_init, dtype=dtype,
                          param_dtype=param_dtype, label_sizes=tuple(label_sizes))
  generator = Generator(
      image_size=tuple(image_shape[:2]), channels=image_shape[2], width=model.g_width,
      upsample=model.upsample, num_classes=num_classes,
      kit=kit(activation=nn.relu, spectral_norm=model.g_spectral_norm))
  discriminator = Discriminator(
      width=model.d_width, downsample=model.downsample, conditioning=model.conditioning,
      num_classes=num_classes, minibatch_std=model.minibatch_std,
      kit=kit(activation=functools.partial(nn.leaky_relu, negative_slope=0.2),
                 spectral_norm=model.d_spectral_norm))
  return generator, discriminator


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


class Upsample(nn.Module):
  """Doubles height and width and maps to `features` channels."""
  features: int
  mode: str
  kit: layers.LayerKit
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    if self.mode == "transpose":
      return self.kit.conv_transpose(self.features, (4, 4), strides=(2, 2), padding="SAME",
                                        use_bias=self.use_bias)(x)
    if self.mode == "subpixel":
      x = self.kit.conv(self.features * 4, (2, 2), padding="SAME", use_bias=self.use_bias)(x)
      return depth_to_space(x)
    if self.mode == "nearest":
      return self.kit.conv(self.features, (3, 3), padding="SAME", use_bias=self.use_bias)(
          layers.upsample_nearest(x))
    raise ValueError(f"model.upsample={self.mode!r} is unknown; choose one of {UPSAMPLE_MODES}.")


class Downsample(nn.Module):
  """Halves height and width and maps to `features` channels."""
  features: int
  mode: str
  kit: layers.LayerKit

  @nn.compact
  def __call__(self, x):
    if self.mode == "space_to_depth":
      return self.kit.conv(self.features, (2, 2), padding="SAME")(space_to_depth(x))
    if self.mode == "strided":
      return self.kit.conv(self.features, (4, 4), strides=(2, 2), padding="SAME")(x)
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
  kit: layers.LayerKit = layers.LayerKit(kernel_init=_init)

  @nn.compact
  def __call__(self, z, labels=None, train: bool = False):
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    kit = self.kit.training(train)
    blocks = layers.num_blocks(self.image_size)
    features = [self.width * 2 ** i for i in reversed(range(blocks))]  # e.g. 256, 128, 64
    base_h, base_w = layers.base_size(self.image_size)

    def norm_act(x):
      return kit.activation(kit.batch_norm(x, labels, self.num_classes))

    x = kit.dense(base_h * base_w * features[0], use_bias=False)(z)
    x = norm_act(x.reshape(z.shape[0], base_h, base_w, features[0]))
    for f in features[1:]:
      x = norm_act(Upsample(f, self.upsample, kit, use_bias=False)(x))
    x = Upsample(self.channels, self.upsample, kit)(x)
    return jnp.tanh(x).astype(jnp.float32)  # Images leave in float32 whatever kit.dtype.


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
  minibatch_std: int = 0  # Group size; 0 = off.
  kit: layers.LayerKit = layers.LayerKit(
      kernel_init=_init, activation=functools.partial(nn.leaky_relu, negative_slope=0.2))

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    kit = self.kit.training(train)
    blocks = layers.num_blocks(x.shape[1:3])
    for i in range(blocks):
      if self.minibatch_std and i == blocks - 1:
        x = layers.MinibatchStdDev(self.minibatch_std)(x)
      x = kit.activation(Downsample(self.width * 2 ** i, self.downsample, kit)(x))
    x = x.reshape(x.shape[0], -1)
    return layers.discriminator_head(kit, x, labels, self.conditioning, self.num_classes)
