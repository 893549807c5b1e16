r"""DCGAN on Stanford Online Products (eBay catalog photos) at 64x64, labelled with
its 12 super-categories (bicycle, cabinet, chair, ... toaster).

    python -m pgen train --config configs/stanford_online_products_dcgan.py --workdir runs/sop

TFDS downloads the dataset (2.9 GB) on first use. Everything not set here is pgen's
defaults (`base` in configs/fashion_mnist_dcgan.py); `:smoke` shrinks it like the default's smoke.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  config.data.name = "stanford_online_products"
  config.data.label_key = "super_class_id"  # The 12 super-categories, not the 22,634 products.
  config.data.resolution = 64
  config.data.resize = "pad"  # Keep each product's shape; the photos are mostly on white.
  config.data.upscale = True  # A few photos are under 64 px; show them at the same scale.
  config.data.pad_value = 255  # White, like the photos' backgrounds.
  config.data.shuffle_buffer = 60_000  # All 59,551 training images.
  # FID needs the Inception weights (eval.inception_weights, docs/evaluation.md); in-training
  # evaluation is off until they are given.
  config.eval.feature_extractor = "inception"
  config.eval.every_steps = 0
  if variant == "smoke":
    config.data.resolution = 32
    config.data.shuffle_buffer = 256
  return config
