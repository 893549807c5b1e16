"""R3GAN (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern GAN
Baseline") as Flax linen modules: ResNeXt-style residual networks without normalization.

    generator, discriminator = build(config.model, image_shape=(64, 48, 3), num_classes=10)
    g_variables = generator.init(rng, z, labels, train=False)  # {"params"}: no batch stats
    images = generator.apply(g_variables, z, labels, train=True)     # (B, H, W, C) float32
    logits, class_logits = discriminator.apply(d_variables, images, labels, train=True)

Residual block: x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))), the inner width
`expansion` times the block's, where act adds a learned per-channel bias and applies leaky
ReLU(0.2). Every weight is drawn N(0, gain^2 / fan_in) (MSR); the blocks' first two
convolutions take gain sqrt(2 / (1 + 0.2^2)) * L^(-1/4) for the L blocks of the network,
and their last is zero, so every block starts as the identity ("fix-up" initialization,
which lets the networks train without normalization).

Generator: z (joined with an embedded label when conditional) scales the channels of a
learned constant of the base map size (the "generative basis"), then per stage: residual
blocks, a 1x1 convolution where the width changes and bilinear 2x upsampling; a last 1x1
convolution gives the image (no tanh: pixels.to_uint8 clips what leaves [-1, 1]).
Discriminator: a 1x1 convolution from the image, per stage residual blocks then bilinear 2x
downsampling and a 1x1 convolution where the width changes; at the base map a depthwise
convolution as large as the map (the "discriminative basis") gives the features that
layers.discriminator_head turns into logits.

Widths are the ResNet family's (model.g_width / d_width at the highest resolution, doubled
per stage towards the base map, capped by model.max_width). The grouped convolution has
model.cardinality groups at the widest stage and proportionally fewer at narrower ones, so
every group has as many channels (the paper: 96 groups of 16 at width 768, expansion 2).
The paper trains it with the relativistic pairing loss and R1 + R2 (pgen/gan/losses.py).

The same functions as the official networks (pgen/models/official_r3gan.py converts their
weights) with model.resample_border="zeros", the official code's resampling borders.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen.core.config_keys import Key, at_least, one_of
from pgen.data import options as data_options
from pgen.models import layers, resample, resnet

GENERATION_OPTIONS = ()  # What `generate` may set beyond z and labels: nothing.
NEGATIVE_SLOPE = 0.2
# Leaky ReLU's gain: what keeps the second moment through a layer (He et al. 2015).
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + NEGATIVE_SLOPE ** 2))
# The paper's resampling filter [1, 2, 1] is widened by a box [1, 1] before use (its code
# does the same): [1, 3, 3, 1], whose 2x resampling is bilinear with half-pixel centres.
# [1, 2, 1] itself in resample.upsample_2x would keep every input pixel on the odd outputs
# and shift the image by a quarter of an input pixel per stage.
RESAMPLE_TAPS = tuple(np.convolve((1, 2, 1), (1, 1)).tolist())
RESAMPLE_BORDERS = ("edge", "zeros")  # model.resample_border

# The keys only this family reads (it shares model.max_width with resnet). Other families
# ignore them, as they ignore each other's sizes.
CONFIG_KEYS = (
    Key("model.expansion", 2,
        "R3GAN: a residual block's inner width is this times its own (inverted bottleneck).",
        at_least(1, "an integer")),
    Key("model.cardinality", 8,
        "R3GAN: groups of the blocks' 3x3 convolution at the widest stage; narrower stages "
        "get proportionally fewer, so each group keeps expansion * widest / cardinality "
        "channels (the paper: 96 groups at width 768, i.e. 16 channels).",
        at_least(1, "an integer")),
    Key("model.blocks_per_stage", 2, "R3GAN: residual blocks per resolution of G and D.",
        at_least(1, "an integer")),
    Key("model.grouped_conv_dense", False,
        "R3GAN: compute each grouped 3x3 convolution as one ordinary convolution with a "
        "block-diagonal kernel (the same parameters and function): 2-20x faster to train on "
        "CPUs, where XLA's grouped convolutions are slow (bench/bench_conv_forms.py); "
        "model.cardinality times the FLOPs, so leave it off on accelerators."),
    Key("model.resample_border", "edge",
        "R3GAN: what the 2x resampling sees beyond the border: \"edge\" (the border pixels "
        "repeated: a constant map stays constant) or \"zeros\" (the official code's "
        "upfirdn2d: border pixels attenuated), which imported official weights select.",
        one_of(RESAMPLE_BORDERS)),
)


def msr_init(gain: float = 1.0):
  """Weights ~ N(0, gain^2 / fan_in), fan_in = input channels per group * kernel area."""
  return nn.initializers.variance_scaling(gain ** 2, "fan_in", "normal")


def network_widths(width: int, max_width: int, image_size) -> list[int]:
  """Channels per stage, highest resolution first (the discriminator's order)."""
  return resnet.level_widths(width, max_width, layers.num_blocks(image_size) + 1)


def stage_groups(widths, expansion: int, cardinality: int) -> list[int] | None:
  """Groups of each stage's grouped convolution: `cardinality` at the widest, as many
  channels per group everywhere; None where some stage would not get whole groups."""
  per_group, remainder = divmod(max(widths) * expansion, cardinality)
  if remainder or any(width * expansion % per_group for width in widths):
    return None
  return [width * expansion // per_group for width in widths]


def block_gain(num_blocks: int) -> float:
  """Gain of a residual block's first two convolutions in a network of L = `num_blocks`
  blocks: leaky ReLU's gain times L^(-1/(2m - 2)) for m = 3 layers per block, so that an
  optimizer step changes the output by about as much however deep the network is (Fixup,
  Zhang et al. 2019; Huang et al. 2024 section 3)."""
  return ACTIVATION_GAIN * num_blocks ** -0.25


def _cardinality_fits(config: ml_collections.ConfigDict) -> str | None:
  model = config.model
  if model.name != "r3gan":
    return None
  image_size = data_options.target_size(config.data.resolution)
  for network, width in (("generator", model.g_width), ("discriminator", model.d_width)):
    widths = network_widths(width, model.max_width, image_size)
    if stage_groups(widths, model.expansion, model.cardinality) is None:
      choices = [c for c in range(1, max(widths) * model.expansion + 1)
                 if stage_groups(widths, model.expansion, c)]
      return (f"model.cardinality={model.cardinality} does not split every stage of the R3GAN "
              f"{network} into whole groups of equal size (stage widths {widths} times "
              f"model.expansion={model.expansion}); choose one of {choices}, or change "
              "model.g_width / model.d_width / model.max_width.")
  return None


def _no_spectral_norm(config: ml_collections.ConfigDict) -> str | None:
  if config.model.name != "r3gan":
    return None
  for key in ("g_spectral_norm", "d_spectral_norm"):
    if config.model[key]:
      return (f"model.{key}=True is not supported by model.name='r3gan': its blocks' last "
              "convolutions start at zero (fix-up initialization), where spectral norm's power "
              "iteration collapses to zero and never normalizes them; R1 + R2 take its place, "
              "so set it to False.")
  return None


# Attention (resnet's rule) and path length (stylegan2's) are refused for r3gan there.
CONFIG_RULES = (_cardinality_fits, _no_spectral_norm)


def build(model: ml_collections.ConfigDict, image_shape, num_classes: int, *,
          dtype=jnp.float32, param_dtype=jnp.float32, label_sizes: tuple = ()):
  """(Generator, Discriminator) for images of `image_shape` (H, W, C); `num_classes` > 0
  makes both class-conditional."""
  kit = layers.LayerKit(kernel_init=msr_init(), activation=leaky_relu, dtype=dtype,
                        param_dtype=param_dtype, label_sizes=tuple(label_sizes))
  shared = {"max_width": model.max_width, "expansion": model.expansion,
            "cardinality": model.cardinality, "blocks_per_stage": model.blocks_per_stage,
            "grouped_conv_dense": model.grouped_conv_dense,
            "resample_border": model.resample_border, "num_classes": num_classes, "kit": kit}
  generator = Generator(image_size=tuple(image_shape[:2]), channels=image_shape[2],
                        width=model.g_width, **shared)
  discriminator = Discriminator(width=model.d_width, conditioning=model.conditioning,
                                minibatch_std=model.minibatch_std, **shared)
  return generator, discriminator


def leaky_relu(x):
  return nn.leaky_relu(x, NEGATIVE_SLOPE)


def upsample(x: jnp.ndarray, border: str = "edge") -> jnp.ndarray:
  """(B, H, W, C) -> (B, 2H, 2W, C), bilinear (half-pixel centres). `border` "edge": edges
  repeated (a constant image stays constant, as jax.image.resize's "bilinear" does);
  "zeros": zero padding, as the official upfirdn2d.upsample2d."""
  if border == "zeros":
    return resample.upsample_2x(x, RESAMPLE_TAPS)
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  return resample.upsample_2x(padded, RESAMPLE_TAPS)[:, 2:-2, 2:-2]


def downsample(x: jnp.ndarray, border: str = "edge") -> jnp.ndarray:
  """(B, H, W, C) -> (B, H/2, W/2, C): the [1, 3, 3, 1] / 8 filter over each 4x4 window
  around a 2x2 block; beyond the border edges repeated (a constant image stays constant)
  or, with `border` "zeros", zeros (the official upfirdn2d.downsample2d)."""
  if border == "zeros":
    return resample.downsample_2x(x, RESAMPLE_TAPS)
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  return resample.upfirdn2d(padded, resample.fir_filter(RESAMPLE_TAPS), down=2)


class BiasedActivation(nn.Module):
  """x + b (a learned per-channel bias, zero at init), then the kit's leaky ReLU."""
  kit: layers.LayerKit

  @nn.compact
  def __call__(self, x):
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],), self.kit.param_dtype)
    return self.kit.activation(x + bias.astype(x.dtype))


