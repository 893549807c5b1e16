#!/usr/bin/env bash
# Makes tests/data/single_label_run: a class-conditional run and its export, written by pgen
# before data.label_keys (commit e05a95a), which tests/integration/test_attributes.py loads
# with today's pgen. Run from the repository root with pgen's environment active:
#   bash tests/data/make_single_label_run.sh
# It keeps what `generate` and resuming read: the run's checkpoint, config.json and
# data_info.json; the export's export.json and StableHLO function (its SavedModel is
# TensorFlow's to load, not pgen's); and the images each generated (seed 3, one per class).
set -euo pipefail
OLD_COMMIT=e05a95a
ROOT=$(pwd)
OUT=$ROOT/tests/data/single_label_run
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/pgen"; rm -rf "$WORK"' EXIT

git worktree add --detach "$WORK/pgen" "$OLD_COMMIT"
cd "$WORK/pgen"
python -m pgen train --config configs/fashion_mnist_dcgan.py:smoke --workdir "$WORK/run" \
    --config.model.conditioning=projection --config.total_steps=3
python -m pgen export --workdir "$WORK/run" --out "$WORK/export"
python -m pgen generate --workdir "$WORK/run" --num 10 --seed 3 --out "$WORK/workdir_seed3.npz"
python -m pgen generate --export "$WORK/export" --num 10 --seed 3 --out "$WORK/export_seed3.npz"

rm -rf "$OUT"
mkdir -p "$OUT/workdir" "$OUT/export"
cp -r "$WORK/run/checkpoints" "$WORK/run/config.json" "$WORK/run/data_info.json" "$OUT/workdir/"
cp "$WORK/export/export.json" "$OUT/export/"
cp "$WORK/export/generator.stablehlo" "$OUT/export/"
cp "$WORK/workdir_seed3.npz" "$WORK/export_seed3.npz" "$OUT/"
ls -R "$OUT"
