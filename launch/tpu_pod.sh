#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same command on every worker; JAX detects the pod.
# pgen must be cloned and installed on each worker first, e.g.
#   gcloud compute tpus tpu-vm ssh NAME --zone ZONE --worker=all --command \
#     "git clone REPO pgen && cd pgen && python3 -m venv .venv && .venv/bin/pip install -e . 'jax[tpu]'"
# The workdir must be a directory every worker mounts (e.g. Filestore or a gcsfuse mount).
#   bash launch/tpu_pod.sh NAME ZONE fashion_mnist_dcgan /mnt/shared/runs/fmnist [--config.KEY=VALUE ...]
set -euo pipefail
TPU_NAME=$1 ZONE=$2 CONFIG=$3 WORKDIR=$4
shift 4
# The workers' shell reads the command again: each argument is quoted for it, so a path or
# an override with spaces or shell characters arrives as one argument, as given.
printf -v TRAIN '%q ' .venv/bin/python -m pgen train --config "$CONFIG" --workdir "$WORKDIR" "$@"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
  "cd ~/pgen && $TRAIN"
