r"""DCGAN on Fashion-MNIST at 32x32: pgen's default job.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist
    python -m pgen train --config configs/fashion_mnist_dcgan.py:smoke --workdir /tmp/smoke
    python -m pgen train --config configs/fashion_mnist_dcgan.py:classic --workdir runs/classic

The job is pgen's defaults (the DCGAN paper's recipe; pgen/config/__init__.py) with
`use_default_recipe`: faster learning rates held stable by lazy R1, minibatch stddev and a
longer EMA (bench/QUALITY.md compares it with the other recipes). `base` is the defaults
alone: the other configs start from it and change what their recipe needs; `:classic` trains
it; the `smoke` variant shrinks it so a run takes seconds (tests use it).
"""

import ml_collections

from pgen.config import defaults


def base(variant: str = "") -> ml_collections.ConfigDict:
  """pgen's defaults on Fashion-MNIST; `smoke` shrinks everything."""
  config = defaults()
  config.data.name = "fashion_mnist"
  config.model.name = "dcgan"
  if variant == "smoke":
    config.total_steps = 6
    config.batch_size = 16
    config.model.latent_dim = 16
    config.model.g_width = 8
    config.model.d_width = 8
    config.data.shuffle_buffer = 256
    config.log_every_steps = 2
    config.sample_every_steps = 3
    config.checkpoint_every_steps = 3
    config.num_sample_images = 16
    config.eval.every_steps = 0
    config.eval.num_samples = 200
    config.eval.reference_split = "test"
  elif variant:
    raise ValueError(f"Unknown config variant {variant!r}; choose 'smoke'.")
  return config


def use_default_recipe(config: ml_collections.ConfigDict) -> None:
  """The default job's recipe: the fastest-converging of those bench/QUALITY.md measured on
  2 CPU cores (its `dcgan` rows)."""
  config.optim.g_learning_rate = 5e-4
  config.optim.d_learning_rate = 5e-4
  config.optim.g_betas = (0.5, 0.99)
  config.optim.d_betas = (0.5, 0.99)
  config.loss.r1_weight = 0.5  # Lazy R1 every 16 D steps: what lets the faster rates hold.
  config.model.minibatch_std = 4
  # Within 15 minutes ema.rampup (5% of the images seen) is what limits the half-life.
  config.ema.half_life_images = 100_000


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  if variant not in ("", "smoke", "classic"):
    raise ValueError(f"Unknown config variant {variant!r}; choose 'smoke' or 'classic'.")
  if variant == "classic":
    return base()
  config = base(variant)
  if not variant:
    use_default_recipe(config)
    config.total_steps = 9_500  # bench/QUALITY.md's 15-minute budget on its 2-core VM.
  return config
