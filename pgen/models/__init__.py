"""GAN families by name: `model.name` is a module of this package (dcgan, resnet,
stylegan2) with `check_config`, `build` and `GENERATION_OPTIONS`.

    check_config(config)            # at config load (pgen.config.resolve)
    generation_options("stylegan2")  # ("truncation", "noise_mode"): what generate may set
    generator, discriminator = build_models(config, image_shape=(32, 32, 1), num_classes=10)
    images = generator.apply(g_variables, z, labels, train=False)           # (B, H, W, C)
    logits, class_logits = discriminator.apply(d_variables, images, labels)  # (B,), None

A family module builds its networks from a `layers.LayerKit` (initializer, activation,
spectral norm, dtypes), so precision and normalization are arguments, not flags threaded
through every block.
"""

import importlib

import jax.numpy as jnp
import ml_collections

from pgen.errors import ConfigError
from pgen.models import layers

FAMILIES = ("dcgan", "resnet", "stylegan2")
CONDITIONINGS = layers.CONDITIONINGS


def family(name: str):
  """The module of the family `name` (pgen/models/<name>.py)."""
  if name not in FAMILIES:
    raise ConfigError(f"model.name={name!r} is unknown; choose one of {FAMILIES}.")
  return importlib.import_module(f"pgen.models.{name}")


def generation_options(name: str) -> tuple[str, ...]:
  """What `generate` may set for the family's generator beyond z and labels (StyleGAN2:
  "truncation", "noise_mode")."""
  return family(name).GENERATION_OPTIONS


def check_config(config: ml_collections.ConfigDict) -> None:
  """The model keys every family reads, then the family's own."""
  model = config.model
  if model.conditioning not in CONDITIONINGS:
    raise ConfigError(f"model.conditioning={model.conditioning!r} is unknown; choose one of "
                      f"{CONDITIONINGS}.")
  for key, minimum in (("latent_dim", 1), ("g_width", 1), ("d_width", 1), ("max_width", 1),
                       ("minibatch_std", 0), ("attention_resolution", 0)):
    if model[key] < minimum:
      raise ConfigError(f"model.{key}={model[key]!r} must be an integer >= {minimum}.")
  group_size = model.minibatch_std
  if group_size and config.batch_size % group_size:
    raise ConfigError(
        f"model.minibatch_std={group_size} must divide batch_size={config.batch_size} (the "
        "discriminator's statistics are over groups of the global batch); choose a divisor "
        "of batch_size, or 0 to turn the layer off.")
  _check_path_length(config)
  family(model.name).check_config(model)


def _check_path_length(config: ml_collections.ConfigDict) -> None:
  if not config.loss.pl_weight:
    return
  if config.model.name != "stylegan2":
    raise ConfigError(
        f"loss.pl_weight={config.loss.pl_weight} needs model.name='stylegan2' (path lengths "
        f"are measured through its mapping network); model.name={config.model.name!r} has "
        "none, so set loss.pl_weight=0.")
  if config.batch_size % config.loss.pl_batch_shrink:
    raise ConfigError(
        f"loss.pl_batch_shrink={config.loss.pl_batch_shrink} must divide "
        f"batch_size={config.batch_size} (the path-length batch is batch_size / it).")


def build_models(config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
  """(generator, discriminator) for `config.model`, images of `image_shape` (height, width,
  channels) and a dataset with `num_classes` classes (0: no labels). Their layers compute in
  `model.dtype` and store parameters in `model.param_dtype`."""
  conditioning = config.model.conditioning
  if conditioning != "none" and num_classes < 2:
    raise ConfigError(
        f"model.conditioning={conditioning!r} needs a labelled dataset, but "
        f"data.name={config.data.name!r} gives num_classes={num_classes}; use a dataset with "
        "labels or model.conditioning='none'.")
  layers.num_blocks(image_shape[:2])
  return family(config.model.name).build(
      config.model, tuple(image_shape), num_classes if conditioning != "none" else 0,
      dtype=jnp.dtype(config.model.dtype), param_dtype=jnp.dtype(config.model.param_dtype))
