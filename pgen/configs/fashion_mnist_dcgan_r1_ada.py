r"""DCGAN with lazy R1 and adaptive augmentation (StyleGAN2-ADA's recipe) on Fashion-MNIST.

    python -m pgen train --config configs/fashion_mnist_dcgan_r1_ada.py --workdir runs/r1_ada

For small catalogs: ADA raises the augmentation probability when D starts to recognize
the training images (E[sign D(real)] above 0.6), and R1 keeps D smooth around them.
Everything not set here is pgen's defaults (`base` in configs/fashion_mnist_dcgan.py).
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  config.loss.r1_weight = 0.1  # gamma; StyleGAN2-ADA's heuristic gives ~0.01-0.1 at 32 px.
  config.loss.r1_every = 16
  config.model.minibatch_std = 4
  config.augment.policy = ("translation", "cutout", "color")
  config.augment.probability = 0.0  # ADA starts at 0 and adapts.
  config.augment.ada_target = 0.6
  config.augment.ada_kimg = 100
  return config
