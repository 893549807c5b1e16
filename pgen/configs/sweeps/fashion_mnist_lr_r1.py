r"""The default job's learning rate (G and D together) x its R1 weight, two seeds each: a
small sweep that runs in about 20 minutes on 2 CPU cores with the overrides below.

    python -m pgen sweep --config configs/fashion_mnist_dcgan.py \
        --sweep configs/sweeps/fashion_mnist_lr_r1.py --workdir runs/lr_r1 \
        --config.total_steps=1000 --config.eval.every_steps=250
    python -m pgen compare runs/lr_r1 --plot runs/lr_r1/fd.png --out runs/lr_r1/fd.md
"""

from pgen.experiments.sweeps import product, with_seeds, zipped


def get_sweep():
  learning_rates = zipped(**{"optim.g_learning_rate": (2e-4, 5e-4),
                             "optim.d_learning_rate": (2e-4, 5e-4)})
  return with_seeds(product(learning_rates, **{"loss.r1_weight": (0.0, 0.5)}), seeds=(0, 1))
