r"""What reviewers accept, learned from their ratings: P(accept | sample).

    model, report = fit(store, generator)         # store: a reviews.ReviewStore
    model.save("exports/fmnist/acceptance")       # acceptance.json
    model = AcceptanceModel.load("exports/fmnist/acceptance")
    p = model.probability(images_uint8, labels, latents)   # (N,) in [0, 1]
    log_p = model.log_probability(images, labels) # jax, differentiable: the fine-tuning reward

The model is a logistic regression, standardized, plus one intercept per class for a
conditional generator (each condition has its own base rate while sharing what the
ratings say about samples), on one of two kinds of features:

- "image": the image's features in the evaluation feature network (pgen's Fashion-MNIST
  classifier's 128 penultimate units, the space FD is measured in; Fashion-MNIST at 32x32).
  It judges an image, so it applies to any generator of the same data: the one rated, a
  fine-tuned one, a later checkpoint; and it is differentiable, the fine-tuning reward.
- "latent": the sample's latent z, for any generator, image shape or dataset. It applies
  to the generator that was rated alone (rejection sampling), and cannot teach one.

L2-regularized, with the strength that gives the best cross-validated AUC, and fitted by
L-BFGS: the same ratings give the same model.

`fit` reports k-fold cross-validated AUC of the chosen strength (overall and per class with
enough ratings; choosing the strength on the same folds makes it slightly optimistic) and a
calibration table (predicted against observed acceptance in bins of the out-of-fold
probability); too few ratings of either kind is an error that says how many more.
"""

import dataclasses
import datetime
import functools
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from pgen.core import chunks, files, pixels
from pgen.errors import ArgumentError, ConfigError
from pgen.evaluation import classifier
from pgen.generation import generators

FILE_NAME = "acceptance.json"
FORMAT = 1
MIN_PER_DECISION = 10  # Accepted and rejected ratings each, at the least.
FOLDS = 5
MIN_PER_CLASS_AUC = 20  # Ratings of a class (with both decisions) for its own AUC.
# Strengths of the L2 penalty on the standardized weights (summed over ratings) that fit
# chooses from, by cross-validated AUC.
L2_CHOICES = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
CALIBRATION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
RENDER_CHUNK = 256
IMAGE, LATENT = "image", "latent"
FEATURE_KINDS = (IMAGE, LATENT)


def feature_network_id() -> str:
  return f"fmnist-classifier-{classifier.weights_sha256()[:12]}"


def has_image_features(image_shape) -> bool:
  return tuple(image_shape) == classifier.IMAGE_SHAPE


def feature_kind(requested: str, image_shape) -> str:
  """The features a model of `image_shape` samples uses: `requested` (one of FEATURE_KINDS,
  or "auto": image features where they exist, else latents)."""
  if requested == "auto":
    return IMAGE if has_image_features(image_shape) else LATENT
  if requested not in FEATURE_KINDS:
    raise ArgumentError(f"features={requested} is unknown; choose auto, "
                        f"{', '.join(FEATURE_KINDS)}.", argument="features")
  if requested == IMAGE and not has_image_features(image_shape):
    raise ArgumentError(
        f"features=image: the samples are {tuple(image_shape)} images; image features come "
        f"from pgen's Fashion-MNIST classifier, which takes {classifier.IMAGE_SHAPE} images "
        "(Fashion-MNIST at data.resolution=32). Use --features=latent.", argument="features")
  return requested


@jax.jit
def _features(params, images):
  """The classifier's penultimate features of images in [-1, 1]: differentiable."""
  return classifier.Classifier().apply(params, images)[0]


def image_features(images_uint8: np.ndarray) -> np.ndarray:
  params = classifier.load_params()
  return chunks.map_chunks(
      lambda _, batch: _features(params, pixels.to_model_range(jnp.asarray(batch))),
      [images_uint8], 1000)


