r"""A classifier of the run's own catalog: the feature space of `eval.feature_extractor=
"catalog"`, for datasets that pgen's Fashion-MNIST classifier does not take and that have
no Inception weights at hand.

    network = CatalogClassifier.for_dataset(builder, config)   # trained once, then cached
    features, class_logits = network(images_uint8)   # (N, 128), (N, classes) log-probabilities
    network.record["held_out_accuracy"]              # {"label": 0.97, "colour": 1.0}

It sees images as the generator makes them (data.resolution, data.resize, data.pad_value)
and is trained on the reference split's images, less one in ten held out (a fixed choice),
with one head per attribute of the labels (data.label_keys; the class alone otherwise).
Its features are the 128 units before the heads. The weights and a record of what they
were made from and their held-out accuracy per attribute are cached in
$PGEN_CACHE_DIR (default ~/.cache/pgen) under a name of everything they depend on; the
same dataset version and options give the same weights.
"""

import functools
import hashlib
import json
import os
import time

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from pgen.core import chunks, files, pixels
from pgen.data import options as data_options, pipeline
from pgen.evaluation import classifier, metrics, reference
from pgen.models import layers

EPOCHS = 20
BATCH_SIZE = 64
HELD_OUT_EVERY = 10  # Every tenth image (of a fixed permutation) is held out.
SEED = 0


def _attribute_losses(logits, labels, sizes):
  """Summed cross-entropy of each attribute's head."""
  rows = layers.attribute_rows(labels, sizes)
  loss, start = 0.0, 0
  for a, size in enumerate(sizes):
    loss += optax.softmax_cross_entropy_with_integer_labels(
        logits[:, start:start + size], rows[:, a] - start)
    start += size
  return loss


def train(images, labels, sizes: tuple, *, epochs=EPOCHS, seed=SEED):
  """Parameters of a classifier.Classifier trained on uint8 `images` and combined `labels`."""
  return classifier.fit(classifier.Classifier(sum(sizes)),
                        lambda logits, y: _attribute_losses(logits, y, sizes),
                        images, labels, epochs=epochs,
                        batch_size=min(BATCH_SIZE, len(images)), seed=seed)


@functools.partial(jax.jit, static_argnums=0)
def _apply(sizes, params, images_uint8):
  network = classifier.Classifier(sum(sizes))
  features, logits = network.apply(params, pixels.to_model_range(images_uint8))
  return features, layers.class_logits_of_attributes(logits, sizes)


def _classify(sizes, params, images_uint8: np.ndarray):
  """(features, class log-probabilities) as numpy arrays, a chunk at a time."""
  return chunks.map_chunks(lambda _, batch: _apply(sizes, params, jnp.asarray(batch)),
                           [images_uint8], 500)


class CatalogClassifier:
  """`(images uint8) -> (features, class log-probabilities)` of a trained classifier."""

  def __init__(self, params, sizes: tuple, record: dict):
    self.params, self.sizes, self.record = params, sizes, record
    self.id = f"catalog-classifier-{record['sha256'][:12]}"

  def __call__(self, images_uint8: np.ndarray):
    return _classify(self.sizes, self.params, images_uint8)

  @classmethod
  def for_dataset(cls, builder, config) -> "CatalogClassifier":
    """The cached classifier of this dataset version and its preprocessing, trained first
    when there is none."""
    info = pipeline.input_info(builder, config)
    sizes = tuple(info.label_sizes) or ((info.num_classes,) if info.num_classes else (1,))
    names = list(data_options.attributes_of(info.class_names)) or ["class"]
    data = config.data
    made_from = {"dataset": f"{builder.info.name}:{builder.info.version}",
                 "split": config.eval.reference_split, "image_shape": list(info.image_shape),
                 "resize": data.resize, "resize_filter": data.resize_filter,
                 "pad_value": data.pad_value, "upscale": data.upscale,
                 "label_keys": list(data.label_keys) or [data.label_key],
                 "epochs": EPOCHS, "seed": SEED, "held_out_every": HELD_OUT_EVERY}
    key = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(reference.cache_dir(), f"catalog_classifier_{builder.info.name}_{key}")
    if not os.path.isfile(path + ".json"):
      _train_and_cache(builder, config, sizes, names, made_from, path)
    with open(path + ".json") as f:
      record = json.load(f)
    template = classifier.Classifier(sum(sizes)).init(jax.random.PRNGKey(0),
                                                      jnp.zeros((1, *info.image_shape)))
    with open(path + ".msgpack", "rb") as f:
      params = flax.serialization.from_bytes(template, f.read())
    return cls(params, sizes, record)


def _train_and_cache(builder, config, sizes, names, made_from: dict, path: str) -> None:
  images, labels = pipeline.load_split(builder, config, config.eval.reference_split)
  held_out = np.random.default_rng(SEED).permutation(len(images)) % HELD_OUT_EVERY == 0
  logging.info("Training the catalog classifier of %s on %d images (%d held out; cached "
               "afterwards in %s).", made_from["dataset"], int((~held_out).sum()),
               int(held_out.sum()), path)
  start = time.time()
  params = train(images[~held_out], labels[~held_out], sizes)
  _, class_logits = _classify(sizes, params, images[held_out])
  weights = flax.serialization.to_bytes(params)
  record = {**made_from, "attributes": names, "label_sizes": list(sizes),
            "held_out_images": int(held_out.sum()),
            "held_out_accuracy": metrics.attribute_accuracy(class_logits, labels[held_out],
                                                            sizes, names),
            "train_s": round(time.time() - start, 1),
            "sha256": hashlib.sha256(weights).hexdigest()}
  files.write_whole(path + ".msgpack", weights)
  files.write_whole(path + ".json", json.dumps(record, indent=2))  # Last: it marks the pair.
  logging.info("Catalog classifier held-out accuracy: %s", record["held_out_accuracy"])
