r"""Class-conditional SNGAN on Fashion-MNIST: the SNGAN paper's standard CNN (the DCGAN
family) with a projection discriminator (Miyato & Koyama, 2018), spectral norm in D, hinge
loss and conditional BatchNorm in G, trained with the default job's recipe.

    python -m pgen train --config configs/fashion_mnist_sngan_cond.py --workdir runs/sngan
    python -m pgen generate --workdir runs/sngan --num 64 --out grid.png   # grid_<class>.png
    python -m pgen generate --workdir runs/sngan --num 64 --out bags.png --class Bag

About 20 minutes on 2 CPU cores. The ResNet SNGAN (`use_sngan` in
configs/catalog_resnet64.py) reached 75% class accuracy in that time against the 95%
bench/QUALITY.md records for this one; it is the choice on accelerators, at 64 px and up.
"""

import ml_collections

from configs import fashion_mnist_dcgan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.get_config(variant)
  config.model.conditioning = "projection"
  config.model.d_spectral_norm = True
  config.loss.name = "hinge"
  if not variant:
    config.total_steps = 12_000  # About 20 minutes on the 2-core VM of bench/QUALITY.md.
  return config
