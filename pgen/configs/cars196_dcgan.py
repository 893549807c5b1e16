r"""DCGAN on Cars196 (Stanford Cars, 196 models) at 48x64 (height x width): cars are wide.

    python -m pgen train --config configs/cars196_dcgan.py --workdir runs/cars

TFDS downloads the dataset (1.8 GB) on first use. The photos are scenes, not products on
white, so they are center-cropped rather than padded. Everything not set here is
pgen's defaults (`base` in configs/fashion_mnist_dcgan.py); `:smoke` shrinks it.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  config.data.name = "cars196"
  config.data.resolution = (48, 64)  # (height, width): most of the photos are wider than tall.
  config.data.resize = "crop"  # Fill the frame; the background is part of the scene.
  config.data.pad_value = 255  # Unused with "crop".
  config.data.shuffle_buffer = 8_144  # The whole training split.
  # FID needs the Inception weights (eval.inception_weights, docs/evaluation.md); in-training
  # evaluation is off until they are given.
  config.eval.feature_extractor = "inception"
  config.eval.every_steps = 0
  if variant == "smoke":
    config.data.resolution = (24, 32)
    config.data.shuffle_buffer = 256
  return config
