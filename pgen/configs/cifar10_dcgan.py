r"""DCGAN on CIFAR-10 at 32x32: the research benchmark, to compare pgen with published GANs.

    python -m pgen train --config configs/cifar10_dcgan.py --workdir runs/cifar10

TFDS downloads the dataset (163 MB) on first use. Everything not set here is pgen's
defaults (`base` in configs/fashion_mnist_dcgan.py); `:smoke` shrinks it.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  config.data.name = "cifar10"
  config.data.resolution = 32  # The images' own size: no resizing.
  config.data.pad_value = 0
  config.data.shuffle_buffer = 50_000  # The whole training split.
  # FID needs the Inception weights (eval.inception_weights, docs/evaluation.md); in-training
  # evaluation is off until they are given.
  config.eval.feature_extractor = "inception"
  config.eval.every_steps = 0
  if variant == "smoke":
    config.data.shuffle_buffer = 256
  return config
