"""A trained generator as `generate` and `evaluate` use it: from a run's checkpoint or from
an export directory, the same `render(z, labels) -> uint8 images` either way.

    generator = load("runs/fmnist")              # a workdir: its latest checkpoint
    generator = load("exports/fmnist")           # an export (export.json): no pgen model code
    images = sample(generator, 64, seed=0)       # latents drawn from the seed
    images = generator.render(latents_for_seeds(generator, [7, 8, 9]), None)

Loading from a checkpoint needs the run's config.json and data_info.json, not its dataset;
loading from an export needs only jax (the function is serialized StableHLO). Neither
imports TensorFlow.
"""

import dataclasses
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen import checkpointing, chunks, compiler, config as config_lib, samples, sharding
from pgen.errors import RunNotFoundError
from pgen.state import build

EXPORT_INFO = "export.json"
EXPORT_FUNCTION = "generator.stablehlo"
SAMPLE_CHUNK = 500  # Images rendered at once: bounds memory for any number of samples.


@dataclasses.dataclass(frozen=True)
class TrainedGenerator:
  render: Callable  # (z (N, latent_dim) float32, labels (N,) int32 or None) -> uint8 NHWC
  latent_dim: int
  image_shape: tuple  # (H, W, C)
  class_names: tuple  # The dataset's classes (empty when it has none).
  conditional: bool
  step: int  # Training step of the weights.
  source: str  # The workdir or export directory.
  config: ml_collections.ConfigDict | None = None  # The run's (None for an export).


def _run_files(workdir: str) -> tuple[ml_collections.ConfigDict, dict]:
  config = config_lib.from_workdir(workdir)
  path = os.path.join(workdir, "data_info.json")
  if not os.path.isfile(path):
    raise RunNotFoundError(f"{path} is missing: {workdir} is not a complete pgen training "
                           "workdir (train writes it at start).")
  with open(path) as f:
    return config, json.load(f)


def restore_ema_generator(workdir: str, step: int | None = None):
  """(the run's config, data info, its Setup, the restored state) at `step` (default: the
  latest checkpoint)."""
  config, info = _run_files(workdir)
  mesh = sharding.make_mesh()
  setup = build(config, mesh, tuple(info["image_shape"]), len(info["class_names"]))
  manager = checkpointing.create_manager(workdir, read_only=True)
  state = checkpointing.restore_latest(manager, setup.abstract_state, step)
  if state is None:
    raise RunNotFoundError(
        f"{checkpointing.checkpoint_dir(workdir)} has no checkpoint yet; train first "
        "(checkpoints are written every checkpoint_every_steps).")
  return config, info, setup, state


def ema_variables(state) -> dict:
  """The EMA generator's variables in a train state."""
  return {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}


def render_function(setup, variables) -> Callable:
  """The pure `(z, labels) -> uint8 images` of `setup`'s generator with `variables`; an
  unconditional generator ignores `labels`."""
  conditional = bool(setup.num_classes)

  def render(z, labels):
    return samples.render_images(setup.generator, variables, z, labels if conditional else None)

  return render


def from_state(setup, state, *, config: ml_collections.ConfigDict, image_shape: tuple,
               class_names: tuple, source: str) -> TrainedGenerator:
  """The EMA generator of a train `state` (of `setup`, pgen.state.build's)."""
  render = compiler.jit(render_function(setup, ema_variables(state)))
  return TrainedGenerator(
      render=lambda z, labels: np.asarray(render(z, labels)),
      latent_dim=config.model.latent_dim, image_shape=tuple(image_shape),
      class_names=tuple(class_names), conditional=bool(setup.num_classes),
      step=int(sharding.to_host(state.step)), source=source, config=config)


def from_checkpoint(workdir: str, step: int | None = None) -> TrainedGenerator:
  config, info, setup, state = restore_ema_generator(workdir, step)
  return from_state(setup, state, config=config, image_shape=info["image_shape"],
                    class_names=info["class_names"], source=workdir)


def from_export(directory: str) -> TrainedGenerator:
  with open(os.path.join(directory, EXPORT_INFO)) as f:
    info = json.load(f)
  with open(os.path.join(directory, EXPORT_FUNCTION), "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))

  def render(z, labels):
    labels = np.zeros((len(z),), np.int32) if labels is None else labels
    return np.asarray(exported.call(jnp.asarray(z, jnp.float32), jnp.asarray(labels, jnp.int32)))

  return TrainedGenerator(
      render=render, latent_dim=info["latent_dim"], image_shape=tuple(info["image_shape"]),
      class_names=tuple(info["class_names"]), conditional=info["conditional"],
      step=info["source_step"], source=directory)


def load(path: str, step: int | None = None) -> TrainedGenerator:
  """An export directory (it holds export.json) or a training workdir."""
  if os.path.isfile(os.path.join(path, EXPORT_INFO)):
    if step is not None:
      raise RunNotFoundError(f"{path} is an export of step {step}'s weights only; --step "
                             "applies to training workdirs.")
    return from_export(path)
  return from_checkpoint(path, step)


def sample(generator: TrainedGenerator, num: int, *, seed: int = 0,
           labels: np.ndarray | None = None) -> np.ndarray:
  """`num` images from latents drawn from `seed` (chunk i of SAMPLE_CHUNK images uses
  fold_in(key, i)); a conditional generator's `labels` (num,) default to evenly spread
  classes."""
  if num <= 0:
    raise ValueError(f"--num={num} must be positive.")
  if generator.conditional and labels is None:
    labels = samples.balanced_labels(num, len(generator.class_names))
  key = jax.random.PRNGKey(seed)

  def chunk(index, rows):  # rows: the chunk's labels (dummies when unconditional)
    z = jax.random.normal(jax.random.fold_in(key, index), (len(rows), generator.latent_dim))
    return generator.render(z, rows if generator.conditional else None)

  rows = labels if labels is not None else np.zeros((num,), np.int32)
  return chunks.map_chunks(chunk, [rows], SAMPLE_CHUNK)


def latents_for_seeds(generator: TrainedGenerator, seeds) -> jax.Array:
  """One latent per seed, each a function of its seed alone (catalogs: image <seed>.png is
  the same whatever else is generated with it)."""
  keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
  return jax.vmap(lambda k: jax.random.normal(k, (generator.latent_dim,)))(keys)
