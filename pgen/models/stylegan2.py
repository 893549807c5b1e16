"""StyleGAN2 (Karras et al. 2020, config F) as Flax linen modules: a mapping network, a skip
generator of modulated convolutions with noise inputs, and a residual discriminator.

    generator, discriminator = build(config.model, image_shape=(64, 48, 3), num_classes=0)
    images = generator.apply(g_variables, z, labels, train=False, truncation_psi=0.7)
    ws = generator.apply(g_variables, z, labels, method="map_latents")  # (B, num_ws, w_dim)
    images = generator.apply(g_variables, ws, method="synthesize", noise_mode="const")
    logits, class_logits = discriminator.apply(d_variables, images, labels)

Generator: z (normalized; joined with an embedded, normalized label when conditional) ->
`mapping_layers` dense layers at 1/100 of the learning rate -> w, broadcast to one w per
layer. Synthesis starts from a learned constant of the base size (4x4, or e.g. 8x6 for
64x48: non-square frames come from a non-square constant) and doubles it per block: two
modulated 3x3 convolutions (the first upsampling with the [1,3,3,1] FIR filter), each
with a noise input, and a toRGB whose image is added to the upsampled image so far.
In training it also updates `w_avg`, the running mean of w (per class for a conditional
generator; in the generator's "batch_stats" collection, so the state and the EMA carry
it), which truncation pulls towards, and mixes styles: with probability
`style_mixing_probability` the layers from a random cutoff on take the w of a second z.

Discriminator: fromRGB, then per block two 3x3 convolutions (the second FIR-downsampling)
plus a 1x1 downsampled skip, summed with gain sqrt(1/2); at the base size minibatch
standard deviation, a 3x3 convolution and two dense layers. Conditional: "projection"
projects the output onto the label mapped by its own small mapping network (StyleGAN2-ADA's
cmap); "acgan" adds a class head.

Widths: a block of height h has min(channel_base // h, channel_max) channels.

The same functions as StyleGAN2-ADA's official networks (pgen/models/official_stylegan2.py
converts their weights; tests/unit/models/test_official_parity.py compares the outputs),
with two options the imported weights select: `stored_noise_const` (the const noise images
as state, not derived from the layer's name) and `minibatch_std_form="stylegan2_ada"`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen.core.config_keys import Key, above_up_to, at_least, between, one_of
from pgen.models import layers, resample
from pgen.models.modulated import (NOISE_MODES, EqualizedConv, EqualizedDense, SynthesisLayer,
                                   ToRGB, at_least_float32, leaky_relu, normalize_second_moment)

# What `generate` may set beyond z and labels (pgen.generation.generators).
GENERATION_OPTIONS = ("truncation", "noise_mode")
W_AVG_BETA = 0.995  # Decay of the running mean of w per training forward pass.
SKIP_GAIN = float(np.sqrt(0.5))  # Residual sum of the discriminator's blocks.
# model.minibatch_std_form: pgen's layer, or StyleGAN2-ADA's (strided groups, its epsilon).
MINIBATCH_STD_FORMS = {"pgen": {"strided": False, "epsilon": layers.MINIBATCH_STD_EPSILON},
                       "stylegan2_ada": {"strided": True, "epsilon": 1e-8}}

# The keys only this family reads; latent_dim is its z, minibatch_std its group size.
CONFIG_KEYS = (
    Key("model.w_dim", 512, "Width of w, the mapping network's output.", at_least(1)),
    Key("model.mapping_layers", 8,
        "Dense layers of the mapping network (StyleGAN2-ADA: 2 for small data).", at_least(1)),
    Key("model.mapping_lr_multiplier", 0.01,
        "The mapping network learns at this fraction of the rate (StyleGAN2: 1/100).",
        above_up_to(0, 1)),
    Key("model.channel_base", 16384,
        "A block of height h has min(channel_base // h, channel_max) channels (config F: "
        "32768, 512).", at_least(1)),
    Key("model.channel_max", 512, "Cap on a block's channels (see channel_base).",
        at_least(1)),
    Key("model.conv_clamp", 0.0,
        "Every convolution's output clamped to +-conv_clamp times its gain, D's skips not "
        "(StyleGAN2-ADA: 256, for reduced precision); 0 = off.", at_least(0.0)),
    Key("model.style_mixing_probability", 0.9,
        "Chance that a training batch takes the styles of a second z from a random layer on.",
        between(0.0, 1.0)),
    Key("model.fused_modconv", False,
        "Modulated convolutions as one grouped convolution over per-sample weights (True), or "
        "by scaling activations around one shared convolution (False); the same function."),
    Key("model.d_mapping_layers", 0,
        "Dense layers of the projection discriminator's label mapping (StyleGAN2-ADA's cmap); "
        "0 = as model.mapping_layers (StyleGAN2-ADA's train.py leaves it at 8).", at_least(0)),
    Key("model.minibatch_std_form", "pgen",
        "D's minibatch stddev: \"pgen\" (groups of consecutive examples, which stay on one "
        "device when the batch is sharded; epsilon 1e-4 for bounded gradients) or "
        "\"stylegan2_ada\" (the official layer: group j holds examples j, j + B/G, ...; "
        "epsilon 1e-8), which imported official weights select.",
        one_of(tuple(MINIBATCH_STD_FORMS))),
    Key("model.stored_noise_const", False,
        "Keep each synthesis layer's fixed noise image (noise_mode \"const\") in the "
        "generator's batch_stats, as the official networks keep their noise_const buffers "
        "(imported weights select it); False derives it from the layer's name, with no state "
        "(the same values as a fresh stored one)."),
)


def _no_spectral_norm(config: ml_collections.ConfigDict) -> str | None:
  if config.model.name != "stylegan2":
    return None
  for key in ("g_spectral_norm", "d_spectral_norm"):
    if config.model[key]:
      return (f"model.{key}=True is not supported by model.name='stylegan2' (equalized "
              "learning rate and R1 take its place); set it to False.")
  return None


def _path_length_only_here(config: ml_collections.ConfigDict) -> str | None:
  if not config.loss.pl_weight or config.model.name == "stylegan2":
    return None
  return (f"loss.pl_weight={config.loss.pl_weight} needs model.name='stylegan2' (path lengths "
          f"are measured through its mapping network); model.name={config.model.name!r} has "
          "none, so set loss.pl_weight=0.")


def _minibatch_std_form_only_here(config: ml_collections.ConfigDict) -> str | None:
  form = config.model.minibatch_std_form
  if form == "pgen" or config.model.name == "stylegan2":
    return None
  return (f"model.minibatch_std_form={form!r} is read by model.name='stylegan2' only; "
          f"model.name={config.model.name!r} has pgen's layer, so leave it at 'pgen'.")


CONFIG_RULES = (_no_spectral_norm, _path_length_only_here, _minibatch_std_form_only_here)


def level_widths(image_size, channel_base: int, channel_max: int) -> list[int]:
  """Channels per resolution level, base map first: min(channel_base // height, max)."""
  base_height = layers.base_size(image_size)[0]
  return [max(1, min(channel_base // (base_height * 2 ** i), channel_max))
          for i in range(layers.num_blocks(image_size) + 1)]


def num_ws(image_size) -> int:
  """How many w the synthesis network takes: one per convolution, plus the last toRGB's."""
  return 2 * (layers.num_blocks(image_size) + 1)


def build(model: ml_collections.ConfigDict, image_shape, num_classes: int, *,
          dtype=jnp.float32, param_dtype=jnp.float32, label_sizes: tuple = ()):
  """(Generator, Discriminator) for images of `image_shape` (H, W, C); `num_classes` > 0
  makes both class-conditional."""
  image_size = tuple(image_shape[:2])
  widths = tuple(level_widths(image_size, model.channel_base, model.channel_max))
  kit = layers.LayerKit(activation=leaky_relu, dtype=dtype, param_dtype=param_dtype,
                        label_sizes=tuple(label_sizes))
  mapping = {"w_dim": model.w_dim, "mapping_layers": model.mapping_layers,
             "mapping_lr_multiplier": model.mapping_lr_multiplier}
  generator = Generator(
      image_size=image_size, channels=image_shape[2], widths=widths, num_classes=num_classes,
      style_mixing_probability=model.style_mixing_probability, conv_clamp=model.conv_clamp,
      fused_modconv=model.fused_modconv, stored_noise_const=model.stored_noise_const, kit=kit,
      **mapping)
  label_mapping = dict(mapping, mapping_layers=model.d_mapping_layers or model.mapping_layers)
  discriminator = Discriminator(
      widths=widths[::-1], conditioning=model.conditioning, num_classes=num_classes,
      minibatch_std=model.minibatch_std, minibatch_std_form=model.minibatch_std_form,
      conv_clamp=model.conv_clamp, kit=kit, **label_mapping)
  return generator, discriminator


class MappingNetwork(nn.Module):
  """(z, labels) -> w (B, w_dim), and in training the running mean `w_avg` (one per class
  when conditional). With z_dim 0 (no z) it maps labels alone (the discriminator's cmap)."""
  w_dim: int
  num_layers: int
  lr_multiplier: float
  num_classes: int
  kit: layers.LayerKit
  track_w_avg: bool = True

  @nn.compact
  def __call__(self, z, labels, *, update_w_avg: bool = False, truncation_psi=1.0):
    parts = [] if z is None else [normalize_second_moment(at_least_float32(z))]
    if self.num_classes:
      embedded = EqualizedDense(self.w_dim, self.kit, name="embed")(
          layers.multi_hot(labels, self.kit.attribute_sizes(self.num_classes)))
      parts.append(normalize_second_moment(embedded))
    x = jnp.concatenate(parts, axis=-1)
    for i in range(self.num_layers):
      x = EqualizedDense(self.w_dim, self.kit, lr_multiplier=self.lr_multiplier,
                         activate=True, name=f"fc{i}")(x)
    if not self.track_w_avg:
      return x
    w_avg = self.variable("batch_stats", "w_avg", jnp.zeros,
                          (max(self.num_classes, 1), self.w_dim), jnp.float32)
    rows = (jax.nn.one_hot(labels, self.num_classes) if self.num_classes
            else jnp.ones((x.shape[0], 1)))  # (B, classes): which mean each w belongs to
    if update_w_avg and not self.is_initializing():
      counts = jnp.sum(rows, axis=0)[:, None]
      batch_means = (rows.T @ jax.lax.stop_gradient(x)) / jnp.maximum(counts, 1.0)
      moved = batch_means + W_AVG_BETA * (w_avg.value - batch_means)
      w_avg.value = jnp.where(counts > 0, moved, w_avg.value)
    if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
      center = rows @ w_avg.value
      x = center + truncation_psi * (x - center)
    return x


class SynthesisNetwork(nn.Module):
  """ws (B, num_ws, w_dim) -> images in [-1, 1] float32 (skip architecture)."""
  image_size: tuple
  channels: int
  widths: tuple  # Base map first.
  kit: layers.LayerKit
  fused_modconv: bool = False
  conv_clamp: float = 0.0
  stored_noise_const: bool = False

  @nn.compact
  def __call__(self, ws, noise_mode: str = "random"):
    base_h, base_w = layers.base_size(self.image_size)
    layer = {"kit": self.kit, "fused": self.fused_modconv, "conv_clamp": self.conv_clamp}
    synthesis_layer = dict(layer, stored_noise_const=self.stored_noise_const)
    const = self.param("const", nn.initializers.normal(1.0), (base_h, base_w, self.widths[0]),
                       self.kit.param_dtype)
    x = jnp.broadcast_to(const, (ws.shape[0], *const.shape))
    image = None
    for level, features in enumerate(self.widths):
      h, w = base_h * 2 ** level, base_w * 2 ** level
      name = f"b{h}x{w}"
      first = 2 * level - 1  # Index of the block's first w (the base block has one conv).
      if level:
        x = SynthesisLayer(features, up=True, name=f"{name}_conv0", **synthesis_layer)(
            x, ws[:, first], noise_mode)
      x = SynthesisLayer(features, name=f"{name}_conv1", **synthesis_layer)(
          x, ws[:, first + 1], noise_mode)
      rgb = ToRGB(self.channels, name=f"{name}_torgb", **layer)(x, ws[:, first + 2])
      rgb = at_least_float32(rgb)  # Images leave in float32 whatever the compute dtype.
      image = rgb if image is None else resample.upsample_2x(image) + rgb
    return image


class Generator(nn.Module):
  """z (B, latent_dim) [+ labels] -> images (B, H, W, C) in [-1, 1], float32.

  `noise_mode`: "random" (fresh noise, needs an rng named "noise"), "const" (each layer's
  fixed noise image) or "none"; default "random" in training, "const" otherwise. Training
  also needs an rng named "mixing" when style_mixing_probability > 0, and updates w_avg
  (apply with mutable=["batch_stats"]). `truncation_psi` < 1 pulls w towards w_avg."""
  image_size: tuple
  channels: int
  widths: tuple
  w_dim: int
  mapping_layers: int
  mapping_lr_multiplier: float
  kit: layers.LayerKit
  num_classes: int = 0
  style_mixing_probability: float = 0.0
  conv_clamp: float = 0.0
  fused_modconv: bool = False
  stored_noise_const: bool = False

  @property
  def num_ws(self) -> int:
    return num_ws(self.image_size)

  def setup(self):
    self.mapping = MappingNetwork(self.w_dim, self.mapping_layers, self.mapping_lr_multiplier,
                                  self.num_classes, self.kit)
    self.synthesis = SynthesisNetwork(self.image_size, self.channels, self.widths, self.kit,
                                      self.fused_modconv, self.conv_clamp,
                                      self.stored_noise_const)

  def __call__(self, z, labels=None, train: bool = False, truncation_psi=1.0,
               noise_mode: str | None = None):
    ws = self.map_latents(z, labels, train=train, truncation_psi=truncation_psi)
    return self.synthesize(ws, train=train, noise_mode=noise_mode)

  def map_latents(self, z, labels=None, train: bool = False, truncation_psi=1.0,
                  update_w_avg: bool = True):
    """(B, num_ws, w_dim): w broadcast per layer, style-mixed in training."""
    labels = layers.check_labels(labels, z.shape[0], self.num_classes, self)
    w = self.mapping(z, labels, update_w_avg=train and update_w_avg,
                     truncation_psi=truncation_psi)
    ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[-1]))
    if train and self.style_mixing_probability > 0:
      cutoff_key, chance_key, z_key = jax.random.split(self.make_rng("mixing"), 3)
      cutoff = jax.random.randint(cutoff_key, (), 1, self.num_ws)
      mixing = jax.random.uniform(chance_key) < self.style_mixing_probability
      cutoff = jnp.where(mixing, cutoff, self.num_ws)
      other = self.mapping(jax.random.normal(z_key, z.shape), labels)
      ws = jnp.where(jnp.arange(self.num_ws)[None, :, None] < cutoff, ws, other[:, None])
    return ws

  def synthesize(self, ws, train: bool = False, noise_mode: str | None = None):
    noise_mode = noise_mode or ("random" if train else "const")
    if noise_mode not in NOISE_MODES:
      raise ValueError(f"noise_mode={noise_mode!r} is unknown; choose one of {NOISE_MODES}.")
    return self.synthesis(ws, noise_mode)


class DiscriminatorBlock(nn.Module):
  """3x3 conv -> 3x3 conv with FIR downsampling, plus a downsampled 1x1 skip; the two
  summed with gain sqrt(1/2) each (the clamp, as StyleGAN2-ADA's, only on the convs)."""
  features: int
  kit: layers.LayerKit
  conv_clamp: float = 0.0

  @nn.compact
  def __call__(self, x):
    conv = {"kit": self.kit, "conv_clamp": self.conv_clamp}
    skip = EqualizedConv(self.features, 1, self.kit, down=True, use_bias=False,
                         activate=False, gain=SKIP_GAIN, name="skip")(x)  # Never clamped.
    x = EqualizedConv(x.shape[-1], 3, name="conv0", **conv)(x)
    x = EqualizedConv(self.features, 3, down=True, gain=SKIP_GAIN, name="conv1", **conv)(x)
    return skip + x


class Discriminator(nn.Module):
  """Images (B, H, W, C) [+ labels] -> (logits (B,) float32, class_logits for "acgan" else
  None). Per example except for minibatch stddev, as R1 needs."""
  widths: tuple  # Highest resolution first, the base map's last.
  w_dim: int
  mapping_layers: int
  mapping_lr_multiplier: float
  kit: layers.LayerKit
  conditioning: str = "none"
  num_classes: int = 0
  minibatch_std: int = 0  # Group size; 0 = off.
  minibatch_std_form: str = "pgen"  # A key of MINIBATCH_STD_FORMS.
  conv_clamp: float = 0.0

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    del train  # No batch statistics.
    conditional = self.conditioning != "none"
    labels = layers.check_labels(labels, x.shape[0], self.num_classes if conditional else 0,
                                 self)
    conv = {"kit": self.kit, "conv_clamp": self.conv_clamp}
    x = EqualizedConv(self.widths[0], 1, name="from_rgb", **conv)(x.astype(self.kit.dtype))
    for features in self.widths[1:]:
      x = DiscriminatorBlock(features, name=f"b{x.shape[1]}x{x.shape[2]}", **conv)(x)
    if self.minibatch_std:
      x = layers.MinibatchStdDev(self.minibatch_std,
                                 **MINIBATCH_STD_FORMS[self.minibatch_std_form])(x)
    x = EqualizedConv(self.widths[-1], 3, name="epilogue_conv", **conv)(x)
    h = EqualizedDense(self.widths[-1], self.kit, activate=True, name="epilogue_fc")(
        x.reshape(x.shape[0], -1))
    return _head(self, h, labels)


def _head(d: Discriminator, h, labels):
  """D's output layer for its conditioning, in float32."""
  if d.conditioning == "projection":
    cmap_dim = h.shape[-1]
    out = EqualizedDense(cmap_dim, d.kit, name="out")(h)
    cmap = MappingNetwork(cmap_dim, d.mapping_layers, d.mapping_lr_multiplier, d.num_classes,
                          d.kit, track_w_avg=False, name="label_mapping")(None, labels)
    return jnp.sum(out * cmap, axis=-1) / np.sqrt(cmap_dim), None
  logits = EqualizedDense(1, d.kit, name="out")(h)[:, 0]
  if d.conditioning == "acgan":
    sizes = d.kit.attribute_sizes(d.num_classes)
    return logits, layers.class_logits_of_attributes(
        EqualizedDense(sum(sizes), d.kit, name="class_head")(h), sizes)
  if d.conditioning != "none":
    raise ValueError(f"model.conditioning={d.conditioning!r} is unknown; choose one of "
                     f"{layers.CONDITIONINGS}.")
  return logits, None

