"""The two pixel ranges pgen uses: uint8 [0, 255] on disk and in files, float [-1, 1] in
the networks.

    x = to_model_range(images_uint8)     # numpy or jax arrays
    images_uint8 = to_uint8(x)
"""

import jax.numpy as jnp
import numpy as np


def to_model_range(images):
  """uint8 [0, 255] -> float32 [-1, 1] (numpy in, numpy out; jax in, jax out)."""
  return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images):
  """[-1, 1] floats -> [0, 255] uint8, rounded and clipped (a jax array)."""
  return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)