@dataclasses.dataclass(frozen=True)
class AcceptanceModel:
  """A fitted model and what it was fitted on."""
  weights: np.ndarray  # (feature_dim,) on standardized features.
  class_bias: np.ndarray  # (num_labels,): the intercept of each class (one when unconditional).
  mean: np.ndarray
  scale: np.ndarray
  record: dict  # Everything else acceptance.json holds (feature network, ratings, CV).

  def logits_of_features(self, features, labels):
    xp = jnp if isinstance(features, jax.Array) else np
    standardized = (features - self.mean) / self.scale
    return standardized @ self.weights + xp.asarray(self.class_bias)[labels]

  @property
  def features(self) -> str:
    return self.record["features"]

  def probability(self, images_uint8: np.ndarray, labels: np.ndarray | None,
                  latents=None) -> np.ndarray:
    """P(accept) of samples: uint8 images, their classes (None when unconditional) and,
    for a latent model, the latents that made them."""
    labels = np.zeros((len(images_uint8),), np.int32) if labels is None else labels
    features = (image_features(images_uint8) if self.features == IMAGE
                else np.asarray(latents, np.float32))
    logits = self.logits_of_features(features, np.asarray(labels))
    return 1.0 / (1.0 + np.exp(-logits))

  def log_probability(self, images, labels):
    """log P(accept) of images in [-1, 1] (jax, differentiable in the images); the frozen
    reward of fine-tuning."""
    labels = jnp.zeros((images.shape[0],), jnp.int32) if labels is None else labels
    features = _features(classifier.load_params(), images)
    return jax.nn.log_sigmoid(self.logits_of_features(features, labels))

  def check_generator(self, generator: generators.TrainedGenerator) -> None:
    """An ArgumentError if the model cannot judge `generator`'s samples: images of another
    shape or classes, or (a latent model) another generator than the one rated."""
    where = self.record.get("path", "this model")
    if self.features == LATENT and generator.identity != self.record["generator"]:
      raise ArgumentError(
          f"accept={where} judges the latents of the generator that was rated "
          f"({self.record['generator_source']}, identity {self.record['generator'][:12]}); "
          f"{generator.source} is another ({generator.identity[:12]}), whose latents make "
          "other images. Rate its samples and fit a model for it.", argument="accept")
    if self.features == IMAGE and list(generator.image_shape) != self.record["image_shape"]:
      raise ArgumentError(
          f"accept={where} judges {tuple(self.record['image_shape'])} images; "
          f"{generator.source} makes {tuple(generator.image_shape)}.", argument="accept")
    names = list(generator.class_names) if generator.conditional else []
    if names != self.record["class_names"]:
      raise ArgumentError(
          f"accept={where} was fitted on samples of classes "
          f"{self.record['class_names'] or 'none (unconditional)'}; {generator.source} has "
          f"{names or 'none (unconditional)'}. Fit one on ratings of this data.",
          argument="accept")

  def save(self, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, FILE_NAME)
    content = {**self.record, "format": FORMAT, "weights": self.weights.tolist(),
               "class_bias": self.class_bias.tolist(), "mean": self.mean.tolist(),
               "scale": self.scale.tolist()}
    content.pop("path", None)
    files.write_whole(path, json.dumps(content, indent=1))
    return path

  @classmethod
  def load(cls, path: str) -> "AcceptanceModel":
    """From acceptance.json or the directory holding it."""
    file = os.path.join(path, FILE_NAME) if os.path.isdir(path) else path
    if not os.path.isfile(file):
      raise ArgumentError(f"accept={path} holds no {FILE_NAME}; fit one with `python -m pgen "
                          "feedback fit --reviews R --out DIR`.", argument="accept")
    with open(file) as f:
      content = json.load(f)
    if content.get("format") != FORMAT:
      raise ArgumentError(f"accept={path} has format {content.get('format')}; this pgen "
                          f"reads format {FORMAT}.", argument="accept")
    content.setdefault("features", IMAGE)  # Models fitted before latent features existed.
    if content["features"] == IMAGE and content["feature_network"] != feature_network_id():
      raise ArgumentError(
          f"accept={path} was fitted on the features of {content['feature_network']}; this "
          f"pgen's classifier is {feature_network_id()}. Fit it again.", argument="accept")
    arrays = {key: np.asarray(content.pop(key), np.float32)
              for key in ("weights", "class_bias", "mean", "scale")}
    return cls(**arrays, record={**content, "path": os.path.abspath(file)})


