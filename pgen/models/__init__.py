"""Model registry: `model.name` in the config -> (generator, discriminator) modules."""

import ml_collections

from pgen.models import dcgan

MODEL_NAMES = ("dcgan",)


def build_models(config: ml_collections.ConfigDict, channels: int):
  """Returns (generator, discriminator) linen modules for `config.model`."""
  if config.model.name == "dcgan":
    if config.model.upsample not in dcgan.UPSAMPLE_MODES:
      raise ValueError(f"model.upsample={config.model.upsample!r} is unknown; choose one of "
                       f"{dcgan.UPSAMPLE_MODES}.")
    if config.model.downsample not in dcgan.DOWNSAMPLE_MODES:
      raise ValueError(f"model.downsample={config.model.downsample!r} is unknown; choose one "
                       f"of {dcgan.DOWNSAMPLE_MODES}.")
    dcgan.num_blocks(config.data.resolution)
    generator = dcgan.Generator(resolution=config.data.resolution, channels=channels,
                                width=config.model.g_width, upsample=config.model.upsample)
    discriminator = dcgan.Discriminator(width=config.model.d_width,
                                        downsample=config.model.downsample)
    return generator, discriminator
  raise ValueError(f"model.name={config.model.name!r} is unknown; choose one of {MODEL_NAMES}.")
