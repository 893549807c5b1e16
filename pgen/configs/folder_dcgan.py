r"""DCGAN on your own catalog photos, made into a TFDS dataset by `python -m pgen prepare`.

    python -m pgen prepare --src ~/photos --name my_catalog --out ~/pgen_data
    python -m pgen train --config configs/folder_dcgan.py --workdir runs/my_catalog \
        --config.data.name=my_catalog --config.data.data_dir=~/pgen_data \
        [--config.data.resolution="(64, 48)"]

The default shape is portrait 3:4 (64 high, 48 wide), common for fashion; `prepare`'s
report suggests the resolution that matches your catalog's median aspect. The recipe is
the default job's (`use_default_recipe` in configs/fashion_mnist_dcgan.py, the best that
bench/QUALITY.md measured), class-conditional when the catalog has two or more categories
(`model.conditioning="auto"`: a projection D, conditional BatchNorm in G), so `generate
--class` asks for a category. `:smoke` shrinks it to pgen's defaults at a small size.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  if not variant:
    fashion_mnist_dcgan.use_default_recipe(config)
  config.model.conditioning = "auto"  # Projection with two or more categories, else none.
  config.data.name = "my_catalog"  # The --name given to `prepare`.
  config.data.resolution = (64, 48)  # (height, width); e.g. (64, 64), (48, 64), (96, 64).
  config.data.resize = "pad"  # Keep each product's shape; pad to the frame's aspect.
  config.data.upscale = True  # Show small photos at the same scale as large ones.
  config.data.pad_value = 255  # White, like catalog backgrounds.
  config.data.shuffle_buffer = 100_000  # At least the catalog's size: a full shuffle.
  # Scored in the features of a classifier of the catalog itself, trained on first use
  # (pgen/evaluation/catalog_classifier.py); FID: eval.feature_extractor="inception" with
  # eval.inception_weights.
  config.eval.feature_extractor = "catalog"
  config.eval.reference_split = "train"  # A prepared catalog has the one split.
  if variant == "smoke":
    config.data.resolution = (32, 24)
    config.data.shuffle_buffer = 256
  return config
