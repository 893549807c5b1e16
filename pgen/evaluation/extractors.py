"""The feature spaces that generated images are scored in, and how a config picks one.

    extractor = make_extractor(config)
    features, class_logits = extractor(images_uint8)   # class_logits: (N, classes) or None
    extractor.id                                        # names it and its weights

`eval.feature_extractor` is "classifier", pgen's shipped Fashion-MNIST classifier
(penultimate layer; Fashion-MNIST at 32x32 only), "catalog", a classifier trained on the
run's own dataset (pgen.evaluation.catalog_classifier; any dataset, made once and cached),
or "inception", the standard FID Inception-v3's pool3 (any dataset; needs the weights file
`eval.inception_weights`). The class logits, which the class metrics need, come from the
Fashion-MNIST classifier wherever it applies, whichever network gives the features, and
from the catalog classifier when it gives them.
"""

import dataclasses
from typing import Callable

import ml_collections
import numpy as np

from pgen.errors import ConfigError
from pgen.evaluation import classifier


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
  """`extract(images_uint8) -> (features, class logits or None)`, named by `id` (reference
  caches carry it in their file names); `report` holds what the evaluation result says
  about it besides its id."""
  id: str
  extract: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
  report: dict = dataclasses.field(default_factory=dict)
  # (names, values of each) of the attributes its class logits combine; () for one.
  attributes: tuple = ()

  def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return self.extract(images)


def classifier_applies(config: ml_collections.ConfigDict) -> bool:
  return config.data.name == "fashion_mnist" and config.data.resolution == 32


def feature_extractor_name(config: ml_collections.ConfigDict) -> str:
  """eval.feature_extractor ("classifier", "catalog" or "inception": pgen.config checks),
  checked against the data it will see."""
  name = config.eval.feature_extractor
  if name == "classifier" and not classifier_applies(config):
    raise ConfigError(
        f"The classifier feature extractor is for fashion_mnist at resolution 32 only; this "
        f"run is {config.data.name} at {config.data.resolution}. Use "
        "--config.eval.feature_extractor=catalog (a classifier of this dataset, trained on "
        "first use), or --config.eval.feature_extractor=inception with "
        "--config.eval.inception_weights.")
  return name


def classifier_extractor() -> FeatureExtractor:
  """The shipped classifier: one pass gives the features and the class logits."""
  return FeatureExtractor(f"fmnist-classifier-{classifier.weights_sha256()[:12]}",
                          classifier.classify)


def inception_extractor(weights_path: str | None, with_class_logits: bool) -> FeatureExtractor:
  """Inception pool3; the classifier's class logits besides, `with_class_logits`."""
  from pgen.evaluation import inception  # Loads Flax's Inception only when chosen.
  network = inception.InceptionFeatures(weights_path)

  def extract(images):
    features, _ = network(images)  # Inception's own 1008 logits are not Fashion-MNIST's.
    return features, classifier.classify(images)[1] if with_class_logits else None

  return FeatureExtractor(network.id, extract, {"inception_weights": network.description})


def catalog_extractor(config: ml_collections.ConfigDict, builder) -> FeatureExtractor:
  """The catalog classifier of `builder`'s dataset (trained on first use)."""
  from pgen.evaluation import catalog_classifier  # noqa: PLC0415
  network = catalog_classifier.CatalogClassifier.for_dataset(builder, config)
  record = network.record
  attributes = ((tuple(record["attributes"]), network.sizes) if len(network.sizes) > 1
                else ())
  return FeatureExtractor(network.id, network, {
      "catalog_classifier": {key: record[key] for key in
                             ("dataset", "held_out_images", "held_out_accuracy")}}, attributes)


def make_extractor(config: ml_collections.ConfigDict, builder=None) -> FeatureExtractor:
  """The extractor that `config.eval` asks for (`builder`: the dataset, which the catalog
  classifier is trained on)."""
  name = feature_extractor_name(config)
  if name == "classifier":
    return classifier_extractor()
  if name == "catalog":
    return catalog_extractor(config, builder)
  return inception_extractor(config.eval.inception_weights, classifier_applies(config))
