r"""Your catalog with R3GAN (Huang et al. 2024) at 64x64 RGB, class-conditional: for an
accelerator (64-256 px).

    python -m pgen prepare --src ~/photos --name my_catalog --out ~/pgen_data
    python -m pgen train --config configs/catalog_r3gan.py --workdir runs/catalog_r3gan \
        --config.data.name=my_catalog --config.data.data_dir=~/pgen_data
    python -m pgen train --config configs/catalog_r3gan.py:128 ...    # 128x128, or :256

The paper's FFHQ-64 network (width 384 at 64 px doubling to 768 at 16 px and below, 2
blocks a stage, groups of 16 channels) and its 64 px recipe (gamma 2 -> 0.2, EMA half-life
up to 500k images, ADA's pipeline at a probability growing to 0.3, schedules over 20M
images); 128 and 256 px add stages of 192 and 96 channels and raise gamma as the paper's
FFHQ-256 does. Data handling (white padding to the frame) is configs/folder_dcgan.py's.
"""

import ml_collections

from pgen.configs import fashion_mnist_r3gan, folder_dcgan

# side: (width at that side, R1/R2 gamma at the start: the paper's at 64 and 256 px; at 128
# px a value between them, not measured)
SIZES = {64: (384, 2.0), 128: (192, 20.0), 256: (96, 150.0)}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  side = int(variant) if variant.isdigit() else 64
  config = folder_dcgan.get_config("smoke" if variant == "smoke" else "")
  config.model.conditioning = "projection"  # The category folders are the classes.
  config.model.latent_dim = 64
  config.model.blocks_per_stage = 2
  config.model.expansion = 2
  if variant == "smoke":
    config.data.resolution = (32, 32)
    fashion_mnist_r3gan.use_smoke_r3gan(config, gamma=0.1)
    return config
  if side not in SIZES:
    raise ValueError(f"Unknown config variant {variant!r}; choose 'smoke', 64, 128 or 256.")
  width, gamma = SIZES[side]
  config.data.resolution = (side, side)
  config.model.g_width = config.model.d_width = width
  config.model.max_width = 768
  config.model.cardinality = 96  # 16 channels a group at 768 channels x expansion 2.
  config.batch_size = 256
  config.total_steps = 80_000  # 20M images: the length of the schedules.
  fashion_mnist_r3gan.use_r3gan_recipe(config, gamma=gamma, schedule_images=20_000_000,
                                       ema_half_life_images=500_000, augment_probability=0.3)
  return config
