r"""DCGAN on Fashion-MNIST at 32x32: pgen's default job.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist
    python -m pgen train --config configs/fashion_mnist_dcgan.py:smoke --workdir /tmp/smoke

pgen's defaults (pgen/config.py, which documents every key) are this job; the `smoke`
variant shrinks everything so a run takes seconds (tests use it). Other configs start
from this one and change what their recipe needs.
"""

import ml_collections

from pgen.config import defaults


def get_config(variant: str = "") -> ml_collections.ConfigDict:
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
    raise ValueError(f"Unknown config variant {variant!r}; the only variant is 'smoke'.")
  return config
