"""Does the generator copy its training images? The nearest training image of each sample.

    distances, indices = nearest_training_images(fake_uint8, train_uint8)
    summary = memorization_pairs(fake_uint8, train_uint8, "memorization.png")

The pairs PNG shows the 8 samples closest to a training image (top row) above those
training images (bottom row): near-identical pairs mean memorization.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pgen.core import chunks, pixels

_PAIRS_SHOWN = 8


def nearest_training_images(fake_images: np.ndarray, train_images: np.ndarray,
                            chunk: int = 1000):
  """For each generated image, the L2 distance (pixels in [-1, 1]) to its nearest training
  image and that image's index."""
  train = pixels.to_model_range(train_images.reshape(len(train_images), -1))
  train_sq = (train * train).sum(1)

  @jax.jit
  def nearest(batch):
    sq = (batch * batch).sum(1)[:, None] + train_sq[None, :] - 2 * batch @ train.T
    return jnp.sqrt(jnp.maximum(sq.min(1), 0)), sq.argmin(1)

  fakes = fake_images.reshape(len(fake_images), train.shape[1])
  return chunks.map_chunks(lambda _, batch: nearest(pixels.to_model_range(batch)), [fakes], chunk)


def memorization_pairs(fake_images: np.ndarray, train_images: np.ndarray,
                       pairs_png: str) -> dict:
  """Writes the pairs PNG; returns the mean and smallest nearest-neighbour distance."""
  distances, indices = nearest_training_images(fake_images, train_images)
  closest = np.argsort(distances)[:_PAIRS_SHOWN]
  pairs = np.concatenate([fake_images[closest], train_images[indices[closest]]])
  pixels.save_png(pixels.image_grid(pairs, columns=_PAIRS_SHOWN), pairs_png, scale=3)
  return {"nearest_train_l2_mean": float(distances.mean()),
          "nearest_train_l2_min": float(distances.min())}
