r"""Class-conditional StyleGAN2 with ADA on Stanford Online Products (eBay catalog photos) at
128x128, conditioned on the 12 super-categories (bicycle, cabinet, chair, ... toaster).

    python -m pgen train --config configs/stanford_online_products_stylegan2.py \
        --workdir runs/sop_sg2
    python -m pgen generate --workdir runs/sop_sg2 --num 36 --out grid.png --truncation 0.7

TFDS downloads the dataset (2.9 GB) on first use; its photos are padded to squares with
white (configs/stanford_online_products_dcgan.py's data settings). StyleGAN2-ADA's
settings for 128 px: channel_base 16384 (128 px: 128 channels, 64: 256, 32 and below: 512),
a 2-layer mapping network, batch 32, R1's gamma 0.0002 * 128^2 / 32 = 0.1, ADA's "bgc"
pipeline, EMA of 10k images, 6.4M images in all. Sized for an accelerator; `:smoke`
shrinks it to 32 px for a CPU.
"""

import ml_collections

from pgen.configs import fashion_mnist_stylegan2, stanford_online_products_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = stanford_online_products_dcgan.get_config(variant)
  config.data.resolution = 128
  config.model.conditioning = "projection"
  config.model.latent_dim = 512
  config.model.w_dim = 512
  config.model.channel_base = 16384
  config.model.channel_max = 512
  config.total_steps = 200_000  # 6.4M images at batch 32.
  config.log_every_steps = 500
  config.sample_every_steps = 5000
  config.checkpoint_every_steps = 5000
  if variant != "smoke":
    config.batch_size = 32
  else:
    config.data.resolution = 32
    config.model.latent_dim = config.model.w_dim = 16
    config.model.channel_base, config.model.channel_max = 128, 16
  side = config.data.resolution
  fashion_mnist_stylegan2.use_stylegan2(config, side, side)
  return config
