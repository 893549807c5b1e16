"""The two pixel ranges pgen uses (uint8 [0, 255] on disk and in files, float [-1, 1] in
the networks), and uint8 images as grids, Pillow images and PNG files.

    x = to_model_range(images_uint8)     # numpy or jax arrays
    images_uint8 = to_uint8(x)
    save_png(image_grid(images_uint8), "grid.png")
"""

import math

import jax.numpy as jnp
import numpy as np
from PIL import Image


def to_model_range(images):
  """uint8 [0, 255] -> float32 [-1, 1] (numpy in, numpy out; jax in, jax out)."""
  return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images):
  """[-1, 1] floats -> [0, 255] uint8, rounded and clipped (a jax array)."""
  return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, border: int = 1) -> np.ndarray:
  """(N, H, W, C) uint8 -> one (rows*(H+b)+b, cols*(W+b)+b, C) image, tiles in row order."""
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.full((rows * (h + border) + border, columns * (w + border) + border, c), 255,
                 np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    top, left = border + r * (h + border), border + col * (w + border)
    grid[top:top + h, left:left + w] = image
  return grid


def to_pil(image: np.ndarray) -> Image.Image:
  """An (H, W, C) uint8 image (C = 1 or 3) as a Pillow image."""
  return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def from_pil(picture: Image.Image) -> np.ndarray:
  """A Pillow image as (H, W, C) uint8."""
  return np.asarray(picture).reshape(picture.height, picture.width, -1)


def save_png(image: np.ndarray, path: str, scale: int = 2) -> None:
  """Writes an (H, W, C) uint8 image, enlarged `scale` times (nearest) for viewing."""
  if scale > 1:
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
  to_pil(image).save(path)

