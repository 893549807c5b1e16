r"""R3GAN on CIFAR-10 with the paper's settings (Huang et al. 2024, its CIFAR-10 preset),
class-conditional: for anyone with the hardware (the paper trains on 8 GPUs).

    python -m pgen train --config configs/cifar10_r3gan.py --workdir runs/cifar10_r3gan

The network: 768 channels at every stage (4x4 to 32x32), 2 blocks a stage, expansion 2,
96 groups (16 channels each), z of 64; batch 512; gamma 0.05 -> 0.005, learning rate 2e-4 ->
5e-5, beta2 0.9 -> 0.99, EMA half-life up to 5M images and ADA's pipeline at a probability
growing to 0.55, each over 20M images. FID needs the Inception weights (docs/evaluation.md).
"""

import ml_collections

from pgen.configs import cifar10_dcgan, fashion_mnist_r3gan


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = cifar10_dcgan.get_config(variant)
  config.model.conditioning = "projection"
  config.model.latent_dim = 64
  config.model.blocks_per_stage = 2
  config.model.expansion = 2
  if variant == "smoke":
    fashion_mnist_r3gan.use_smoke_r3gan(config, gamma=0.05)
    return config
  config.model.g_width = config.model.d_width = config.model.max_width = 768
  config.model.cardinality = 96
  config.batch_size = 512
  config.total_steps = 40_000  # 20M images: the schedules' length.
  fashion_mnist_r3gan.use_r3gan_recipe(config, gamma=0.05, schedule_images=20_000_000,
                                       ema_half_life_images=5_000_000, augment_probability=0.55)
  return config
