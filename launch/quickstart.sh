#!/usr/bin/env bash
# The main job on a fresh machine: install, train the default config (DCGAN on
# Fashion-MNIST, about 15 minutes of training on 2 CPU cores), then write a 10x10 sample grid.
#   bash launch/quickstart.sh [WORKDIR]        # default runs/fmnist
# Running it again resumes the run where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=${1:-runs/fmnist}

bash launch/install.sh
.venv/bin/python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir "$WORKDIR"
.venv/bin/python -m pgen generate --workdir "$WORKDIR" --num 100 --out "$WORKDIR/grid.png"
echo "Samples: $WORKDIR/grid.png (and $WORKDIR/samples/); metrics: tensorboard --logdir $WORKDIR"
