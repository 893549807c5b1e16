r"""pgen's own Fashion-MNIST classifier: the default feature space for Fashion-MNIST metrics.

    features, logits = classify(images_uint8)       # (N, 128) penultimate layer, (N, 10)

    # Retrain it (reproducible; rewrites the shipped weights and their record):
    python -m pgen.evaluation.classifier --data_dir ~/tensorflow_datasets

It sees images exactly as the generator makes them: 32x32x1, Fashion-MNIST padded by 2
background pixels, scaled to [-1, 1]. The weights ship with the package
(weights/fashion_mnist_classifier.msgpack); classifier.json records their SHA-256 and the
test accuracy measured when they were made.
"""

import functools
import hashlib
import json
import os
import time

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgen.core import chunks, pixels

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
WEIGHTS = os.path.join(WEIGHTS_DIR, "fashion_mnist_classifier.msgpack")
RECORD = os.path.join(WEIGHTS_DIR, "fashion_mnist_classifier.json")
IMAGE_SHAPE = (32, 32, 1)
FEATURE_DIM = 128


class Classifier(nn.Module):
  """Three conv/pool stages, a 128-unit feature layer on their whole map (where a shape is,
  not only what it is: a dress and a T-shirt differ in outline), and a linear head. The
  catalog classifier uses the same network with one head per attribute, their logits side
  by side (`num_classes` their sum)."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    for features in (32, 64, 128):
      x = nn.relu(nn.Conv(features, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(FEATURE_DIM)(x))
    dropped = nn.Dropout(0.3, deterministic=not train)(features)
    return features, nn.Dense(self.num_classes)(dropped)


def weights_sha256() -> str:
  with open(WEIGHTS, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


@functools.lru_cache(maxsize=1)
def load_params():
  """The shipped parameters, after checking they are the recorded ones."""
  with open(RECORD) as f:
    record = json.load(f)
  if weights_sha256() != record["sha256"]:
    raise ValueError(f"{WEIGHTS} does not match the SHA-256 in {RECORD}; reinstall pgen or "
                     "retrain with `python -m pgen.evaluation.classifier`.")
  template = Classifier().init(jax.random.PRNGKey(0), jnp.zeros((1, *IMAGE_SHAPE)))
  with open(WEIGHTS, "rb") as f:
    return flax.serialization.from_bytes(template, f.read())


@jax.jit
def _apply(params, images_uint8):
  return Classifier().apply(params, pixels.to_model_range(images_uint8))


def classify(images_uint8: np.ndarray, batch_size: int = 1000):
  """(features (N, 128), logits (N, 10)) as float32 numpy arrays."""
  if images_uint8.shape[1:] != IMAGE_SHAPE:
    raise ValueError(f"The Fashion-MNIST classifier takes {IMAGE_SHAPE} images (data.resolution"
                     f"=32, one channel); got {images_uint8.shape[1:]}.")
  params = load_params()
  return chunks.map_chunks(lambda _, batch: _apply(params, jnp.asarray(batch)), [images_uint8],
                           batch_size)


def fit(model: nn.Module, loss_of_logits, images, labels, *, epochs: int, batch_size: int,
        learning_rate=1e-3, seed=0, log=None):
  """Parameters of `model` (images in [-1, 1] -> (features, logits)) trained from scratch on
  uint8 `images` by Adam on a cosine schedule, minimizing mean `loss_of_logits(logits,
  labels)` with dropout; deterministic for a seed. `log(epoch, loss)` after each epoch."""
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *images.shape[1:])))
  steps_per_epoch = len(images) // batch_size
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, epochs * steps_per_epoch))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch_images, batch_labels, key):
    def loss_fn(p):
      _, logits = model.apply(p, pixels.to_model_range(batch_images), train=True,
                              rngs={"dropout": key})
      return loss_of_logits(logits, batch_labels).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  key = jax.random.PRNGKey(seed + 1)
  for epoch in range(epochs):
    order = rng.permutation(len(images))
    for i in range(steps_per_epoch):
      rows = order[i * batch_size:(i + 1) * batch_size]
      params, opt_state, loss = step(params, opt_state, images[rows], labels[rows],
                                     jax.random.fold_in(key, epoch * steps_per_epoch + i))
    if log:
      log(epoch, float(loss))
  return params


def train(train_images, train_labels, test_images, test_labels, *, epochs=8, batch_size=128,
          learning_rate=1e-3, seed=0):
  """Trains from scratch; returns (params, test accuracy). Deterministic for a seed."""
  start = time.time()

  def log(epoch, loss):
    print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f} ({time.time() - start:.0f}s)",
          flush=True)

  params = fit(Classifier(), optax.softmax_cross_entropy_with_integer_labels, train_images,
               train_labels, epochs=epochs, batch_size=batch_size,
               learning_rate=learning_rate, seed=seed, log=log)
  logits = chunks.map_chunks(lambda _, batch: _apply(params, jnp.asarray(batch))[1],
                            [test_images], 1000)
  return params, float((logits.argmax(1) == test_labels).mean())


def main():
  import argparse  # The retraining script alone needs these (and TensorFlow, for the data).

  import ml_collections

  from pgen.data import pipeline, sources
  parser = argparse.ArgumentParser(description="Retrain the shipped Fashion-MNIST classifier.")
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: TFDS's).")
  parser.add_argument("--manual_dir", default="/usr/share/datasets/fashion-mnist")
  parser.add_argument("--epochs", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  config = ml_collections.ConfigDict({
      "batch_size": 1, "data": {"name": "fashion_mnist", "split": "train", "resolution": 32,
                                "pad_value": 0, "data_dir": args.data_dir,
                                "manual_dir": args.manual_dir, "download": True}})
  builder = sources.get_builder(config.data)
  train_images, train_labels = pipeline.load_split(builder, config, "train")
  test_images, test_labels = pipeline.load_split(builder, config, "test")
  params, accuracy = train(train_images, train_labels, test_images, test_labels,
                           epochs=args.epochs, seed=args.seed)
  os.makedirs(WEIGHTS_DIR, exist_ok=True)
  with open(WEIGHTS, "wb") as f:
    f.write(flax.serialization.to_bytes(params))
  record = {"test_accuracy": accuracy, "sha256": weights_sha256(), "epochs": args.epochs,
            "seed": args.seed, "jax": jax.__version__, "feature_dim": FEATURE_DIM,
            "preprocessing": "Fashion-MNIST 28x28 padded to 32x32 with 0, scaled to [-1, 1]",
            "command": f"python -m pgen.evaluation.classifier --epochs {args.epochs} "
                       f"--seed {args.seed}"}
  with open(RECORD, "w") as f:
    json.dump(record, f, indent=2)
  print(f"test accuracy {accuracy:.4f}; wrote {WEIGHTS} (sha256 {record['sha256']})")


if __name__ == "__main__":
  main()
