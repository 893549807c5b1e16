r"""Scores generated images against a dataset split in a feature space.

    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py

The feature space is pgen's shipped Fashion-MNIST classifier (penultimate layer).
Reference features are computed once per (dataset, split, count, resolution, padding,
feature extractor) and cached in a file whose name records all of these.
"""

import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from pgen import samples
from pgen.evaluation import classifier, metrics

# Points per side for the k-NN metrics: their cost is quadratic in it.
_MANIFOLD_POINTS = 5000
_MANIFOLD_K = 5


def extractor_id() -> str:
  return f"fmnist-classifier-{classifier.weights_sha256()[:12]}"


def check_supported(config: ml_collections.ConfigDict) -> None:
  if config.data.name != "fashion_mnist" or config.data.resolution != 32:
    raise ValueError(
        f"Evaluation has a feature extractor for fashion_mnist at resolution 32 only; this "
        f"run is {config.data.name} at {config.data.resolution}.")


def cache_dir() -> str:
  return os.environ.get("PGEN_CACHE_DIR", os.path.expanduser("~/.cache/pgen"))


def reference_features(builder, config, split: str, num: int):
  """(features, logits, labels) of the first `num` images of `split`, cached on disk."""
  from pgen.data import pipeline
  name = (f"ref_{config.data.name}_{split}_n{num}_r{config.data.resolution}_"
          f"pad{config.data.pad_value}_{extractor_id()}.npz")
  path = os.path.join(cache_dir(), name)
  if os.path.isfile(path):
    cached = np.load(path)
    return cached["features"], cached["logits"], cached["labels"]
  images, labels = pipeline.load_split(builder, config, split, limit=num)
  features, logits = classifier.classify(images)
  os.makedirs(cache_dir(), exist_ok=True)
  tmp = path + f".tmp{os.getpid()}.npz"
  np.savez(tmp, features=features, logits=logits, labels=labels)
  os.replace(tmp, path)
  logging.info("Cached reference features in %s", path)
  return features, logits, labels


def score(real_features, fake_features, fake_logits, num_classes: int) -> dict:
  """Every metric of generated images against reference features."""
  fd = metrics.frechet_distance(*metrics.gaussian_stats(real_features),
                                *metrics.gaussian_stats(fake_features))
  kid, kid_std = metrics.kernel_distance(real_features, fake_features)
  rng = np.random.default_rng(0)
  real_subset = real_features[rng.permutation(len(real_features))[:_MANIFOLD_POINTS]]
  fake_subset = fake_features[rng.permutation(len(fake_features))[:_MANIFOLD_POINTS]]
  probs = np.asarray(jax.nn.softmax(fake_logits, axis=-1))
  is_mean, is_std = metrics.inception_score(probs)
  result = {"fd": fd, "kid": kid, "kid_std": kid_std, "classifier_score": is_mean,
            "classifier_score_std": is_std}
  result.update(metrics.precision_recall_density_coverage(real_subset, fake_subset, _MANIFOLD_K))
  result.update(metrics.class_histogram(probs.argmax(axis=1), num_classes))
  return result


def nearest_training_images(fake_images: np.ndarray, train_images: np.ndarray,
                            chunk: int = 1000):
  """For each generated image, the L2 distance (pixels in [-1, 1]) to its nearest training
  image and that image's index: the memorization check."""
  train = train_images.reshape(len(train_images), -1).astype(np.float32) / 127.5 - 1.0
  train_sq = (train * train).sum(1)

  @jax.jit
  def nearest(batch):
    sq = (batch * batch).sum(1)[:, None] + train_sq[None, :] - 2 * batch @ train.T
    return jax.numpy.sqrt(jax.numpy.maximum(sq.min(1), 0)), sq.argmin(1)

  distances, indices = [], []
  for start in range(0, len(fake_images), chunk):
    batch = fake_images[start:start + chunk].reshape(-1, train.shape[1]).astype(np.float32)
    d, i = nearest(batch / 127.5 - 1.0)
    distances.append(np.asarray(d))
    indices.append(np.asarray(i))
  return np.concatenate(distances), np.concatenate(indices)


class Evaluator:
  """Scores batches of generated images against a dataset; reference features load once.

      evaluator = Evaluator(config, builder)
      result = evaluator(images_uint8)    # {"fd": ..., "kid": ..., "precision": ..., ...}
  """

  def __init__(self, config: ml_collections.ConfigDict, builder):
    check_supported(config)
    self._config, self._builder = config, builder
    self._split = config.get("eval", {}).get("reference_split", "train")
    self._num_ref = builder.info.splits[self._split].num_examples
    self._real_features, _, _ = reference_features(builder, config, self._split, self._num_ref)

  def __call__(self, images: np.ndarray, *, pairs_png: str | None = None) -> dict:
    fake_features, fake_logits = classifier.classify(images)
    result = score(self._real_features, fake_features, fake_logits, num_classes=10)
    result["ms_ssim"] = metrics.ms_ssim_diversity(images)
    result.update({"num_samples": int(len(images)), "reference": f"{self._config.data.name}/"
                   f"{self._split} ({self._num_ref} images)", "feature_extractor": extractor_id()})
    if pairs_png:
      from pgen.data import pipeline
      train_images, _ = pipeline.load_split(self._builder, self._config, self._split)
      distances, indices = nearest_training_images(images, train_images)
      result["nearest_train_l2_mean"] = float(distances.mean())
      result["nearest_train_l2_min"] = float(distances.min())
      closest = np.argsort(distances)[:8]
      pairs = np.concatenate([images[closest], train_images[indices[closest]]])
      samples.save_png(samples.image_grid(pairs, columns=8), pairs_png, scale=3)
    return result


def evaluate_images(images: np.ndarray, config: ml_collections.ConfigDict, *,
                    pairs_png: str | None = None) -> dict:
  """All metrics of uint8 images (N, H, W, C) against the config's dataset."""
  from pgen.data import sources
  check_supported(config)
  return Evaluator(config, sources.get_builder(config.data))(images, pairs_png=pairs_png)


def print_table(result: dict) -> None:
  width = max(len(k) for k in result)
  for key, value in result.items():
    shown = f"{value:.5g}" if isinstance(value, float) else str(value)
    print(f"{key:<{width}}  {shown}")


def evaluate_run(workdir: str, *, step: int | None = None, num: int = 10000) -> dict:
  """Scores `num` samples of a run's checkpoint; writes metrics_<step>.json and the
  memorization pairs (sample above, nearest training image below) next to it."""
  from pgen.generate import sample_run
  images, step, config = sample_run(workdir, num, step=step)
  result = evaluate_images(images, config, pairs_png=os.path.join(
      workdir, f"memorization_{step:08d}.png"))
  result = {"step": step, **result}
  with open(os.path.join(workdir, f"metrics_{step:08d}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def evaluate_npz(path: str, config: ml_collections.ConfigDict) -> dict:
  """Scores images made elsewhere (an .npz with uint8 `images`) against `config`'s data."""
  with np.load(path) as data:
    if "images" not in data:
      raise ValueError(f"{path} has no `images` array (uint8, (N, H, W, C)).")
    images = data["images"]
  if images.dtype != np.uint8:
    raise ValueError(f"{path}: `images` must be uint8 in [0, 255], not {images.dtype}.")
  return evaluate_images(images, config)
