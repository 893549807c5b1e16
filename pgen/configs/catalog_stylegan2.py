r"""StyleGAN2 with ADA on your catalog at 256x192 (portrait 3:4) or 256x256: the
architecture product-image teams train, for an accelerator.

    python -m pgen prepare --src ~/photos --name my_catalog --out ~/pgen_data
    python -m pgen train --config configs/catalog_stylegan2.py --workdir runs/catalog_sg2 \
        --config.data.name=my_catalog --config.data.data_dir=~/pgen_data \
        [--config.data.resolution="(256, 256)"] [--config.model.dtype=bfloat16]
    python -m pgen generate --workdir runs/catalog_sg2 --num 36 --out grid.png --truncation 0.7

StyleGAN2-ADA's settings for 256 px (its "auto" config): channel_base 16384, a 2-layer
mapping network, batch 32, learning rate 0.0025, R1's gamma from its rule (0.0002 *
256^2 / 32 = 0.41; it follows --config.batch_size), ADA's "bgc" pipeline adapting to
E[sign D(real)] = 0.6 (it matters most for small catalogs: a few thousand photos), EMA of
10k images, 12.8M images in all. The category folders are the classes (projection D,
label in the mapping network). Data handling (white padding to the frame, upscaling small
photos) is configs/folder_dcgan.py's. `:cpu` is the recipe at 64x48 with
configs/fashion_mnist_stylegan2.py's CPU-sized widths and latents (bench/QUALITY.md measures
it on an RGB catalog); `:smoke` shrinks everything to 32x24 for tests.
"""

import ml_collections

from pgen.configs import fashion_mnist_stylegan2, folder_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = folder_dcgan.get_config("smoke" if variant == "smoke" else "")
  config.data.resolution = (256, 192)  # (height, width); (256, 256) for square photos.
  config.model.conditioning = "projection"
  config.model.latent_dim = 512
  config.model.w_dim = 512
  config.model.channel_base = 16384  # 8x6 .. 32x24: 512 channels, 64: 256, 128: 128, 256: 64.
  config.model.channel_max = 512
  config.total_steps = 400_000  # 12.8M images at batch 32.
  config.log_every_steps = 500
  config.sample_every_steps = 5000
  config.checkpoint_every_steps = 5000
  if variant != "smoke":
    config.batch_size = 32
  if variant == "cpu":
    config.data.resolution = (64, 48)
    config.model.latent_dim = config.model.w_dim = 128
    # 4x3: 128 channels, 8x6: 128, 16x12: 64, 32x24: 32, 64x48: 16.
    config.model.channel_base, config.model.channel_max = 1024, 128
  elif variant == "smoke":
    config.data.resolution = (32, 24)
    config.model.latent_dim = config.model.w_dim = 16
    config.model.channel_base, config.model.channel_max = 128, 16
  elif variant:
    raise ValueError(f"Unknown config variant {variant!r}; choose 'cpu' or 'smoke'.")
  height, width = config.data.resolution
  fashion_mnist_stylegan2.use_stylegan2(config, height, width)
  return config
