#!/usr/bin/env bash
# N processes on this machine, each with D CPU devices and gloo collectives: the
# multi-host code path on a laptop. Output lines are prefixed [p0], [p1], ...
#   bash launch/local.sh N D CONFIG WORKDIR [--config.KEY=VALUE ...]
#   bash launch/local.sh 2 2 fashion_mnist_dcgan runs/fmnist_2x2
set -euo pipefail
NUM_PROCESSES=$1 DEVICES=$2 CONFIG=$3 WORKDIR=$4
shift 4
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pgen.cli.launch_local --num_processes "$NUM_PROCESSES" \
  --devices_per_process "$DEVICES" -- train --config "$CONFIG" --workdir "$WORKDIR" "$@"
