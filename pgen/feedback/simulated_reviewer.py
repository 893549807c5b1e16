r"""Reviewers made of code, for tests and benchmarks of the feedback loop: they rate samples
as a person would through the review page (into the same database), by a fixed rule.

    judge = confident_garment(threshold=0.9)           # pgen's classifier is sure of a class
    judge = brighter_than(0.25)                        # mean intensity above a quarter
    rate_seeds(store, generator, range(300), judge)    # 300 ratings by "simulated"
    judge(images_uint8, labels)                        # (N,) bool: accepted

`confident_garment` accepts what pgen's Fashion-MNIST classifier sees as a confident member
of a class (of the sample's own class when the generator is conditional): a stand-in for a
merchandiser who rejects garments of no clear kind.
"""

from typing import Callable

import jax
import numpy as np

from pgen.evaluation import classifier
from pgen.feedback import reviews
from pgen.generation import generators

SIMULATED = "simulated"
Judge = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def confident_garment(threshold: float = 0.9) -> Judge:
  def judge(images_uint8, labels=None):
    probabilities = np.asarray(jax.nn.softmax(classifier.classify(images_uint8)[1]))
    if labels is None:
      return probabilities.max(1) >= threshold
    return probabilities[np.arange(len(labels)), labels] >= threshold
  return judge


def brighter_than(fraction: float) -> Judge:
  def judge(images_uint8, labels=None):
    del labels
    return images_uint8.reshape(len(images_uint8), -1).mean(1) / 255.0 > fraction
  return judge


def sample_labels(generator: generators.TrainedGenerator, seeds) -> np.ndarray:
  """The review page's label of each seed: seed mod the class count (0 if unconditional)."""
  seeds = np.asarray(seeds)
  if not generator.conditional:
    return np.zeros(seeds.shape, np.int32)
  return (seeds % len(generator.class_names)).astype(np.int32)


def rate_seeds(store: reviews.ReviewStore, generator: generators.TrainedGenerator, seeds,
               judge: Judge, reviewer: str = SIMULATED) -> np.ndarray:
  """Rates the samples of `seeds` into `store` by `judge`; returns the decisions."""
  seeds = np.asarray(list(seeds))
  labels = sample_labels(generator, seeds)
  images = generator.render(generators.latents_for_seeds(generator, seeds),
                            labels if generator.conditional else None)
  decisions = judge(images, labels if generator.conditional else None)
  for seed, label, accepted in zip(seeds, labels, decisions):
    store.rate(reviews.Rating(seed=int(seed), label=int(label), accepted=bool(accepted),
                              reviewer=reviewer))
  return decisions
