r"""Scores generated images against a dataset split in a feature space.

    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py \
        [--config.eval.feature_extractor=inception --config.eval.inception_weights=PATH]

`eval.feature_extractor` picks the feature space: "classifier", pgen's shipped
Fashion-MNIST classifier (penultimate layer; Fashion-MNIST at 32x32 only, its default), or
"inception", the standard FID Inception-v3's pool3 (any dataset; needs the weights file
`eval.inception_weights`). The classifier's class metrics are added wherever it applies.
Reference features are computed once per (dataset, split, count, resolution, padding,
feature extractor and its weights) and cached in a file whose name records all of these.
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
EXTRACTORS = ("classifier", "inception")


def extractor_id() -> str:
  """The shipped classifier's id: its weights' hash."""
  return f"fmnist-classifier-{classifier.weights_sha256()[:12]}"


def classifier_applies(config: ml_collections.ConfigDict) -> bool:
  return config.data.name == "fashion_mnist" and config.data.resolution == 32


def feature_extractor_name(config: ml_collections.ConfigDict) -> str:
  """eval.feature_extractor, by default the classifier where it applies, else Inception."""
  name = config.get("eval", {}).get("feature_extractor")
  if name is None:
    name = "classifier" if classifier_applies(config) else "inception"
  if name not in EXTRACTORS:
    raise ValueError(f"eval.feature_extractor={name!r}; choose one of {EXTRACTORS}.")
  if name == "classifier" and not classifier_applies(config):
    raise ValueError(
        f"The classifier feature extractor is for fashion_mnist at resolution 32 only; this "
        f"run is {config.data.name} at {config.data.resolution}. Use "
        "--config.eval.feature_extractor=inception with --config.eval.inception_weights.")
  return name


class ClassifierFeatures:
  """The shipped Fashion-MNIST classifier: (features (N, 128), class logits (N, 10))."""

  def __init__(self):
    self.id = extractor_id()

  def __call__(self, images: np.ndarray):
    return classifier.classify(images)


def make_extractor(config: ml_collections.ConfigDict):
  """The configured feature extractor: called on uint8 images, it returns (features,
  logits); `id` names it and its weights."""
  if feature_extractor_name(config) == "classifier":
    return ClassifierFeatures()
  from pgen.evaluation import inception  # Loads only when chosen.
  return inception.InceptionFeatures(config.get("eval", {}).get("inception_weights"))


def cache_dir() -> str:
  return os.environ.get("PGEN_CACHE_DIR", os.path.expanduser("~/.cache/pgen"))


def reference_features(builder, config, split: str, num: int, extractor) -> np.ndarray:
  """Features of the first `num` images of `split`, cached on disk."""
  from pgen.data import pipeline
  name = (f"ref_{config.data.name}_{split}_n{num}_r{config.data.resolution}_"
          f"pad{config.data.pad_value}_{extractor.id}.npz")
  path = os.path.join(cache_dir(), name)
  if os.path.isfile(path):
    with np.load(path) as cached:
      return cached["features"]
  images, labels = pipeline.load_split(builder, config, split, limit=num)
  logging.info("Computing %s features of %d %s/%s images (cached afterwards in %s).",
               extractor.id, len(images), config.data.name, split, path)
  features, _ = extractor(images)
  os.makedirs(cache_dir(), exist_ok=True)
  tmp = path + f".tmp{os.getpid()}.npz"
  np.savez(tmp, features=features, labels=labels)
  os.replace(tmp, path)
  logging.info("Cached reference features in %s", path)
  return features


def score(real_features, fake_features, class_logits=None, num_classes: int = 10,
          labels=None) -> dict:
  """Every metric of generated images against reference features; the class metrics only
  with the classifier's logits of the generated images, and their accuracy only with the
  `labels` a conditional generator was asked for."""
  fd = metrics.frechet_distance(*metrics.gaussian_stats(real_features),
                                *metrics.gaussian_stats(fake_features))
  kid, kid_std = metrics.kernel_distance(real_features, fake_features)
  rng = np.random.default_rng(0)
  real_subset = real_features[rng.permutation(len(real_features))[:_MANIFOLD_POINTS]]
  fake_subset = fake_features[rng.permutation(len(fake_features))[:_MANIFOLD_POINTS]]
  result = {"fd": fd, "kid": kid, "kid_std": kid_std}
  result.update(metrics.precision_recall_density_coverage(real_subset, fake_subset, _MANIFOLD_K))
  if class_logits is not None:
    probs = np.asarray(jax.nn.softmax(class_logits, axis=-1))
    is_mean, is_std = metrics.inception_score(probs)
    result.update({"classifier_score": is_mean, "classifier_score_std": is_std})
    result.update(metrics.class_histogram(probs.argmax(axis=1), num_classes))
    if labels is not None:
      result.update(metrics.conditional_accuracy(probs.argmax(axis=1), labels, num_classes))
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
      result = evaluator(images_uint8, labels)   # conditional: + class_accuracy

  `eval.num_reference` caps the reference images (default: the whole split).
  """

  def __init__(self, config: ml_collections.ConfigDict, builder):
    self._config, self._builder = config, builder
    self._extractor = make_extractor(config)
    eval_config = config.get("eval", {})
    self._split = eval_config.get("reference_split", "train")
    self._num_ref = builder.info.splits[self._split].num_examples
    if eval_config.get("num_reference"):
      self._num_ref = min(self._num_ref, eval_config.get("num_reference"))
    self._real_features = reference_features(builder, config, self._split, self._num_ref,
                                             self._extractor)

  def __call__(self, images: np.ndarray, labels: np.ndarray | None = None, *,
               pairs_png: str | None = None) -> dict:
    fake_features, fake_logits = self._extractor(images)
    if isinstance(self._extractor, ClassifierFeatures):
      class_logits = fake_logits
    elif classifier_applies(self._config):
      class_logits = classifier.classify(images)[1]
    else:
      class_logits = None
    result = score(self._real_features, fake_features, class_logits, num_classes=10,
                   labels=labels)
    result["ms_ssim"] = metrics.ms_ssim_diversity(images)
    result.update({"num_samples": int(len(images)), "reference": f"{self._config.data.name}/"
                   f"{self._split} ({self._num_ref} images)",
                   "feature_extractor": self._extractor.id})
    if not isinstance(self._extractor, ClassifierFeatures):
      result["inception_weights"] = self._extractor.description
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
                    labels: np.ndarray | None = None, pairs_png: str | None = None) -> dict:
  """All metrics of uint8 images (N, H, W, C) (of classes `labels`, if conditional) against
  the config's dataset."""
  from pgen.data import sources
  feature_extractor_name(config)  # Fails on an unsupported choice before the dataset loads.
  return Evaluator(config, sources.get_builder(config.data))(images, labels,
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
  from pgen.generate import sample_run
  images, labels, step, config = sample_run(workdir, num, step=step)
  if eval_config is not None:
    config.eval = ml_collections.ConfigDict(eval_config.to_dict())
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
      raise ValueError(f"{path} has no `images` array (uint8, (N, H, W, C)).")
    images = data["images"]
    labels = data["labels"] if "labels" in data else None
  if images.dtype != np.uint8:
    raise ValueError(f"{path}: `images` must be uint8 in [0, 255], not {images.dtype}.")
  return evaluate_images(images, config, labels=labels)
