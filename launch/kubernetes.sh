#!/usr/bin/env bash
# Submits launch/kubernetes.yaml filled in with these values.
#   IMAGE=registry/pgen:latest RUNS_PVC=pgen-runs NUM_PROCESSES=4 GPUS_PER_POD=8 \
#     bash launch/kubernetes.sh fashion_mnist_dcgan /runs/fmnist   # a packaged config by name
set -euo pipefail
export CONFIG=$1 WORKDIR=$2
# Both are pasted into the manifest's YAML: refuse what would change its structure.
for value in "$CONFIG" "$WORKDIR"; do
  if [[ ! $value =~ ^[A-Za-z0-9._/+=@:,-]+$ ]]; then
    echo "kubernetes.sh: error: '$value' holds characters a manifest cannot carry safely; use" \
      "letters, digits and - _ . / + = @ : ," >&2
    exit 1
  fi
done
export JOB_NAME=${JOB_NAME:-pgen} NUM_PROCESSES=${NUM_PROCESSES:-2} GPUS_PER_POD=${GPUS_PER_POD:-8}
: "${IMAGE:?set IMAGE to an image with pgen installed}" "${RUNS_PVC:?set RUNS_PVC to a shared claim}"
export IMAGE RUNS_PVC
envsubst < "$(dirname "$0")/kubernetes.yaml" | kubectl apply -f -
