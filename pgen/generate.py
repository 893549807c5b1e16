"""Images from a trained run's EMA generator: a PNG grid or an .npz of samples.

    generate("runs/fmnist", num=64, out="grid.png")
    generate("runs/fmnist", num=10000, out="samples.npz")   # key `images`: uint8 (N, H, W, C)

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


def sample_run(workdir: str, num: int, *, step: int | None = None, seed: int = 0):
  """(uint8 images (num, H, W, C), checkpoint step, run config) from the EMA generator."""
  if num <= 0:
    raise ValueError(f"--num={num} must be positive.")
  config, data_info = load_run_config(workdir)
  mesh = sharding.make_mesh()
  setup = build(config, mesh, tuple(data_info["image_shape"]))
  manager = checkpointing.create_manager(workdir, read_only=True)
  state = checkpointing.restore_latest(manager, setup.abstract_state, step)
  if state is None:
    raise FileNotFoundError(f"{checkpointing.checkpoint_dir(workdir)} has no checkpoint yet; "
                            "train first (checkpoints are written every checkpoint_every_steps).")
  sample = samples.make_sampler(setup.generator, config.model.latent_dim, mesh)
  key = jax.random.PRNGKey(seed)
  chunks = []
  for i, start in enumerate(range(0, num, _CHUNK)):
    chunks.append(sample(state.ema_g_params, state.g_batch_stats, jax.random.fold_in(key, i),
                         min(_CHUNK, num - start)))
  return np.concatenate(chunks), int(sharding.to_host(state.step)), config


def generate(workdir: str, num: int, out: str, *, step: int | None = None, seed: int = 0) -> str:
  """Writes `num` samples of the checkpoint at `step` (default latest) to `out`."""
  if not out.endswith((".png", ".npz")):
    raise ValueError(f"--out={out} must end in .png (a grid) or .npz (arrays).")
  images, restored_step, _ = sample_run(workdir, num, step=step, seed=seed)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if out.endswith(".png"):
    samples.save_png(samples.image_grid(images), out)
  else:
    np.savez(out, images=images)
  logging.info("Wrote %d samples of step %d to %s", num, restored_step, out)
  return out
