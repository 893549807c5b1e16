r"""Class-conditional SNGAN on Fashion-MNIST: the SNGAN paper's standard CNN (the DCGAN
family) with spectral norm in D, hinge loss, conditional BatchNorm in G and an auxiliary
classifier head on D (AC-GAN, its class loss on real images only), trained with the
default job's recipe.

    python -m pgen train --config configs/fashion_mnist_sngan_cond.py --workdir runs/sngan
    python -m pgen generate --workdir runs/sngan --num 64 --out grid.png   # grid_<class>.png
    python -m pgen generate --workdir runs/sngan --num 64 --out bags.png --class Bag

The auxiliary classifier is what makes its samples recognizable as their class, at a cost
in variety; a projection D (`--config.model.conditioning=projection`) keeps more variety
and recognizes classes as well as real images do. bench/QUALITY.md has both runs (the
`sngan_cond` rows) and the ResNet SNGAN (`use_sngan` in configs/catalog_resnet64.py, the
choice on accelerators) beside them.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.get_config(variant)
  config.model.conditioning = "acgan"
  config.model.d_spectral_norm = True
  config.loss.name = "hinge"
  if not variant:
    config.total_steps = 12_000  # bench/QUALITY.md's 20-minute budget on its 2-core VM.
  return config
