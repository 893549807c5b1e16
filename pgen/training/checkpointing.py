"""Checkpoints of the GANState with Orbax: async saves, a keep-newest policy, resume.

    manager = create_manager(workdir, config)
    state = restore_latest(manager, abstract_state)   # None when the run is new
    best = best_fd(manager)                           # of evaluated checkpoints, or None
    save(manager, step, state, metrics={"fd": fd})    # when the loop decides to
    finish(manager)                                   # before the process exits

Resume order: this workdir's latest intact checkpoint, else a fresh state from the config
seed. Orbax writes each step to a temporary directory and renames it only when complete, so
an interrupted save never replaces or damages an earlier checkpoint. A checkpoint damaged
afterwards (a truncated, emptied or deleted file) is passed over with a warning that names
it, for the newest intact one; training moves it out of the way to
`<workdir>/damaged_checkpoints/<step>` (kept, not deleted). Restoring into `abstract_state`
(which carries the current mesh's shardings) reshards a checkpoint written with any other
device or process layout.
"""

import contextlib
import errno
import os
import re
import shutil

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from pgen import config as config_lib
from pgen.core import files, sharding, workdir as workdir_files
from pgen.errors import CheckpointDamagedError, ConfigError, RunNotFoundError, WorkdirWriteError
from pgen.gan.state import build

DAMAGED_DIR = "damaged_checkpoints"
_LISTING_ATTEMPTS = 5  # Each is after a step was deleted while listed: one more is rare.
_METADATA_MARGIN = 2**20  # Bytes of Orbax metadata per checkpoint, generously.
# Failed writes that are the disk's or the permissions' fault, not pgen's.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                   errno.ENOENT, errno.EIO)


def checkpoint_dir(workdir: str) -> str:
  return workdir_files.checkpoints_dir(workdir)


def checkpoint_sha256(workdir: str, step: int) -> str:
  """SHA-256 over a checkpoint directory's files (relative paths and contents, in order)."""
  return files.directory_sha256(os.path.join(checkpoint_dir(workdir), str(step)))


