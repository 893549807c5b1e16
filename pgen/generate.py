"""Images from a trained run's EMA generator: a PNG grid or an .npz of samples.

    generate("runs/fmnist", num=64, out="grid.png")
    generate("runs/fmnist", num=10000, out="samples.npz")   # key `images`: uint8 (N, H, W, C)

For a class-conditional run, `class_name` (an index or a class name) picks the class of
every sample; without it, a .png becomes one grid per class (grid_<class>.png) and an
.npz holds `num` samples spread evenly over the classes, with their `labels`.

The run's own config.json and data_info.json (written at the start of training) define
the model, so generating needs the workdir alone, not the dataset.
"""

import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from pgen import checkpointing, samples, sharding
from pgen.train import build

# Largest batch generated at once; bounds memory for large --num.
_CHUNK = 500


def load_run_config(workdir: str) -> tuple[ml_collections.ConfigDict, dict]:
  paths = [os.path.join(workdir, name) for name in ("config.json", "data_info.json")]
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"{path} is missing: {workdir} is not a pgen training workdir (train writes it at "
          "start). Pass the --workdir of a `python -m pgen train` run.")
  with open(paths[0]) as f:
    config = ml_collections.ConfigDict(json.load(f))
  with open(paths[1]) as f:
    data_info = json.load(f)
  return config, data_info


def class_index(class_name: str, class_names) -> int:
  """The index of `class_name`, given as an index or a name of the run's dataset."""
  if class_name.isdigit() and int(class_name) < len(class_names):
    return int(class_name)
  if class_name in class_names:
    return list(class_names).index(class_name)
  raise ValueError(f"--class={class_name} is not a class of this run; use an index below "
                   f"{len(class_names)} or one of {list(class_names)}.")


def sample_run(workdir: str, num: int, *, step: int | None = None, seed: int = 0,
               labels_fn=None):
  """(uint8 images (num, H, W, C), labels or None, checkpoint step, run config) from the
  EMA generator. `labels_fn(num, class_names)` gives the labels of a conditional run
  (default: evenly spread over the classes)."""
  if num <= 0:
    raise ValueError(f"--num={num} must be positive.")
  config, data_info = load_run_config(workdir)
  mesh = sharding.make_mesh()
  class_names = data_info["class_names"]
  setup = build(config, mesh, tuple(data_info["image_shape"]), len(class_names))
  labels = None
  if setup.num_classes:
    labels = (labels_fn(num, class_names) if labels_fn
              else samples.balanced_labels(num, setup.num_classes))
  manager = checkpointing.create_manager(workdir, read_only=True)
  state = checkpointing.restore_latest(manager, setup.abstract_state, step)
  if state is None:
    raise FileNotFoundError(f"{checkpointing.checkpoint_dir(workdir)} has no checkpoint yet; "
                            "train first (checkpoints are written every checkpoint_every_steps).")
  sample = samples.make_sampler(setup.generator, config.model.latent_dim, mesh)
  key = jax.random.PRNGKey(seed)
  chunks = []
  for i, start in enumerate(range(0, num, _CHUNK)):
    size = min(_CHUNK, num - start)
    chunk_labels = None if labels is None else labels[start:start + size]
    chunks.append(sample(state.ema_g_params, state.g_batch_stats, jax.random.fold_in(key, i),
                         size, chunk_labels))
  return np.concatenate(chunks), labels, int(sharding.to_host(state.step)), config


def generate(workdir: str, num: int, out: str, *, step: int | None = None, seed: int = 0,
             class_name: str | None = None) -> list[str]:
  """Writes `num` samples of the checkpoint at `step` (default latest) to `out` (or, for a
  conditional run's .png without `class_name`, one grid per class); returns the paths."""
  if not out.endswith((".png", ".npz")):
    raise ValueError(f"--out={out} must end in .png (a grid) or .npz (arrays).")
  run_config, data_info = load_run_config(workdir)
  class_names = data_info["class_names"]
  conditional = run_config.model.conditioning != "none"
  if class_name is not None and not conditional:
    raise ValueError(f"--class needs a class-conditional run; {workdir} trained with "
                     f"model.conditioning={run_config.model.conditioning!r}.")
  labels_fn = None
  if class_name is not None:
    index = class_index(class_name, class_names)
    labels_fn = lambda n, names: np.full((n,), index, np.int32)  # noqa: E731
  per_class_grids = conditional and class_name is None and out.endswith(".png")
  if per_class_grids:
    labels_fn = lambda n, names: np.repeat(  # noqa: E731
        np.arange(len(names), dtype=np.int32), n // len(names))
    total = num * len(class_names)
  images, labels, restored_step, _ = sample_run(
      workdir, total if per_class_grids else num, step=step, seed=seed, labels_fn=labels_fn)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if out.endswith(".npz"):
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    np.savez(out, **arrays)
    paths = [out]
  elif not per_class_grids:
    samples.save_png(samples.image_grid(images), out)
    paths = [out]
  else:
    paths = []
    for index, name in enumerate(class_names):
      path = f"{out[:-len('.png')]}_{_file_safe(name)}.png"
      samples.save_png(samples.image_grid(images[labels == index]), path)
      paths.append(path)
  logging.info("Wrote samples of step %d to %s", restored_step, ", ".join(paths))
  return paths


def _file_safe(name: str) -> str:
  return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
