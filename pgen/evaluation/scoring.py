"""Every metric of a batch of generated images against a dataset split's real images.

    evaluator = Evaluator(config, builder)     # reference features load (or compute) once
    result = evaluator(images_uint8)           # {"fd": ..., "kid": ..., "precision": ..., ...}
    result = evaluator(images_uint8, labels)   # conditional: + class_accuracy

The training loop holds one Evaluator; `python -m pgen evaluate` makes one per command.
"""

import jax
import ml_collections
import numpy as np

from pgen.data import pipeline
from pgen.evaluation import extractors, memorization, metrics, reference

# Points per side for the k-NN metrics: their cost is quadratic in it.
_MANIFOLD_POINTS = 5000
_MANIFOLD_K = 5


def _manifold_subsets(real_features: np.ndarray, fake_features: np.ndarray | None = None):
  """The points of each side the k-NN metrics use: the same reals for every call."""
  rng = np.random.default_rng(0)
  real_subset = real_features[rng.permutation(len(real_features))[:_MANIFOLD_POINTS]]
  if fake_features is None:
    return real_subset, None
  return real_subset, fake_features[rng.permutation(len(fake_features))[:_MANIFOLD_POINTS]]


def reference_radius(real_features: np.ndarray) -> np.ndarray:
  """What `score` computes of the reference alone for its k-NN metrics, to keep for all."""
  return metrics.kth_neighbour_radius(_manifold_subsets(real_features)[0], _MANIFOLD_K)


def score(real_features: np.ndarray, fake_features: np.ndarray,
          class_logits: np.ndarray | None = None, labels: np.ndarray | None = None, *,
          real_radius: np.ndarray | None = None) -> dict:
  """Every metric of generated images against reference features; the class metrics only
  with class logits of the generated images (their width is the number of classes), and
  their accuracy only with the `labels` a conditional generator was asked for.
  `real_radius`: reference_radius(real_features), kept by a caller that scores often."""
  fd = metrics.frechet_distance(*metrics.gaussian_stats(real_features),
                                *metrics.gaussian_stats(fake_features))
  kid, kid_std = metrics.kernel_distance(real_features, fake_features)
  real_subset, fake_subset = _manifold_subsets(real_features, fake_features)
  result = {"fd": fd, "kid": kid, "kid_std": kid_std}
  result.update(metrics.precision_recall_density_coverage(real_subset, fake_subset, _MANIFOLD_K,
                                                          real_radius))
  if class_logits is not None:
    num_classes = class_logits.shape[-1]
    probs = np.asarray(jax.nn.softmax(class_logits, axis=-1))
    is_mean, is_std = metrics.inception_score(probs)
    result.update({"classifier_score": is_mean, "classifier_score_std": is_std})
    result.update(metrics.class_histogram(probs.argmax(axis=1), num_classes))
    if labels is not None:
      result.update(metrics.conditional_accuracy(probs.argmax(axis=1), labels, num_classes))
  return result


class Evaluator:
  """Scores batches of generated images against `eval.reference_split` of the config's
  dataset (its first `eval.num_reference` images; None: all of them)."""

  def __init__(self, config: ml_collections.ConfigDict, builder):
    self._config, self._builder = config, builder
    self._extractor = extractors.make_extractor(config, builder)
    self._split = config.eval.reference_split
    self._num_ref = builder.info.splits[self._split].num_examples
    if config.eval.num_reference:
      self._num_ref = min(self._num_ref, config.eval.num_reference)
    self._real_features = reference.reference_features(builder, config, self._split,
                                                       self._num_ref, self._extractor)
    self._real_radius = reference_radius(self._real_features)

  def __call__(self, images: np.ndarray, labels: np.ndarray | None = None, *,
               pairs_png: str | None = None) -> dict:
    """The metrics of uint8 images (N, H, W, C); with `pairs_png`, also the memorization
    check against the whole reference split, its pairs written there."""
    fake_features, class_logits = self._extractor(images)
    result = score(self._real_features, fake_features, class_logits, labels,
                   real_radius=self._real_radius)
    result["ms_ssim"] = metrics.ms_ssim_diversity(images)
    if labels is not None and self._extractor.attributes:
      names, sizes = self._extractor.attributes
      result.update({f"accuracy/{name}": value for name, value in
                     metrics.attribute_accuracy(class_logits, labels, sizes, names).items()})
    result.update({"num_samples": int(len(images)), "reference": f"{self._config.data.name}/"
                   f"{self._split} ({self._num_ref} images)",
                   "feature_extractor": self._extractor.id, **self._extractor.report})
    if pairs_png:
      train_images, _ = pipeline.load_split(self._builder, self._config, self._split)
      result.update(memorization.memorization_pairs(images, train_images, pairs_png))
    return result