def reward_of(path: str, image_shape, num_classes: int):
  """The fine-tuning reward `(images in [-1, 1], labels or None) -> log P(accept)` of the
  model at `path`, checked against the run's images and classes (a ConfigError naming
  feedback.acceptance otherwise)."""
  try:
    model = AcceptanceModel.load(path)
  except ArgumentError as error:
    raise ConfigError(f"feedback.acceptance: {error}") from None
  if model.features != IMAGE:
    raise ConfigError(
        f"feedback.acceptance={path} judges latents, which say nothing of the images a "
        "generator learns to make; fine-tuning needs a model on image features (`feedback "
        "fit --features=image`, Fashion-MNIST at 32x32).")
  if list(image_shape) != model.record["image_shape"]:
    raise ConfigError(f"feedback.acceptance={path} judges "
                      f"{tuple(model.record['image_shape'])} images; this run makes "
                      f"{tuple(image_shape)}.")
  fitted_classes = len(model.record["class_names"])
  if fitted_classes != num_classes:
    raise ConfigError(
        f"feedback.acceptance={path} was fitted on ratings of "
        f"{fitted_classes or 'no'} classes; this run's generator has {num_classes or 'no'} "
        "classes. Fit a model on ratings of this run's samples.")
  return model.log_probability


def make_reward(config) -> Callable | None:
  """What `train_and_evaluate(..., make_reward=)` takes for `config`: the reward of its
  feedback.acceptance model when feedback.weight > 0, else None."""
  if config.feedback.weight <= 0:
    return None
  return functools.partial(reward_of, config.feedback.acceptance)


