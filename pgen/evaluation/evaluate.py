r"""What the evaluate command computes: the metrics of a generator's samples or of an .npz of
images, and the table it prints.

    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py \
        [--config.eval.feature_extractor=inception --config.eval.inception_weights=PATH]

The feature space is `eval.feature_extractor` (extractors.py); reference features are
cached (reference.py); scoring.py computes the metrics, memorization.py the nearest
training images.
"""

import json
import os
import zipfile
from typing import Callable

import ml_collections
import numpy as np

from pgen.data import pipeline, sources
from pgen.errors import ArgumentError, RunNotFoundError
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


def evaluate_samples(sample: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
                     config: ml_collections.ConfigDict, *, num: int, step: int,
                     out_dir: str) -> dict:
  """Scores `num` images of `sample(num) -> (uint8 images, their labels or None)`, a
  generator's samples at training step `step`; writes metrics_<step>.json and the
  memorization pairs (sample above, nearest training image below) into `out_dir`. The
  caller builds `sample` (pgen.evaluate does, from a run's checkpoint)."""
  images, labels = sample(num)
  result = evaluate_images(images, config, labels=labels, pairs_png=os.path.join(
      out_dir, f"memorization_{step:08d}.png"))
  result = {"step": step, **result}
  with open(os.path.join(out_dir, f"metrics_{step:08d}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def evaluate_npz(path: str, config: ml_collections.ConfigDict) -> dict:
  """Scores images made elsewhere (an .npz with uint8 `images`, and the `labels` they were
  generated for, if conditional) against `config`'s data."""
  info = pipeline.input_info(sources.get_builder(config.data), config)
  images, labels = load_npz(path, info.image_shape, info.num_classes)
  return evaluate_images(images, config, labels=labels)


_NPZ_FORMAT = ("write it with np.savez(path, images=uint8 (N, H, W, C), labels=int (N,)) or "
               "`python -m pgen generate --out samples.npz`")


def load_npz(path: str, image_shape: tuple, num_classes: int):
  """(images, labels or None) of an .npz, checked against the data it will be scored with:
  what is wrong is named with what was expected, before any features are computed."""
  arrays = _read_npz(path)
  if "images" not in arrays:
    raise ArgumentError(f"{path} has no `images` array (it has {sorted(arrays)}); "
                        f"{_NPZ_FORMAT}.")
  images, labels = arrays["images"], arrays.get("labels")
  _check_images(path, images, image_shape)
  if labels is not None:
    _check_labels(path, labels, len(images), num_classes)
  return images, labels


def _read_npz(path: str) -> dict:
  """{name: array} of an .npz (no pickles)."""
  if not os.path.isfile(path):
    raise RunNotFoundError(f"--npz={path} does not exist.")
  try:
    data = np.load(path)
    if not isinstance(data, np.lib.npyio.NpzFile):
      problem = "it is a single .npy array"
    else:
      with data:
        return {name: data[name] for name in data.files}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    problem = str(e)
  raise ArgumentError(f"npz={path} cannot be read as an .npz of arrays ({problem}); "
                      f"{_NPZ_FORMAT}.", argument="npz")


def _check_images(path: str, images: np.ndarray, image_shape: tuple) -> None:
  expected = f"(N, {', '.join(map(str, image_shape))})"
  if images.dtype != np.uint8:
    nan = " and holds NaNs" if images.dtype.kind == "f" and np.isnan(images).any() else ""
    raise ArgumentError(
        f"{path}: `images` must be uint8 in [0, 255]; it is {images.dtype}{nan}. From floats "
        "in [-1, 1]: ((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8).")
  if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
    raise ArgumentError(f"{path}: `images` has shape {images.shape}; this config's data are "
                        f"{expected} images (data.resolution and the dataset's channels).")
  if len(images) < 2:
    raise ArgumentError(f"{path}: `images` holds {len(images)} image(s); the metrics need at "
                        "least 2 (10,000 is the convention).")


def _check_labels(path: str, labels: np.ndarray, num: int, num_classes: int) -> None:
  if not num_classes:
    raise ArgumentError(f"{path} has `labels`, but this config's data have no classes; "
                        "leave them out.")
  if labels.dtype.kind not in "iu" or labels.shape != (num,):
    raise ArgumentError(f"{path}: `labels` must be integers of shape ({num},), one per image; "
                        f"they are {labels.dtype} {labels.shape}.")
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ArgumentError(f"{path}: `labels` run from {labels.min()} to {labels.max()}; the "
                        f"data have classes 0..{num_classes - 1}.")
