"""pgen: a JAX/Flax trainer for generative adversarial networks on product images.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist
    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
"""

__version__ = "0.1.0"
