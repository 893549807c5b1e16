"""Checkpoints of the GANState with Orbax: async saves, a keep-newest policy, resume.

    manager = create_manager(workdir, config)
    state = restore_latest(manager, abstract_state)   # None when the run is new
    save(manager, step, state)                        # when the loop decides to
    manager.wait_until_finished()                     # before the process exits

Resume order: this workdir's latest checkpoint, else a fresh state from the config seed.
Orbax writes each step to a temporary directory and renames it only when complete, so an
interrupted save never replaces or damages an earlier checkpoint. Restoring into
`abstract_state` (which carries the current mesh's shardings) reshards a checkpoint
written with any other device or process layout.
"""

import os

import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from pgen.errors import ConfigError, RunNotFoundError


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def create_manager(workdir: str, config: ml_collections.ConfigDict | None = None,
                   *, read_only: bool = False) -> ocp.CheckpointManager:
  """A manager keeping the newest `keep_checkpoints` and, when the run evaluates, also the
  checkpoint with the lowest Frechet distance."""
  if read_only:
    options = ocp.CheckpointManagerOptions(read_only=True, create=False)
  else:
    keep = checkpoint_managers.LatestN(config.keep_checkpoints)
    if config.eval.every_steps > 0:
      keep = checkpoint_managers.AnyPreservationPolicy([keep, checkpoint_managers.BestN(
          get_metric_fn=lambda metrics: metrics["fd"], reverse=True, n=1,
          keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=keep,
        enable_async_checkpointing=True,
        create=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def restore_latest(manager: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """The checkpoint at `step` (default: the latest) restored into `abstract_state`'s shardings."""
  if step is None:
    step = manager.latest_step()
    if step is None:
      return None
  elif step not in manager.all_steps():
    raise RunNotFoundError(
        f"No checkpoint for step {step} in {manager.directory}; available steps: "
        f"{sorted(manager.all_steps())}.")
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError(
        f"Checkpoint {step} in {manager.directory} does not fit the state of this config "
        f"({type(e).__name__}: {e}). It was written with another model or optimizer setup "
        "(the run's config.json has it): train with that config, or use a new --workdir."
    ) from e


def save(manager: ocp.CheckpointManager, step: int, state, *,
         metrics: dict | None = None) -> None:
  """Starts an async save of `step` (the training loop decides when: pgen.train.due_actions).
  `metrics` (e.g. {"fd": ...}) rank the checkpoint for the keep-best policy."""
  manager.save(step, args=ocp.args.StandardSave(state), force=True, metrics=metrics)
