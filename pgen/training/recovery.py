"""What a run does when training fails: a non-finite loss, or a collapse that in-training
evaluation sees. `train.on_nonfinite` and `train.on_collapse` choose "stop" (an error that
names the step; the default for non-finite values) or "rollback"; collapse can also be
ignored (its default).

    request = nonfinite_request(config, error)     # a RollbackRequested, or None: stop
    reason = collapse_reason(config, metrics, best_fd)   # why it is a collapse, or None
    rollbacks = record_rollback(workdir, config, restored_step, request, write=is_chief)
    step = resume_step(restored_step, load_rollbacks(workdir))   # after a restore
    config = scaled_config(config, rollbacks)       # learning rates for the rollbacks so far

A rollback restores the newest checkpoint (none is written after a failed step) and
resumes at the step that failed: the steps between are skipped, batches and random draws
with them, so the data order stays a function of the step and a resumed run still equals
an uninterrupted one. Each rollback can scale both learning rates
(`train.rollback_lr_scale`); after `train.max_rollbacks` the run stops with an error that
lists them. Rollbacks are recorded in <workdir>/rollbacks.json, which a relaunch reads, so
a run killed after a rollback resumes as it would have gone on.
"""

import json
import os

import ml_collections

from pgen.core import workdir as workdir_files
from pgen.errors import PgenError

ROLLBACKS_FILE = workdir_files.ROLLBACKS


class CollapseError(PgenError, RuntimeError):
  """In-training evaluation saw a collapse and train.on_collapse="stop"."""


class TooManyRollbacksError(PgenError, RuntimeError):
  """train.max_rollbacks were spent and training failed again."""


class RollbackRequested(Exception):
  """Raised out of the training loop: restore the newest checkpoint, resume at `failed_at`."""

  def __init__(self, failed_at: int, reason: str):
    super().__init__(f"step {failed_at}: {reason}")
    self.failed_at, self.reason = failed_at, reason


def nonfinite_request(config: ml_collections.ConfigDict, error) -> RollbackRequested | None:
  """The rollback for a NonFiniteLossError when the policy asks for one, else None."""
  if config.train.on_nonfinite != "rollback":
    return None
  return RollbackRequested(error.step, f"non-finite {', '.join(error.names)}")


def collapse_reason(config: ml_collections.ConfigDict, metrics: dict,
                    best_fd: float | None) -> str | None:
  """Why evaluation `metrics` count as a collapse under the config's thresholds, or None."""
  train = config.train
  entropy = metrics.get("class_entropy")
  if train.collapse_min_class_entropy and entropy is not None and (
      entropy < train.collapse_min_class_entropy):
    return (f"the generated class histogram's entropy {entropy:.3f} fell below "
            f"train.collapse_min_class_entropy={train.collapse_min_class_entropy}")
  fd = metrics.get("fd")
  if train.collapse_fd_ratio and best_fd and fd is not None and (
      fd > train.collapse_fd_ratio * best_fd):
    return (f"FD {fd:.2f} rose past train.collapse_fd_ratio={train.collapse_fd_ratio} times "
            f"this run's best {best_fd:.2f}")
  return None


def load_rollbacks(workdir: str) -> list[dict]:
  path = os.path.join(workdir, ROLLBACKS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def _write_rollbacks(workdir: str, rollbacks: list[dict]) -> None:
  path = os.path.join(workdir, ROLLBACKS_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(rollbacks, f, indent=1)
  os.replace(path + ".tmp", path)  # A kill leaves the old list or the new one.


def scaled_config(config: ml_collections.ConfigDict, rollbacks: list[dict]):
  """`config` with the learning rates scaled for the rollbacks so far."""
  scale = config.train.rollback_lr_scale ** len(rollbacks)
  if scale == 1.0:
    return config
  scaled = ml_collections.ConfigDict(config.to_dict())
  scaled.optim.g_learning_rate *= scale
  scaled.optim.d_learning_rate *= scale
  scaled.lock()
  return scaled


def record_rollback(workdir: str, config: ml_collections.ConfigDict, restored_step: int,
                    request: RollbackRequested, *, write: bool) -> list[dict]:
  """Adds `request` (restoring `restored_step`) to the workdir's rollbacks, or raises
  TooManyRollbacksError when train.max_rollbacks are spent; returns the list."""
  rollbacks = load_rollbacks(workdir)
  if len(rollbacks) >= config.train.max_rollbacks:
    history = "; ".join(f"step {r['failed_at']} ({r['reason']})" for r in rollbacks)
    raise TooManyRollbacksError(
        f"Training failed at step {request.failed_at} ({request.reason}) after "
        f"train.max_rollbacks={config.train.max_rollbacks} rollbacks ({history}); the "
        f"checkpoints are intact. Lower the learning rates (or train.rollback_lr_scale), then "
        "run the same command to resume.")
  rollbacks.append({"failed_at": request.failed_at, "reason": request.reason,
                    "restored_step": restored_step,
                    "lr_scale": config.train.rollback_lr_scale ** (len(rollbacks) + 1)})
  if write:
    _write_rollbacks(workdir, rollbacks)
  return rollbacks


def resume_step(restored_step: int, rollbacks: list[dict]) -> int:
  """The step a run restored at `restored_step` resumes from: the failed step of the newest
  rollback that restored this checkpoint, or the checkpoint's own."""
  later = [r["failed_at"] for r in rollbacks if r["restored_step"] == restored_step]
  return max(later, default=restored_step)
