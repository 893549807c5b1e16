"""Sampling from the EMA generator (of a live state or a run's checkpoint), and sample
grids as images.

    sample = make_sampler(generator, latent_dim, mesh)
    images = sample(state.ema_g_params, state.g_batch_stats, key, 64)   # uint8 (64, H, W, C)
    images = sample(..., key, 100, balanced_labels(100, 10))  # conditional: 10 per class
    save_png(image_grid(images), "grid.png")

    run = load_run("runs/fmnist")                    # config.json + data_info.json
    images, labels, step = sample_checkpoint(run, 1000, seed=0)

A run's own config.json and data_info.json (written at the start of training) define the
model, so sampling needs the workdir alone: no dataset, no TensorFlow.
"""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from pgen import checkpointing, chunks, compiler, config as config_lib, pixels, sharding
from pgen.errors import RunNotFoundError
from pgen.state import build

# The fold_in constant that separates the fixed sample-grid latents from training latents.
SAMPLE_GRID_STREAM = 0x5A3F


# Largest batch generated at once; bounds memory for large numbers of samples.
SAMPLE_CHUNK = 500


def make_sampler(generator, latent_dim: int, mesh):
  """Returns sample(params, batch_stats, key, num, labels=None) -> uint8 images on the host.

  `labels` (num,) ints are the classes of a conditional generator. The generator runs in
  inference mode (BatchNorm uses its running statistics), so an image depends only on its
  latent (and label), not on the batch it was generated in.
  """
  replicated = sharding.replicated(mesh)

  def sample(params, batch_stats, key, num, labels):
    z = jax.random.normal(key, (num, latent_dim))
    images = generator.apply({"params": params, "batch_stats": batch_stats}, z, labels,
                             train=False)
    return pixels.to_uint8(images)

  jitted = compiler.jit(sample, static_argnums=(3,), out_shardings=replicated)

  def run(params, batch_stats, key, num, labels=None):
    if labels is not None:
      labels = jnp.asarray(labels, jnp.int32)
    return sharding.to_host(jitted(params, batch_stats, key, num, labels))

  return run


def balanced_labels(num: int, num_classes: int) -> np.ndarray | None:
  """`num` labels in contiguous equal blocks per class (so a square grid of 10 x 10 has one
  class per row), or None for an unconditional model (num_classes == 0)."""
  if num_classes == 0:
    return None
  return (np.arange(num) * num_classes // num).astype(np.int32)


def grid_key(seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLE_GRID_STREAM)


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


def save_png(image: np.ndarray, path: str, scale: int = 2) -> None:
  """Writes an (H, W, C) uint8 image, enlarged `scale` times (nearest) for viewing."""
  if scale > 1:
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


@dataclasses.dataclass(frozen=True)
class Run:
  """A training workdir as sampling sees it."""
  workdir: str
  config: ml_collections.ConfigDict  # Resolved: any pgen version's config.json loads.
  image_shape: tuple  # (H, W, C)
  class_names: tuple  # The dataset's classes ("" when it has none).

  @property
  def conditional(self) -> bool:
    return self.config.model.conditioning != "none"


def load_run(workdir: str) -> Run:
  config = config_lib.from_workdir(workdir)
  path = os.path.join(workdir, "data_info.json")
  if not os.path.isfile(path):
    raise RunNotFoundError(f"{path} is missing: {workdir} is not a complete pgen training "
                           "workdir (train writes it at start).")
  with open(path) as f:
    info = json.load(f)
  return Run(workdir, config, tuple(info["image_shape"]), tuple(info["class_names"]))


def sample_checkpoint(run: Run, num: int, *, step: int | None = None, seed: int = 0,
                      labels: np.ndarray | None = None):
  """(uint8 images (num, H, W, C), labels or None, checkpoint step) from the EMA generator
  of the checkpoint at `step` (default: the latest). A conditional run's `labels` default
  to `num` spread evenly over the classes."""
  if num <= 0:
    raise ValueError(f"--num={num} must be positive.")
  mesh = sharding.make_mesh()
  setup = build(run.config, mesh, run.image_shape, len(run.class_names))
  if setup.num_classes and labels is None:
    labels = balanced_labels(num, setup.num_classes)
  manager = checkpointing.create_manager(run.workdir, read_only=True)
  state = checkpointing.restore_latest(manager, setup.abstract_state, step)
  if state is None:
    raise RunNotFoundError(
        f"{checkpointing.checkpoint_dir(run.workdir)} has no checkpoint yet; train first "
        "(checkpoints are written every checkpoint_every_steps).")
  sample = make_sampler(setup.generator, run.config.model.latent_dim, mesh)
  key = jax.random.PRNGKey(seed)

  def sample_chunk(index, rows):  # rows: the chunk's labels (dummies when unconditional)
    return sample(state.ema_g_params, state.g_batch_stats, jax.random.fold_in(key, index),
                  len(rows), None if labels is None else rows)

  rows = labels if labels is not None else np.zeros((num,), np.int32)
  images = chunks.map_chunks(sample_chunk, [rows], SAMPLE_CHUNK)
  return images, labels, int(sharding.to_host(state.step))
