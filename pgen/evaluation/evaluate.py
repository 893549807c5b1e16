r"""The evaluate command: score a run's samples or an .npz of images, print the table.

    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py \
        [--config.eval.feature_extractor=inception --config.eval.inception_weights=PATH]

The feature space is `eval.feature_extractor` (extractors.py); reference features are
cached (reference.py); scoring.py computes the metrics, memorization.py the nearest
training images.
"""

import json
import os

import ml_collections
import numpy as np

from pgen import config as config_lib, generators, samples
from pgen.data import sources
from pgen.errors import ArgumentError
from pgen.evaluation import extractors, scoring


def evaluate_images(images: np.ndarray, config: ml_collections.ConfigDict, *,
                    labels: np.ndarray | None = None, pairs_png: str | None = None) -> dict:
  """All metrics of uint8 images (N, H, W, C) (of classes `labels`, if conditional) against
  the config's dataset."""
  extractors.feature_extractor_name(config)  # An unsupported choice fails before data loads.
  return scoring.Evaluator(config, sources.get_builder(config.data))(images, labels,
                                                                     pairs_png=pairs_png)


def print_table(result: dict) -> None:
  width = max(len(k) for k in result)
  for key, value in result.items():
    shown = f"{value:.5g}" if isinstance(value, float) else str(value)
    print(f"{key:<{width}}  {shown}")


def evaluate_run(workdir: str, *, step: int | None = None, num: int = 10000,
                 eval_config: ml_collections.ConfigDict | None = None) -> dict:
  """Scores `num` samples of a run's checkpoint; writes metrics_<step>.json and the
  memorization pairs (sample above, nearest training image below) next to it.
  `eval_config` replaces the eval settings the run was trained with (e.g. to score it in
  Inception features)."""
  generator = generators.from_checkpoint(workdir, step)
  config, step = generator.config, generator.step
  if eval_config is not None:
    config = config_lib.resolve({**config.to_dict(), "eval": eval_config.to_dict()})
  labels = (samples.balanced_labels(num, len(generator.class_names)) if generator.conditional
            else None)
  images = generators.sample(generator, num, labels=labels)
  result = evaluate_images(images, config, labels=labels, pairs_png=os.path.join(
      workdir, f"memorization_{step:08d}.png"))
  result = {"step": step, **result}
  with open(os.path.join(workdir, f"metrics_{step:08d}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def evaluate_npz(path: str, config: ml_collections.ConfigDict) -> dict:
  """Scores images made elsewhere (an .npz with uint8 `images`, and the `labels` they were
  generated for, if conditional) against `config`'s data."""
  with np.load(path) as data:
    if "images" not in data:
      raise ArgumentError(f"{path} has no `images` array (uint8, (N, H, W, C)).")
    images = data["images"]
    labels = data["labels"] if "labels" in data else None
  if images.dtype != np.uint8:
    raise ArgumentError(f"{path}: `images` must be uint8 in [0, 255], not {images.dtype}.")
  return evaluate_images(images, config, labels=labels)