def _fit_logistic(features, labels, accepted, num_labels: int, l2: float):
  """(weights, class_bias, mean, scale) of the L2-regularized logistic regression."""
  mean = features.mean(0)
  scale = features.std(0) + 1e-6
  x = (features - mean) / scale
  onehot = np.eye(num_labels)[labels]
  y = accepted.astype(np.float64)
  dim = x.shape[1]

  def loss_and_grad(theta):
    w, b = theta[:dim], theta[dim:]
    logits = x @ w + onehot @ b
    p = 1.0 / (1.0 + np.exp(-logits))
    loss = np.sum(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * w @ w
    residual = p - y
    return loss, np.concatenate([x.T @ residual + l2 * w, onehot.T @ residual])

  result = scipy.optimize.minimize(loss_and_grad, np.zeros(dim + num_labels), jac=True,
                                   method="L-BFGS-B", options={"maxiter": 1000})
  return (result.x[:dim].astype(np.float32), result.x[dim:].astype(np.float32),
          mean.astype(np.float32), scale.astype(np.float32))


def auc(scores: np.ndarray, accepted: np.ndarray) -> float:
  """The area under the ROC curve: P(score of an accepted > score of a rejected), ties
  counted half."""
  pos, neg = scores[accepted], scores[~accepted]
  greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
  return float(greater / (len(pos) * len(neg)))


def _folds(accepted: np.ndarray, folds: int) -> np.ndarray:
  """Fold of each rating, stratified by the decision, from a fixed seed."""
  fold = np.empty(len(accepted), np.int32)
  rng = np.random.default_rng(0)
  for decision in (True, False):
    index = rng.permutation(np.flatnonzero(accepted == decision))
    fold[index] = np.arange(len(index)) % folds
  return fold


def calibration_table(probability: np.ndarray, accepted: np.ndarray) -> list[dict]:
  rows = []
  edges = CALIBRATION_BINS
  for low, high in zip(edges[:-1], edges[1:]):
    inside = (probability >= low) & ((probability < high) | (high == edges[-1]))
    if inside.any():
      rows.append({"bin": f"{low:.1f}-{high:.1f}", "ratings": int(inside.sum()),
                   "predicted": float(probability[inside].mean()),
                   "observed": float(accepted[inside].mean())})
  return rows


def _check_enough(accepted: np.ndarray, path: str) -> None:
  for decision, name in ((True, "accepted"), (False, "rejected")):
    have = int((accepted == decision).sum())
    if have < MIN_PER_DECISION:
      raise ArgumentError(
          f"reviews={path} has {have} {name} ratings; fitting needs at least "
          f"{MIN_PER_DECISION} accepted and {MIN_PER_DECISION} rejected, so "
          f"{MIN_PER_DECISION - have} more {name} ratings are needed (rate more samples with "
          "`python -m pgen review`).", argument="reviews")


def rated_samples(store, generator: generators.TrainedGenerator):
  """(images uint8, latents, labels, accepted) of every rating in `store`, rendered from
  their seeds."""
  ratings = store.ratings()
  seeds = np.array([r.seed for r in ratings], np.int64)
  labels = np.array([r.label for r in ratings], np.int32)
  accepted = np.array([r.accepted for r in ratings], bool)
  latents = np.asarray(generators.latents_for_seeds(generator, seeds), np.float32)
  images = np.zeros((len(ratings), *generator.image_shape), np.uint8)
  for start in range(0, len(ratings), RENDER_CHUNK):
    rows = slice(start, start + RENDER_CHUNK)
    images[rows] = generator.render(latents[rows],
                                    labels[rows] if generator.conditional else None)
  return images, latents, labels, accepted


def _out_of_fold(features, labels, accepted, num_labels: int, l2: float, fold) -> np.ndarray:
  """P(accept) of each rating by the model fitted on the other folds."""
  probability = np.zeros(len(accepted))
  for k in range(FOLDS):
    train, held_out = fold != k, fold == k
    model = AcceptanceModel(*_fit_logistic(features[train], labels[train], accepted[train],
                                           num_labels, l2), {})
    probability[held_out] = 1.0 / (1.0 + np.exp(-model.logits_of_features(
        features[held_out], labels[held_out])))
  return probability


def fit(store, generator: generators.TrainedGenerator,
        features: str = "auto") -> tuple[AcceptanceModel, dict]:
  """The acceptance model of `store`'s ratings (rendered with `generator`, which must be the
  generator they judged) on `features` (see feature_kind) and its cross-validation report."""
  if generator.identity != store.generator.identity:
    raise ArgumentError(
        f"generator={generator.source} (identity {generator.identity[:12]}) is not the "
        f"generator the ratings in {store.path} judged ({store.generator.source}, identity "
        f"{store.generator.identity[:12]}).", argument="generator")
  kind = feature_kind(features, generator.image_shape)
  images, latents, labels, accepted = rated_samples(store, generator)
  _check_enough(accepted, store.path)
  features = image_features(images) if kind == IMAGE else latents
  num_labels = store.generator.num_labels
  fold = _folds(accepted, FOLDS)
  cross_validated = {l2: _out_of_fold(features, labels, accepted, num_labels, l2, fold)
                     for l2 in L2_CHOICES}
  l2 = max(L2_CHOICES, key=lambda c: auc(cross_validated[c], accepted))
  out_of_fold = cross_validated[l2]
  per_class = {}
  for label in range(num_labels):
    rows = labels == label
    if rows.sum() >= MIN_PER_CLASS_AUC and 0 < accepted[rows].sum() < rows.sum():
      per_class[store.generator.class_name(label)] = auc(out_of_fold[rows], accepted[rows])
  report = {"features": kind, "ratings": len(accepted), "accepted": int(accepted.sum()),
            "l2": l2,
            "reviewers": sorted({r.reviewer for r in store.ratings()}), "folds": FOLDS,
            "cv_auc": auc(out_of_fold, accepted), "cv_auc_per_class": per_class,
            "calibration": calibration_table(out_of_fold, accepted)}
  weights, class_bias, mean, scale = _fit_logistic(features, labels, accepted, num_labels, l2)
  record = {**({"feature_network": feature_network_id()} if kind == IMAGE else {}),
            "image_shape": list(generator.image_shape),
            "class_names": list(store.generator.class_names) if store.generator.conditional
            else [],
            "generator": store.generator.identity, "generator_source": store.generator.source,
            "generator_step": store.generator.step, "reviews": os.path.abspath(store.path),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            **report}
  return AcceptanceModel(weights, class_bias, mean, scale, record), report


def format_report(report: dict) -> str:
  """The cross-validation report as `feedback fit` prints it."""
  lines = [f"{report['ratings']} ratings ({report['accepted']} accepted) by "
           f"{', '.join(report['reviewers'])}, on {report['features']} features",
           f"{report['folds']}-fold cross-validated AUC: {report['cv_auc']:.3f} (L2 "
           f"{report['l2']:g}, the best of {', '.join(f'{c:g}' for c in L2_CHOICES)})"]
  for name, value in report["cv_auc_per_class"].items():
    lines.append(f"  {name}: {value:.3f}")
  lines.append("calibration (out-of-fold P(accept) bin: ratings, predicted, observed):")
  for row in report["calibration"]:
    lines.append(f"  {row['bin']}: {row['ratings']:5d}  {row['predicted']:.3f}  "
                 f"{row['observed']:.3f}")
  return "\n".join(lines)
