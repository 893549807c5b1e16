r"""A new run that starts from another run's weights (`init.from`), as StyleGAN2-ADA's
`--resume` does for a small dataset: last season's model fine-tuned on this season's photos.

    python -m pgen train --config folder_dcgan --workdir runs/autumn \
        --config.init.from=runs/summer          # or runs/summer:1200, or an export

The source is a pgen workdir (its latest checkpoint, or `:STEP`) or an export (which holds
the EMA generator only: G and its EMA start from it, D fresh). G's and D's parameters and
statistics and the EMA generator are copied where a name and shape match; the rest (a
class embedding for other classes or attributes, another channel count) keeps its fresh
initialization, and the log lists both. The optimizer, the step, ADA's probability and the
data position start fresh. A source of another model family or resolution is refused with
the reason. This runs only when the workdir has no checkpoint: a resumed run resumes itself,
never the source again.
"""

import dataclasses
import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from pgen.core import files, sharding, workdir as workdir_files
from pgen.errors import ConfigError
from pgen.training import checkpointing

# The state's parts copied from a source; the rest of the state starts fresh.
COPIED_PARTS = ("g_params", "g_batch_stats", "d_params", "d_batch_stats", "ema_g_params")


@dataclasses.dataclass(frozen=True)
class Source:
  """What a run starts from: its description, its model and image shape, and its parts as
  numpy trees (None for a part it does not hold)."""
  path: str
  step: int
  sha256: str
  model: str
  image_shape: tuple
  parts: dict


def parse(spec: str) -> tuple[str, int | None]:
  """"runs/summer" -> ("runs/summer", None); "runs/summer:1200" -> ("runs/summer", 1200)."""
  path, _, step = spec.rpartition(":")
  if path and step.isdigit():
    return path, int(step)
  return spec, None


def _from_export(path: str) -> Source:
  with open(os.path.join(path, workdir_files.EXPORT_INFO)) as f:
    info = json.load(f)
  params_dir = os.path.abspath(os.path.join(path, workdir_files.EXPORT_PARAMS))
  variables = ocp.StandardCheckpointer().restore(params_dir)
  g_params = jax.device_get(variables["params"])
  return Source(path, info["source_step"], files.directory_sha256(params_dir), info["model"],
                tuple(info["image_shape"]),
                {"g_params": g_params, "ema_g_params": g_params,
                 "g_batch_stats": jax.device_get(variables.get("batch_stats", {})),
                 "d_params": None, "d_batch_stats": None})


def _from_workdir(path: str, step: int | None) -> Source:
  config, info, _, state = checkpointing.restore_run_state(path, step)
  step = int(sharding.to_host(state.step))
  return Source(path, step, checkpointing.checkpoint_sha256(path, step), config.model.name,
                tuple(info["image_shape"]),
                {part: jax.device_get(getattr(state, part)) for part in COPIED_PARTS})


def load_source(spec: str) -> Source:
  path, step = parse(spec)
  if workdir_files.is_export(path):
    if step is not None:
      raise ConfigError(f"init.from={spec}: an export holds one step; give its directory "
                        "without :STEP.")
    return _from_export(path)
  return _from_workdir(path, step)


def _check_compatible(config, image_shape: tuple, source: Source) -> None:
  if source.model != config.model.name:
    raise ConfigError(f"init.from={source.path}: its model is {source.model}, this run's is "
                      f"{config.model.name}; weights move only within one family.")
  if tuple(source.image_shape[:2]) != tuple(image_shape[:2]):
    raise ConfigError(f"init.from={source.path}: its images are {source.image_shape[0]}x"
                      f"{source.image_shape[1]}, this run's {image_shape[0]}x{image_shape[1]};"
                      " set data.resolution to the source's to start from it.")


def transplant(fresh, source) -> tuple[object, list[str], list[str]]:
  """`fresh` (a tree of arrays) with each leaf that `source` has under the same name and
  shape replaced by the source's (cast to the fresh leaf's dtype, on its sharding); returns
  (the tree, names copied, names kept fresh with why)."""
  by_name = checkpointing.leaves_by_name(source or {})
  copied, kept = [], []

  def take(path, leaf):
    name = checkpointing.leaf_name(path)
    found = by_name.get(name)
    if found is None or np.shape(found) != leaf.shape:
      kept.append(f"{name} ({'absent' if found is None else f'shape {np.shape(found)}'} "
                  f"in the source, {leaf.shape} here)")
      return leaf
    copied.append(name)
    return jax.device_put(np.asarray(found, leaf.dtype), leaf.sharding)

  return jax.tree_util.tree_map_with_path(take, fresh), copied, kept


def start_from(config, state, image_shape: tuple) -> tuple[object, dict]:
  """`state` (fresh) with the parts of `config.init["from"]` copied in, and the record of
  what was: {"source", "step", "sha256", "copied", "fresh"}."""
  source = load_source(config.init["from"])
  _check_compatible(config, image_shape, source)
  copied, kept, replaced = [], [], {}
  for part in COPIED_PARTS:
    tree, part_copied, part_kept = transplant(getattr(state, part), source.parts[part])
    replaced[part] = tree
    copied += [f"{part}.{name}" for name in part_copied]
    kept += [f"{part}.{name}" for name in part_kept]
  logging.info("init.from=%s (step %d, SHA-256 %s): %d arrays copied; %d start fresh%s",
               source.path, source.step, source.sha256[:12], len(copied), len(kept),
               "".join(f"\n  {name}" for name in kept))
  record = {"source": os.path.abspath(source.path), "step": source.step,
            "sha256": source.sha256, "copied": copied, "fresh": kept}
  return state.replace(**replaced), record