def create_manager(workdir: str, config: ml_collections.ConfigDict | None = None,
                   *, read_only: bool = False, item_handler=None) -> ocp.CheckpointManager:
  """A manager keeping the newest `keep_checkpoints` and, when the run evaluates, also the
  checkpoint with the lowest Frechet distance. `item_handler` replaces Orbax's
  StandardCheckpointHandler (tests/faults/ pass one that pauses inside a save)."""
  if read_only:
    options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                           save_interval_steps=0)  # Orbax warns otherwise.
  else:
    keep = checkpoint_managers.LatestN(config.keep_checkpoints)
    evaluated = config.eval.every_steps > 0
    if evaluated:
      keep = checkpoint_managers.AnyPreservationPolicy([keep, checkpoint_managers.BestN(
          get_metric_fn=_fd, reverse=True, n=1, keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=keep,
        # With a best_fn Orbax writes each checkpoint's metrics next to it and reads them back
        # when a run restarts, so the best checkpoint stays the best across restarts.
        best_fn=_fd if evaluated else None, best_mode="min",
        enable_async_checkpointing=True,
        cleanup_tmp_directories=True,  # Half-written saves of a killed run.
        # The step's directory is made in save() itself: a workdir that cannot take it (no
        # permission, gone) fails there, instead of in a background thread whose signal
        # other threads would wait for forever, keeping the process from exiting.
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
        create=True)
  directory = checkpoint_dir(workdir)
  return _listing_again_if_a_step_vanished(directory, lambda: ocp.CheckpointManager(
      directory, options=options, item_handlers=item_handler or ocp.StandardCheckpointHandler()))


def _fd(metrics: dict) -> float:
  return metrics["fd"]


def best_fd(manager: ocp.CheckpointManager) -> float | None:
  """The lowest Frechet distance saved with this run's checkpoints; None when none has one
  (the keep-best policy keeps the checkpoint it belongs to)."""
  fds = []
  for step in manager.all_steps():
    try:
      metrics = manager.metrics(step)
    except Exception as e:  # noqa: BLE001  (a damaged metrics file ranks nothing)
      logging.warning("The metrics of checkpoint %d cannot be read (%s); it does not count "
                      "towards the best FD.", step, _brief(e))
      continue
    if metrics and "fd" in metrics:
      fds.append(metrics["fd"])
  return min(fds, default=None)


def _listing_again_if_a_step_vanished(directory: str, list_steps):
  """`list_steps()` (a manager's construction or reload) again while it fails for a step
  directory that is gone: Orbax lists the steps, then reads each one's metadata, and a
  training run's keep policy may delete one in between (generate and evaluate read while
  it trains)."""
  for attempt in range(_LISTING_ATTEMPTS):
    try:
      return list_steps()
    except FileNotFoundError as e:
      vanished = (e.filename is not None and not os.path.exists(e.filename)
                  and os.path.dirname(os.path.abspath(e.filename)) == directory)
      if not vanished or attempt + 1 == _LISTING_ATTEMPTS:
        raise


def leaf_name(path) -> str:
  return ".".join(str(next(getattr(key, a) for a in ("key", "name", "idx") if hasattr(key, a)))
                  for key in path)


def leaves_by_name(tree) -> dict:
  """{"g_params.Conv_0.kernel": leaf} of a state, a checkpoint's metadata or restored tree."""
  return {leaf_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _layout(tree) -> dict[str, tuple]:
  """{"g_params.Conv_0.kernel": (shape, dtype)} of a state or of a checkpoint's metadata."""
  return {name: (tuple(leaf.shape), np.dtype(leaf.dtype).name)
          for name, leaf in leaves_by_name(tree).items()}


def _check_fits(manager, step: int, metadata, abstract_state) -> None:
  """ConfigError if checkpoint `step` (its `metadata`) holds another state layout than
  `abstract_state`."""
  saved, expected = _layout(metadata), _layout(abstract_state)
  if saved == expected:
    return
  differences = [f"{name}: {saved.get(name, 'absent')} in the checkpoint, "
                 f"{expected.get(name, 'absent')} in this config"
                 for name in sorted(set(saved) | set(expected))
                 if saved.get(name) != expected.get(name)]
  raise ConfigError(
      f"Checkpoint {step} in {manager.directory} does not fit the state of this config "
      f"({len(differences)} arrays differ, e.g. {differences[0]}). It was written with another "
      "model or optimizer setup (the run's config.json has it): train with that config, or "
      "use a new --workdir.")


def restore_run_state(workdir: str, step: int | None = None):
  """(a run's config, data info, its Setup, the whole restored train state) at `step`
  (default: the latest checkpoint), read-only: what generate, export and init.from read."""
  config = config_lib.from_workdir(workdir)
  info = workdir_files.read_data_info(workdir)
  setup = build(config, sharding.make_mesh(), tuple(info["image_shape"]),
                len(info["class_names"]), label_sizes=tuple(info.get("label_sizes", ())))
  state = restore_latest(create_manager(workdir, read_only=True), setup.abstract_state, step)
  if state is None:
    raise RunNotFoundError(
        f"{checkpoint_dir(workdir)} has no checkpoint yet; train first "
        "(checkpoints are written every checkpoint_every_steps).")
  return config, info, setup, state


def _brief(error: Exception) -> str:
  """The error's type and first sentence (TensorStore appends its whole spec)."""
  text = str(error).split(" See full TensorStore details")[0].split(" [tensorstore_spec=")[0]
  return f"{type(error).__name__}: {text[:300]}"


def _restore(manager, step: int, abstract_state):
  """The state at `step`, or CheckpointDamagedError if its files cannot be read back."""
  try:
    metadata = manager.item_metadata(step)
  except Exception as e:  # noqa: BLE001  (Orbax and TensorStore raise many kinds)
    raise CheckpointDamagedError(f"its metadata cannot be read ({_brief(e)})") from e
  if metadata is None:
    raise CheckpointDamagedError("its metadata is missing")
  _check_fits(manager, step, metadata, abstract_state)
  try:
    restored = manager.restore(step, args=ocp.args.StandardRestore(
        _on_disk_target(metadata, abstract_state)))
  except Exception as e:  # noqa: BLE001
    raise CheckpointDamagedError(f"its arrays cannot be read ({_brief(e)})") from e
  return _by_name_into(restored, abstract_state)


def _on_disk_target(metadata, abstract_state):
  """The checkpoint's own tree with the state's abstract arrays (shapes, dtypes, shardings)
  at its leaves, matched by name (_check_fits checked the names match). Restoring into it,
  not into the state, lets a field that is empty here (e.g. path_length_mean=None) be
  absent from a checkpoint written before the field existed."""
  by_name = leaves_by_name(abstract_state)
  return jax.tree_util.tree_map_with_path(lambda path, _: by_name[leaf_name(path)],
                                          metadata.tree)


def _by_name_into(restored, abstract_state):
  """The restored arrays (in the checkpoint's tree) placed into the state's tree."""
  by_name = leaves_by_name(restored)
  paths, treedef = jax.tree_util.tree_flatten_with_path(abstract_state)
  return jax.tree_util.tree_unflatten(treedef, [by_name[leaf_name(path)] for path, _ in paths])


def _everywhere(ok: bool) -> bool:
  """True when `ok` on every process (a file may be damaged for some processes' shards)."""
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


def restore_latest(manager: ocp.CheckpointManager, abstract_state, step: int | None = None, *,
                   move_damaged_to: str | None = None):
  """The checkpoint at `step` (default: the newest intact one) restored into
  `abstract_state`'s shardings; None when there is none. Damaged checkpoints newer than the
  one restored are logged and, with `move_damaged_to` (a workdir, on process 0), moved to
  its damaged_checkpoints/ so that the run can save those steps again."""
  if step is not None:
    if step not in manager.all_steps():
      raise RunNotFoundError(
          f"No checkpoint for step {step} in {manager.directory}; available steps: "
          f"{sorted(manager.all_steps())}.")
    try:
      return _restore(manager, step, abstract_state)
    except CheckpointDamagedError as e:
      raise CheckpointDamagedError(f"Checkpoint {step} in {manager.directory} is damaged: {e}. "
                                   "Choose another --step.") from e
  damaged = []
  candidates = sorted(manager.all_steps(), reverse=True)
  while candidates:
    candidate = candidates.pop(0)
    state, problem = None, None
    try:
      state = _restore(manager, candidate, abstract_state)
    except CheckpointDamagedError as e:
      problem = e
    if _everywhere(problem is None):
      _set_aside(manager, damaged, move_damaged_to)
      return state
    if not os.path.isdir(os.path.join(manager.directory, str(candidate))):
      # Deleted while read (a training run's keep policy): the newer ones are intact.
      _listing_again_if_a_step_vanished(os.fspath(manager.directory), manager.reload)
      candidates = sorted((s for s in manager.all_steps() if s not in damaged), reverse=True)
      continue
    logging.warning("Checkpoint %d in %s is damaged (%s); trying the one before it.", candidate,
                    manager.directory, problem or "on another process")
    damaged.append(candidate)
  if damaged:
    raise CheckpointDamagedError(
        f"Every checkpoint in {manager.directory} is damaged (steps {sorted(damaged)}; the log "
        f"says why), so the run cannot resume. To start it again from step 0, move "
        f"{manager.directory} away (or train into a new --workdir).")
  return None


def _set_aside(manager, damaged: list[int], workdir: str | None) -> None:
  if not damaged or workdir is None:
    return
  if jax.process_index() == 0:
    target = os.path.join(workdir, DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for step in damaged:
      destination = os.path.join(target, str(step))
      if os.path.exists(destination):
        destination += f".{len(os.listdir(target))}"
      shutil.move(os.path.join(manager.directory, str(step)), destination)
      logging.warning("Moved damaged checkpoint %d to %s; training repeats its steps.", step,
                      destination)
  multihost_utils.sync_global_devices("pgen_damaged_checkpoints_moved")
  manager.reload()


def save(manager: ocp.CheckpointManager, step: int, state, *,
         metrics: dict | None = None) -> None:
  """Starts an async save of `step` (the training loop decides when:
  pgen.training.loop.due_actions). `metrics` (e.g. {"fd": ...}) rank the checkpoint for the
  keep-best policy. A disk without room for it is an error before anything is written."""
  _check_room(manager, step, state)
  manager.save(step, args=ocp.args.StandardSave(state), force=True, metrics=metrics)


def _storage_problem(error: BaseException) -> str | None:
  """"<the OS's words> (<path>)" for a write that failed for a storage reason anywhere in
  `error`'s chain: an OSError, or the OS's words inside TensorStore's or TensorFlow's."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    text = str(error)
    for code in _STORAGE_ERRNOS:
      if (isinstance(error, OSError) and error.errno == code) or os.strerror(code) in text:
        path = getattr(error, "filename", None) or next(iter(re.findall(r'"(/[^"]+)"', text)),
                                                         None)
        return os.strerror(code) + (f" ({path})" if path else "")
    error = error.__cause__ or error.__context__
  return None


@contextlib.contextmanager
def storage_errors(manager: ocp.CheckpointManager):
  """Turns a write to the workdir that failed for a storage reason (no space, permission
  denied, read-only, vanished) into one WorkdirWriteError naming the path, the cause and the
  intact checkpoint to resume from; any other error passes through."""
  try:
    yield
  except WorkdirWriteError:
    raise
  except Exception as e:
    problem = _storage_problem(e)
    if problem is None:
      raise
    try:
      manager.reload()
      intact = sorted(manager.all_steps())
    except Exception:  # noqa: BLE001  (the directory itself may be gone)
      intact = []
    resume = (f"run the same command to resume from step {intact[-1]} (checkpoints {intact} "
              "are intact)" if intact else "run the same command to start again")
    raise WorkdirWriteError(f"Writing to the workdir failed: {problem}. Free space or fix "
                            f"the permissions of {manager.directory}, then {resume}.") from e


def _check_room(manager: ocp.CheckpointManager, step: int, state) -> None:
  """WorkdirWriteError when the checkpoint's disk has less free space than the state's
  uncompressed size (an upper bound of what Orbax writes) plus a margin for metadata."""
  needed = sum(leaf.nbytes for leaf in jax.tree.leaves(state)) + _METADATA_MARGIN
  free = shutil.disk_usage(manager.directory).free
  if free < needed:
    raise WorkdirWriteError(
        f"Checkpoint {step} needs up to {needed / 2**20:.1f} MiB and {manager.directory} has "
        f"{free / 2**20:.1f} MiB free: {os.strerror(errno.ENOSPC)}. Free space, then run "
        f"the same command to resume from step {manager.latest_step() or 0}.")


def finish(manager: ocp.CheckpointManager) -> None:
  """Waits for the last async save and closes the manager, even when the save failed."""
  try:
    manager.wait_until_finished()
  finally:
    manager.close()
