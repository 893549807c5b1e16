r"""Your catalog at 64x64 RGB with the toolbox: a class-conditional ResNet (SNGAN-style:
hinge loss, spectral norm, projection D, conditional BN) with DiffAugment whose probability
ADA adapts, the combination for catalogs of a few thousand photos per category.

    python -m pgen prepare --src ~/photos --name my_catalog --out ~/pgen_data
    python -m pgen train --config configs/catalog_resnet64.py --workdir runs/catalog64 \
        --config.data.name=my_catalog --config.data.data_dir=~/pgen_data
    python -m pgen generate --workdir runs/catalog64 --num 36 --out grid.png  # per category

Widths 64 are sized for an accelerator (a ResNet of width w costs about a DCGAN of width
4w; see bench/RESULTS.md). `:cpu` is the recipe at 64x48 with widths 16, for a few CPU
cores (bench/QUALITY.md measures it on an RGB catalog); `:smoke` shrinks it to seconds.
Data handling (white padding to the frame, upscaling small photos) is configs/folder_dcgan.py's.
"""

import ml_collections

from pgen.configs import folder_dcgan


def use_sngan(config: ml_collections.ConfigDict) -> None:
  """SNGAN's conditional ResNet recipe (Miyato et al. 2018; Miyato & Koyama 2018)."""
  config.model.name = "resnet"
  config.model.conditioning = "projection"
  config.model.d_spectral_norm = True
  config.loss.name = "hinge"
  # TTUR with SNGAN's Adam betas: a faster D, no momentum.
  config.optim.g_learning_rate = 1e-4
  config.optim.d_learning_rate = 4e-4
  config.optim.g_betas = (0.0, 0.9)
  config.optim.d_betas = (0.0, 0.9)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = folder_dcgan.get_config("smoke" if variant == "smoke" else "")
  config.data.resolution = (64, 64)
  use_sngan(config)  # The category folders are the classes.
  config.model.g_width = 64
  config.model.d_width = 64
  config.model.latent_dim = 128
  config.augment.policy = ("translation", "cutout", "color")
  config.augment.probability = 0.0  # ADA raises it when D starts to memorize the catalog.
  config.augment.ada_target = 0.6
  config.total_steps = 50_000
  if variant == "cpu":
    config.data.resolution = (64, 48)
    config.model.g_width = 16
    config.model.d_width = 16
  elif variant == "smoke":
    config.data.resolution = (32, 32)
    config.model.g_width = 8
    config.model.d_width = 8
    config.model.latent_dim = 16
    config.total_steps = 6
  elif variant:
    raise ValueError(f"Unknown config variant {variant!r}; choose 'cpu' or 'smoke'.")
  return config
