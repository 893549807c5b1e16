r"""R3GAN (Huang et al. 2024) on Fashion-MNIST at 32x32, sized for a few CPU cores.

    python -m pgen train --config configs/fashion_mnist_r3gan.py --workdir runs/r3gan
    python -m pgen train --config configs/fashion_mnist_r3gan.py:smoke --workdir /tmp/r3gan

`use_r3gan_recipe` is the paper's recipe, which configs/catalog_r3gan.py and
configs/cifar10_r3gan.py share: the relativistic pairing loss with R1 and R2 on every step,
Adam with beta1 0, and its schedules (learning rate down to a quarter, gamma to a tenth,
beta2 from 0.9 to 0.99, the EMA half-life up from 0). Here on a network narrowed to what a
2-core CPU trains in 15 minutes, its grouped convolutions computed as dense ones
(model.grouped_conv_dense), with what such a short run needs: lazy R1 and R2 and ten times
the paper's learning rate. bench/QUALITY.md measures it (the `r3gan` rows).
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def use_r3gan_recipe(config: ml_collections.ConfigDict, *, gamma: float, schedule_images: int,
                     ema_half_life_images: float, augment_probability: float = 0.0) -> None:
  """The paper's objective, optimizer and schedules; the schedules span `schedule_images`
  training images; `augment_probability` > 0 adds ADA's pipeline at a probability that grows
  from 0 to it."""
  config.model.name = "r3gan"
  config.loss.name = "relativistic_pairing"
  config.loss.r1_weight = config.loss.r2_weight = gamma
  config.loss.r1_every = 1
  config.optim.g_learning_rate = config.optim.d_learning_rate = 2e-4
  config.optim.g_betas = config.optim.d_betas = (0.0, 0.9)
  config.ema.half_life_images = ema_half_life_images
  config.ema.rampup = 0.0  # The schedule grows the half-life from 0 instead.
  config.schedule.images = schedule_images
  config.schedule.learning_rate_end = 0.25
  config.schedule.gamma_end = 0.1
  config.schedule.beta2_end = 0.99
  config.schedule.ema_from_zero = True
  if augment_probability:
    config.augment.policy = "bgc"
    config.augment.probability = augment_probability
    config.schedule.augment_from_zero = True


def use_smoke_r3gan(config: ml_collections.ConfigDict, *, gamma: float) -> None:
  """The recipe on a network small enough that a run takes seconds (tests use it)."""
  config.model.g_width = config.model.d_width = 8
  config.model.max_width = 16
  config.model.cardinality = 4
  use_r3gan_recipe(config, gamma=gamma, schedule_images=1_000, ema_half_life_images=500)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = fashion_mnist_dcgan.base(variant)
  config.model.latent_dim = 64
  config.model.grouped_conv_dense = True  # CPU: XLA's grouped convolutions are slow there.
  config.model.blocks_per_stage = 1
  if variant == "smoke":
    config.model.max_width = 16
    config.model.cardinality = 4
  else:
    config.model.g_width = config.model.d_width = 16
    config.model.max_width = 64
    # 32 channels a group (the paper's 16 would halve the groups' width for no time saved:
    # grouped_conv_dense costs as much whatever the groups).
    config.model.cardinality = 4
    # About 15 minutes on bench/QUALITY.md's 2-core VM (~120 images/s there).
    config.total_steps = 1_700
  use_r3gan_recipe(config, gamma=0.05, schedule_images=config.total_steps * config.batch_size,
                   ema_half_life_images=5_000)
  if variant != "smoke":
    config.loss.r1_every = 4  # Lazy R1 and R2 (StyleGAN2's): a quarter more images/s here.
    # Ten times the paper's rate. Its 2e-4 moves the MSR-initialized weights about 0.1% a
    # step, made for hundreds of thousands of steps; in this run's 1,700 the residual
    # blocks barely leave their zero start and G stays near its linear initialization
    # (bench/QUALITY.md's r3gan rows: FD 303 after 15 minutes at 2e-4, 61 at 2e-3;
    # bench/RESULTS.md has the probes that chose it).
    config.optim.g_learning_rate = config.optim.d_learning_rate = 2e-3
  return config
