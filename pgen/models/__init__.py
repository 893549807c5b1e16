"""GAN families by name: `model.name` is a module of this package (dcgan, resnet,
stylegan2, r3gan) with `CONFIG_KEYS`, `CONFIG_RULES`, `build` and `GENERATION_OPTIONS`.

    config_keys(), config_rules()    # every model key and rule, for pgen.config.resolve
    generation_options("stylegan2")  # ("truncation", "noise_mode"): what generate may set
    config = for_dataset(config, num_classes=10)  # model.conditioning="auto" decided
    generator, discriminator = build_models(config, image_shape=(32, 32, 1), num_classes=10)
    images = generator.apply(g_variables, z, labels, train=False)           # (B, H, W, C)
    logits, class_logits = discriminator.apply(d_variables, images, labels)  # (B,), None

The keys every family reads are declared here; a family declares the keys only it reads
and the rules about them (an option of its own refused for the others, a shared option it
lacks), so a new family is its module and its name in FAMILIES.
A family module builds its networks from a `layers.LayerKit` (initializer, activation,
spectral norm, dtypes), so precision and normalization are arguments, not flags threaded
through every block.
"""

import importlib

import jax.numpy as jnp
import ml_collections

from pgen.core.config_keys import Key, Rule, at_least, one_of
from pgen.data import options as data_options
from pgen.errors import ConfigError
from pgen.models import layers

FAMILIES = ("dcgan", "resnet", "stylegan2", "r3gan")
CONDITIONINGS = layers.CONDITIONINGS
AUTO_CONDITIONING = "auto"  # Projection with 2 or more classes, else none.

SHARED_KEYS = (
    Key("model.name", "dcgan",
        "A family of pgen/models/: \"dcgan\", \"resnet\" (slower, stronger), \"stylegan2\" "
        "or \"r3gan\" (R3GAN: residual networks without normalization).", one_of(FAMILIES)),
    Key("model.latent_dim", 100, "Length of z, the generator's input noise.",
        at_least(1, "an integer")),
    Key("model.g_width", 64,
        "Channels of the last generator block; doubled per block towards 4x4.",
        at_least(1, "an integer")),
    Key("model.d_width", 64, "Channels of the first discriminator block; doubled per block.",
        at_least(1, "an integer")),
    Key("model.max_width", 512,
        "Cap on the doubled widths of resnet and r3gan (BigGAN-style at 128px); the other "
        "families ignore it.", at_least(1, "an integer")),
    Key("model.conditioning", "none",
        "Class conditioning: \"none\", \"projection\" (projection D, the SNGAN/BigGAN choice) "
        "or \"acgan\" (an auxiliary classifier head in D); both give G conditional BatchNorm "
        "(r3gan: a label embedding joined to z). \"auto\": projection when the dataset has "
        "2 or more classes, else none (the folder configs); the run records which.",
        one_of((*CONDITIONINGS, AUTO_CONDITIONING))),
    Key("model.d_spectral_norm", False,
        "Spectral norm in D: the usual pairing with the hinge loss."),
    Key("model.g_spectral_norm", False, "Spectral norm in G too, as BigGAN does."),
    Key("model.minibatch_std", 0,
        "Minibatch stddev group size before D's last block (StyleGAN; against mode "
        "collapse); 0 = off.", at_least(0, "an integer")),
    Key("model.dtype", "float32",
        "What the layers compute in: \"float32\", or \"bfloat16\" (mixed precision: "
        "parameters, optimizer states and EMA stay float32; losses, logits, normalization "
        "statistics, penalties and spectral norm's power iteration are float32).",
        one_of(("float32", "bfloat16"))),
    Key("model.param_dtype", "float32",
        "What parameters are stored in (float32 only, see dtype).", one_of(("float32",))),
)


def _resolution_supported(config: ml_collections.ConfigDict) -> str | None:
  height, width = data_options.target_size(config.data.resolution)
  if layers.supports_image_size((height, width)):
    return None
  return (f"data.resolution={height}x{width} is not supported by the convolutional models: "
          "each side must be at least 8 and the shorter side divided by the largest power of "
          "two that leaves at least 4 must divide both sides (e.g. 32, 64, 128, (64, 48), "
          "(96, 64)).")


def _minibatch_std_divides_batch(config: ml_collections.ConfigDict) -> str | None:
  group_size = config.model.minibatch_std
  if not group_size or config.batch_size % group_size == 0:
    return None
  return (f"model.minibatch_std={group_size} must divide batch_size={config.batch_size} (the "
          "discriminator's statistics are over groups of the global batch); choose a divisor "
          "of batch_size, or 0 to turn the layer off.")


# The families' rules run after these: they may take the image size to be supported.
SHARED_RULES = (_resolution_supported, _minibatch_std_divides_batch)


def family(name: str):
  """The module of the family `name` (pgen/models/<name>.py; pgen.config checks the name)."""
  return importlib.import_module(f"pgen.models.{name}")


def config_keys() -> tuple[Key, ...]:
  """Every model key: those the families share, then each family's own."""
  return SHARED_KEYS + tuple(key for name in FAMILIES for key in family(name).CONFIG_KEYS)


def config_rules() -> tuple[Rule, ...]:
  """Every rule of the model keys, the shared ones first; each family's rules run whatever
  `model.name` is (an option only a family supports is refused for the others)."""
  return SHARED_RULES + tuple(rule for name in FAMILIES for rule in family(name).CONFIG_RULES)


def generation_options(name: str) -> tuple[str, ...]:
  """What `generate` may set for the family's generator beyond z and labels (StyleGAN2:
  "truncation", "noise_mode")."""
  return family(name).GENERATION_OPTIONS


def for_dataset(config: ml_collections.ConfigDict,
                num_classes: int) -> ml_collections.ConfigDict:
  """`config` with model.conditioning="auto" made what it means for a dataset of
  `num_classes` classes (a copy; `config` itself when there is nothing to decide)."""
  if config.model.conditioning != AUTO_CONDITIONING:
    return config
  config = config.copy_and_resolve_references()
  config.model.conditioning = "projection" if num_classes >= 2 else "none"
  return config


def build_models(config: ml_collections.ConfigDict, image_shape, num_classes: int = 0,
                 label_sizes: tuple = ()):
  """(generator, discriminator) for `config.model`, images of `image_shape` (height, width,
  channels) and a dataset with `num_classes` classes (0: no labels), which combine
  attributes of `label_sizes` values when given (layers: embedded per attribute). Their
  layers compute in `model.dtype` and store parameters in `model.param_dtype`."""
  conditioning = config.model.conditioning
  if conditioning == AUTO_CONDITIONING:
    raise ValueError("model.conditioning='auto' is decided by the dataset: pass the config "
                     "through models.for_dataset(config, num_classes) first.")
  if conditioning != "none" and num_classes < 2:
    raise ConfigError(
        f"model.conditioning={conditioning!r} needs a labelled dataset, but "
        f"data.name={config.data.name!r} gives num_classes={num_classes}; use a dataset with "
        "labels or model.conditioning='none'.")
  return family(config.model.name).build(
      config.model, tuple(image_shape), num_classes if conditioning != "none" else 0,
      dtype=jnp.dtype(config.model.dtype), param_dtype=jnp.dtype(config.model.param_dtype),
      label_sizes=label_sizes)