def block_diagonal(kernel: jnp.ndarray, groups: int) -> jnp.ndarray:
  """A grouped convolution's kernel (kh, kw, C / groups, F) as the ungrouped kernel
  (kh, kw, C, F) of the same convolution: group g's block at input channels
  [g C / groups, (g + 1) C / groups) and output features [g F / groups, ...), zeros
  elsewhere."""
  kh, kw, per_group, features = kernel.shape
  blocks = kernel.reshape(kh, kw, per_group, groups, features // groups)
  dense = jnp.einsum("hwigo,gk->hwgiko", blocks, jnp.eye(groups, dtype=kernel.dtype))
  return dense.reshape(kh, kw, groups * per_group, features)


class GroupedConv3x3(nn.Module):
  """A bias-free 3x3 convolution ("SAME") in `groups` groups, its kernel (3, 3, C / groups,
  features) as nn.Conv's. `dense` computes it as one ungrouped convolution with the
  block-diagonal kernel: the same function, `groups` times the FLOPs, but several times
  faster on CPUs, where XLA's grouped convolutions are slow (bench/bench_conv_forms.py)."""
  features: int
  groups: int
  kit: layers.LayerKit
  dense: bool
  gain: float

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    per_group = channels // self.groups
    kernel = self.param("kernel", msr_init(self.gain), (3, 3, per_group, self.features),
                        self.kit.param_dtype).astype(self.kit.dtype)
    groups = self.groups
    if self.dense:
      kernel, groups = block_diagonal(kernel, groups), 1
    return jax.lax.conv_general_dilated(
        x.astype(self.kit.dtype), kernel, (1, 1), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


class ResidualBlock(nn.Module):
  """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))): an inverted bottleneck of
  `expansion` times the width, its convolutions without bias (the activations carry it).
  `gain` initializes the first two; the last starts at zero, so the block is the identity."""
  kit: layers.LayerKit
  expansion: int
  groups: int
  gain: float
  grouped_conv_dense: bool = False

  @nn.compact
  def __call__(self, x):
    kit, width = self.kit, x.shape[-1]
    inner = width * self.expansion
    y = kit.dense(inner, use_bias=False, kernel_init=msr_init(self.gain), name="expand")(x)
    y = BiasedActivation(kit, name="act1")(y)
    y = GroupedConv3x3(inner, self.groups, kit, self.grouped_conv_dense, self.gain,
                       name="grouped")(y)
    y = BiasedActivation(kit, name="act2")(y)
    y = kit.dense(width, use_bias=False, kernel_init=nn.initializers.zeros, name="project")(y)
    return x + y


class Resample(nn.Module):
  """Bilinear 2x up- or downsampling with a 1x1 convolution where the width changes, at the
  lower resolution (it commutes with the resampling: the same result at a quarter of the
  cost): conv then up, or down then conv. `border`: see upsample."""
  features: int
  kit: layers.LayerKit
  up: bool
  border: str = "edge"

  @nn.compact
  def __call__(self, x):
    def project(t):
      if t.shape[-1] == self.features:
        return t
      return self.kit.dense(self.features, use_bias=False, name="project")(t)

    if self.up:
      return upsample(project(x), self.border)
    return project(downsample(x, self.border))


class GenerativeBasis(nn.Module):
  """(B, D) -> (B, h, w, C): a learned constant map (N(0, 1) at init) whose channels are
  scaled per example by a bias-free linear map of the input."""
  base_size: tuple  # (h, w)
  features: int
  kit: layers.LayerKit

  @nn.compact
  def __call__(self, x):
    basis = self.param("basis", nn.initializers.normal(1.0), (*self.base_size, self.features),
                       self.kit.param_dtype)
    scale = self.kit.dense(self.features, use_bias=False)(x)
    return basis.astype(self.kit.dtype)[None] * scale[:, None, None, :]


class _Stages(nn.Module):
  """What the generator and the discriminator share: widths, residual blocks, the kit."""
  width: int = 64  # Channels at the highest resolution.
  max_width: int = 512
  expansion: int = 2
  cardinality: int = 8
  blocks_per_stage: int = 2
  grouped_conv_dense: bool = False  # GroupedConv3x3's form (the same parameters either way).
  resample_border: str = "edge"  # One of RESAMPLE_BORDERS.
  num_classes: int = 0  # 0: unconditional (labels are ignored).
  kit: layers.LayerKit = layers.LayerKit(kernel_init=msr_init(), activation=leaky_relu)

  def blocks(self, kit, x, groups: int, gain: float):
    """A stage's `blocks_per_stage` residual blocks (called from the compact __call__)."""
    for _ in range(self.blocks_per_stage):
      x = ResidualBlock(kit, self.expansion, groups, gain, self.grouped_conv_dense)(x)
    return x

  def plan(self, image_size):
    """(widths highest resolution first, their groups, the blocks' gain)."""
    widths = network_widths(self.width, self.max_width, image_size)
    groups = stage_groups(widths, self.expansion, self.cardinality)
    if groups is None:  # pgen.config refuses such configs; this is for direct users.
      raise ValueError(f"cardinality={self.cardinality} gives no whole groups at every width "
                       f"of {widths} x expansion={self.expansion}.")
    return widths, groups, block_gain(self.blocks_per_stage * len(widths))


class Generator(_Stages):
  """z [+ embedded label] -> generative basis -> stages of residual blocks, bilinear 2x
  upsampling between them -> 1x1 conv -> float32 image (unbounded: no tanh)."""
  image_size: tuple = (32, 32)  # (height, width)
  channels: int = 1

  @nn.compact
  def __call__(self, z, labels=None, train: bool = False):
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    kit = self.kit.training(train)
    x = z
    if self.num_classes:  # The paper: an embedding as long as z (a linear map of one-hot y).
      embedded = kit.embed_labels(
          labels, self.num_classes, z.shape[-1], name="class_embedding",
          embedding_init=nn.initializers.normal(self.num_classes ** -0.5))
      x = jnp.concatenate([z.astype(kit.dtype), embedded], axis=-1)
    widths, group_counts, gain = self.plan(self.image_size)
    widths, group_counts = widths[::-1], group_counts[::-1]  # Base map first.
    x = GenerativeBasis(layers.base_size(self.image_size), widths[0], kit)(x)
    for stage, (features, groups) in enumerate(zip(widths, group_counts)):
      if stage:
        x = Resample(features, kit, up=True, border=self.resample_border)(x)
      x = self.blocks(kit, x, groups, gain)
    x = kit.dense(self.channels, use_bias=False, name="to_image")(x)
    return x.astype(jnp.float32)  # Images leave in float32 whatever kit.dtype.


class Discriminator(_Stages):
  """Image -> 1x1 conv -> stages of residual blocks, bilinear 2x downsampling between them
  (optional minibatch stddev before the last) -> discriminative basis -> (logits (B,),
  class_logits (B, num_classes) for "acgan", else None).

  Per-example (no normalization), as R1 and R2 need, except for the minibatch-stddev layer
  (`minibatch_std` > 0), which is per-group by design; it adds a channel that a 1x1
  convolution folds back into the stage's width.
  """
  conditioning: str = "none"  # layers.CONDITIONINGS
  minibatch_std: int = 0  # Group size; 0 = off.

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    kit = self.kit.training(train)
    widths, group_counts, gain = self.plan(x.shape[1:3])
    x = kit.dense(widths[0], use_bias=False, name="from_image")(x)
    for stage, (features, groups) in enumerate(zip(widths, group_counts)):
      if stage:
        x = Resample(features, kit, up=False, border=self.resample_border)(x)
      if stage == len(widths) - 1 and self.minibatch_std:
        x = layers.MinibatchStdDev(self.minibatch_std)(x)
        x = kit.dense(features, use_bias=False, name="minibatch_std_project")(x)
      x = self.blocks(kit, x, groups, gain)
    # The discriminative basis: a depthwise convolution over the whole base map, i.e. a
    # weighted sum of each channel over the map.
    basis = self.param("basis", msr_init(), (*x.shape[1:3], 1, x.shape[-1]), kit.param_dtype)
    features = jnp.einsum("bhwc,hwc->bc", x, basis[:, :, 0].astype(kit.dtype))
    return layers.discriminator_head(kit, features, labels, self.conditioning, self.num_classes)
