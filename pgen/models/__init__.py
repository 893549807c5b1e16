"""Model registry: `config.model` -> (generator, discriminator) linen modules.

    generator, discriminator = build_models(config, image_shape=(32, 32, 1), num_classes=10)
    images = generator.apply(g_variables, z, labels, train=False)           # (B, H, W, C)
    logits, class_logits = discriminator.apply(d_variables, images, labels)  # (B,), None

Every key of `config.model` is checked here, before anything is built. Keys added after a
run was started fall back to `MODEL_DEFAULTS`, so older workdirs' config.json still load.
"""

import ml_collections

from pgen.models import dcgan
from pgen.models import layers
from pgen.models import resnet

MODEL_NAMES = ("dcgan", "resnet")
CONDITIONINGS = layers.CONDITIONINGS

# Defaults for keys a config may lack; they keep the original DCGAN behaviour.
MODEL_DEFAULTS = {
    "conditioning": "none",
    "d_spectral_norm": False,
    "g_spectral_norm": False,
    "minibatch_std": 0,
    "attention_resolution": 0,
    "max_width": 512,
}


def _model_value(config, key):
  return config.model.get(key, MODEL_DEFAULTS.get(key))


def _check_choice(key, value, choices):
  if value not in choices:
    raise ValueError(f"model.{key}={value!r} is unknown; choose one of {choices}.")


def _check_bool(key, value):
  if not isinstance(value, bool):
    raise ValueError(f"model.{key}={value!r} must be True or False.")


def _check_int(key, value, minimum):
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ValueError(f"model.{key}={value!r} must be an integer >= {minimum}.")


def build_models(config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
  """Returns (generator, discriminator) for `config.model`, images of `image_shape`
  (height, width, channels) and a dataset with `num_classes` classes (0: no labels)."""
  image_size, channels = tuple(image_shape[:2]), image_shape[2]
  model = {key: _model_value(config, key)
           for key in ("name", "g_width", "d_width", *MODEL_DEFAULTS)}
  _check_choice("name", model["name"], MODEL_NAMES)
  _check_choice("conditioning", model["conditioning"], CONDITIONINGS)
  for key in ("d_spectral_norm", "g_spectral_norm"):
    _check_bool(key, model[key])
  for key in ("g_width", "d_width", "max_width"):
    _check_int(key, model[key], 1)
  _check_int("minibatch_std", model["minibatch_std"], 0)
  _check_int("attention_resolution", model["attention_resolution"], 0)
  dcgan.num_blocks(image_size)

  conditional = model["conditioning"] != "none"
  if conditional and num_classes < 2:
    raise ValueError(
        f"model.conditioning={model['conditioning']!r} needs a labelled dataset, but "
        f"data.name={config.data.name!r} gives num_classes={num_classes}; use a dataset with "
        "labels or model.conditioning='none'.")
  group_size = model["minibatch_std"]
  if group_size and config.batch_size % group_size:
    raise ValueError(
        f"model.minibatch_std={group_size} must divide batch_size={config.batch_size} (the "
        "discriminator's statistics are over groups of the global batch); choose a divisor "
        "of batch_size, or 0 to turn the layer off.")
  model_classes = num_classes if conditional else 0

  if model["name"] == "dcgan":
    _check_choice("upsample", config.model.upsample, dcgan.UPSAMPLE_MODES)
    _check_choice("downsample", config.model.downsample, dcgan.DOWNSAMPLE_MODES)
    if model["attention_resolution"]:
      raise ValueError(
          f"model.attention_resolution={model['attention_resolution']} is only supported by "
          "model.name='resnet'; set it to 0 for 'dcgan'.")
    generator = dcgan.Generator(
        image_size=image_size, channels=channels, width=model["g_width"],
        upsample=config.model.upsample, num_classes=model_classes,
        spectral_norm=model["g_spectral_norm"])
    discriminator = dcgan.Discriminator(
        width=model["d_width"], downsample=config.model.downsample,
        conditioning=model["conditioning"], num_classes=model_classes,
        spectral_norm=model["d_spectral_norm"], minibatch_std=group_size)
    return generator, discriminator

  resnet.check_attention_resolution(model["attention_resolution"], image_size)
  generator = resnet.Generator(
      image_size=image_size, channels=channels, width=model["g_width"],
      max_width=model["max_width"], num_classes=model_classes,
      spectral_norm=model["g_spectral_norm"],
      attention_resolution=model["attention_resolution"])
  discriminator = resnet.Discriminator(
      width=model["d_width"], max_width=model["max_width"],
      conditioning=model["conditioning"], num_classes=model_classes,
      spectral_norm=model["d_spectral_norm"], minibatch_std=group_size,
      attention_resolution=model["attention_resolution"])
  return generator, discriminator
