"""The training loop: `train_and_evaluate(config, workdir)`.

    from pgen.configs.fashion_mnist_dcgan import get_config
    state = train_and_evaluate(get_config(), "runs/fmnist")

Phases: resolve the config, dataset and models, create (or restore) the sharded state,
then loop over jitted train steps. After each step `due_actions` decides, in one place,
what else runs (metrics, sample grid, evaluation, checkpoint). The loop gets its parts
(step function, batches, sampler, evaluator, writer, checkpoint manager) as `LoopParts`,
so a test can hand it other ones. Running it again on the same workdir resumes from the
latest checkpoint and continues to `config.total_steps`.
"""

import contextlib
import dataclasses
import itertools
import os
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils

from pgen import config as config_lib, data, models
from pgen.core import pixels, sharding, workdir as workdir_files
from pgen.evaluation.scoring import Evaluator
from pgen.gan import sampling
from pgen.gan.state import Setup, build
from pgen.training import checkpointing, init_from, metrics_file, performance, recovery, run_record
from pgen.training.compiled_step import compile_train_step
from pgen.training.monitoring import (  # noqa: F401
    MetricWindow, NonFiniteLossError, StopRequests, Throughput)


@dataclasses.dataclass(frozen=True)
class DueActions:
  """What runs after a step besides training."""
  log: bool
  samples: bool
  evaluate: bool
  checkpoint: bool


def due_actions(step: int, config: ml_collections.ConfigDict, *, last: bool,
                stopping: bool) -> DueActions:
  """Every periodic action is decided here: on its interval, and all at the last step
  (a checkpoint also when the run is asked to stop)."""
  def due(every_steps: int) -> bool:
    return every_steps > 0 and (step % every_steps == 0 or last)

  return DueActions(log=due(config.log_every_steps), samples=due(config.sample_every_steps),
                    evaluate=due(config.eval.every_steps),
                    checkpoint=due(config.checkpoint_every_steps) or stopping)


@dataclasses.dataclass
class LoopParts:
  """What the loop runs: built from the config by `train_and_evaluate`."""
  train_step: Any  # compiled_step.TrainStep: .at(step)(state, batch) -> (state, metrics)
  batches: Iterator  # Global batches from the start step on.
  sample: Callable  # sampling.make_sampler's function.
  evaluator: Callable | None  # (images, labels) -> metrics, on process 0 when eval is on.
  writer: Any  # CLU metric writer.
  manager: Any  # Orbax CheckpointManager.
  num_classes: int
  run_record: str | None = None  # This start's record, which gets the step's cost.


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       make_reward: Callable | None = None, checkpoint_handler=None,
                       instrument: Callable | None = None):
  """Trains to `config.total_steps`, resuming from `workdir`'s latest checkpoint if any;
  a rollback (pgen.training.recovery) restarts from the newest checkpoint within this call.

  `make_reward(image_shape, num_classes)` gives the reward of a fine-tuning run
  (feedback.weight > 0): `pgen.feedback.acceptance.make_reward(config)`, which the train
  command hands in. `checkpoint_handler` (the Orbax handler checkpoints are written with)
  and `instrument` (LoopParts -> LoopParts, applied at each start before the loop) let a
  caller watch or disturb a run without patching pgen: tests/faults/ pause saves and
  inject failures."""
  config = config_lib.resolve(config)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  dataset = data.open_dataset(config)
  config = models.for_dataset(config, dataset.info.num_classes)
  setup = build(config, mesh, dataset.info.image_shape, dataset.info.num_classes,
                label_sizes=dataset.info.label_sizes)
  is_chief = jax.process_index() == 0
  with run_record.workdir_lock(workdir) if is_chief else contextlib.nullcontext():
    manager = checkpointing.create_manager(workdir, config, item_handler=checkpoint_handler)
    with checkpointing.storage_errors(manager):
      try:
        while True:
          try:
            return _resume_and_train(config, workdir, mesh, dataset, setup, manager,
                                     make_reward, instrument)
          except recovery.RollbackRequested as request:
            _record_rollback(config, workdir, manager, request)
      finally:
        checkpointing.finish(manager)  # The last async save, even after an error.


def _record_rollback(config, workdir: str, manager, request) -> None:
  """Writes the rollback down (or raises when train.max_rollbacks are spent), once the
  checkpoints of the steps before the failure are complete."""
  manager.wait_until_finished()
  restored = manager.latest_step() or 0
  rollbacks = recovery.record_rollback(workdir, config, restored, request,
                                       write=jax.process_index() == 0)
  multihost_utils.sync_global_devices("pgen_rollback_recorded")
  logging.warning("Training failed at %s; rolling back to the checkpoint of step %d and "
                  "resuming at step %d (rollback %d of at most %d, learning rates x%g).",
                  request, restored, request.failed_at, len(rollbacks),
                  config.train.max_rollbacks, rollbacks[-1]["lr_scale"])


def _resume_and_train(config, workdir: str, mesh, dataset, setup: Setup, manager,
                      make_reward=None, instrument=None):
  is_chief = jax.process_index() == 0
  rollbacks = recovery.load_rollbacks(workdir)
  scaled = recovery.scaled_config(config, rollbacks)
  if scaled is not config:  # Learning rates lowered by rollbacks.
    config, setup = scaled, setup.with_optimizers_of(scaled)
  state = checkpointing.restore_latest(manager, setup.abstract_state, move_damaged_to=workdir)
  started_from = None
  if state is None:
    state = setup.init()
    if config.init["from"]:
      state, started_from = init_from.start_from(config, state, setup.image_shape)
  restored_step = int(sharding.to_host(state.step))
  start_step = recovery.resume_step(restored_step, rollbacks)
  if start_step != restored_step:  # The steps that led to a failure are skipped.
    state = state.replace(step=jax.device_put(np.int32(start_step), state.step.sharding))
  record = None
  if is_chief:
    record = run_record.write_run_record(workdir, config, mesh, start_step)
    run_record.write_data_info(workdir, dataset.info)
    if started_from is not None:
      run_record.add_to_record(record, "init_from", started_from)
  logging.info("Start at step %d of %d on %s", start_step, config.total_steps,
               run_record.layout(mesh))
  if start_step >= config.total_steps:
    logging.info("Already trained to step %d; raise --config.total_steps to continue.",
                 start_step)
    return state
  parts = LoopParts(
      train_step=compile_train_step(config, setup, mesh, make_reward),
      batches=dataset.batches(config, mesh, start_step=start_step),
      sample=sampling.make_sampler(setup.generator, config.model.latent_dim, mesh),
      evaluator=(Evaluator(config, dataset.builder) if config.eval.every_steps and is_chief
                 else None),
      writer=_metric_writer(workdir, is_chief),
      manager=manager, num_classes=setup.num_classes, run_record=record)
  if instrument is not None:
    parts = instrument(parts)
  return train_loop(config, workdir, parts, state, start_step)


def _metric_writer(workdir: str, is_chief: bool):
  """TensorBoard and the log on process 0, with every scalar also in metrics.jsonl; the log
  alone on the others."""
  default = metric_writers.create_default_writer(workdir, just_logging=not is_chief)
  if not is_chief:
    return default
  return metric_writers.MultiWriter([default, metrics_file.JsonLinesWriter(workdir)])


def _write_samples(config, workdir: str, parts: LoopParts, step: int, state) -> None:
  """The fixed-latent grid of the EMA generator: a PNG in samples/ and an image summary."""
  images = parts.sample(state.ema_g_params, state.g_batch_stats, sampling.grid_key(config.seed),
                        config.num_sample_images,
                        sampling.balanced_labels(config.num_sample_images, parts.num_classes))
  if jax.process_index() == 0:
    grid = pixels.image_grid(images)
    pixels.save_png(grid, os.path.join(workdir_files.samples_dir(workdir), f"step_{step:08d}.png"))
    parts.writer.write_images(step, {"samples": grid[None]})


def _evaluate(config, parts: LoopParts, step: int, state, best_fd: float | None):
  """Metrics of EMA samples to TensorBoard; returns (the Frechet distance, why it counts as
  a collapse or None) on every process."""
  labels = sampling.balanced_labels(config.eval.num_samples, parts.num_classes)
  key = jax.random.fold_in(sampling.grid_key(config.seed), 1)
  images = parts.sample(state.ema_g_params, state.g_batch_stats, key, config.eval.num_samples,
                        labels)
  fd, collapse = 0.0, None
  if parts.evaluator is not None:
    result = parts.evaluator(images, labels)
    parts.writer.write_scalars(step, {f"eval/{k}": v for k, v in result.items()
                                      if isinstance(v, (int, float))})
    fd = result["fd"]
    if config.train.on_collapse != "ignore":
      collapse = recovery.collapse_reason(config, result, best_fd)
  fd, collapsed = multihost_utils.broadcast_one_to_all(
      (np.float64(fd), np.int32(collapse is not None)))
  if collapsed and collapse is None:
    collapse = "process 0's evaluation saw a collapse"
  return float(fd), collapse


def _on_collapse(config, manager, step: int, reason: str):
  """The exception train.on_collapse asks for: a rollback request or a CollapseError."""
  if config.train.on_collapse == "rollback":
    return recovery.RollbackRequested(step, reason)
  return recovery.CollapseError(
      f"Training collapsed at step {step}: {reason}. It was not checkpointed; checkpoints "
      f"up to step {manager.latest_step()} are intact. Lower the learning rates, or set "
      "train.on_collapse='rollback' to restore the newest checkpoint and go on.")


def _compile_and_measure(config, parts: LoopParts, state, batch) -> Throughput:
  """Compiles the train step's programs ahead of time for `batch`; returns a Throughput
  that knows their FLOPs. The cost goes to the log and the run record."""
  cost = parts.train_step.compile(state, batch)
  device_kind = jax.devices()[0].device_kind
  peak = performance.peak_tflops(device_kind, config.model.dtype, config.peak_tflops)
  memory = cost.peak_memory_bytes
  logging.info("Train step compiled in %.1fs: %s GFLOP per step and device, %s MiB of memory "
               "at most (XLA's analyses); %s peak: %s TFLOP/s.", cost.compile_s,
               f"{cost.flops_per_step / 1e9:.2f}" if cost.flops_per_step else "unknown",
               f"{memory / 2**20:.0f}" if memory else "unknown", device_kind, peak or "unknown")
  if parts.run_record:
    run_record.add_to_record(parts.run_record, "train_step", {
        **cost.record(), "device_kind": device_kind, "peak_tflops": peak})
  return Throughput(images_per_step=data.images_per_step(config),
                    flops_per_step=cost.flops_per_step, peak_tflops=peak)


def train_loop(config: ml_collections.ConfigDict, workdir: str, parts: LoopParts, state,
               start_step: int):
  """Steps from `start_step` to `config.total_steps` (or a stop request); returns the state."""
  os.makedirs(workdir_files.samples_dir(workdir), exist_ok=True)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=config.total_steps, every_steps=config.log_every_steps, every_secs=None)
  hooks = [report_progress]
  if jax.process_index() == 0 and config.profile_steps > 0:
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=config.profile_steps,
                                          first_profile=start_step + 10, every_secs=None))
  try:
    return _run_steps(config, workdir, parts, state, start_step, hooks, report_progress)
  except NonFiniteLossError as error:
    request = recovery.nonfinite_request(config, error)
    if request is None:
      raise
    raise request from error


def _run_steps(config, workdir: str, parts: LoopParts, state, start_step: int, hooks,
               report_progress):
  # The best FD of earlier starts of this run, from its checkpoints' saved metrics.
  window, best_fd = MetricWindow(), checkpointing.best_fd(parts.manager)
  first_batch = next(parts.batches)
  throughput = _compile_and_measure(config, parts, state, first_batch)
  batches = itertools.chain([first_batch], parts.batches)
  with metric_writers.ensure_flushes(parts.writer), StopRequests() as stop_requests:
    for step in range(start_step + 1, config.total_steps + 1):
      batch = throughput.next_batch(batches)
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        state, metrics = parts.train_step.at(step - 1)(state, batch)
      window.add(step, metrics)
      for hook in hooks:
        hook(step)
      stop = stop_requests.requested(step)
      todo = due_actions(step, config, last=step == config.total_steps, stopping=bool(stop))
      if todo.log:
        parts.writer.write_scalars(step, {
            **window.mean_and_clear(), **throughput.scalars_and_restart(),
            "g_learning_rate": config.optim.g_learning_rate,
            "d_learning_rate": config.optim.d_learning_rate})
      with throughput.paused():
        if todo.samples:
          with report_progress.timed("samples"):
            _write_samples(config, workdir, parts, step, state)
        eval_metrics, new_best = None, False
        if todo.evaluate:
          window.check_finite()
          with report_progress.timed("eval"):
            fd, collapse = _evaluate(config, parts, step, state, best_fd)
          if collapse:
            raise _on_collapse(config, parts.manager, step, collapse)
          eval_metrics, new_best = {"fd": fd}, best_fd is None or fd < best_fd
          best_fd = fd if new_best else best_fd
        # The best evaluated state is checkpointed whenever it is evaluated, so the keep-best
        # policy sees every evaluation, whatever the two intervals.
        if todo.checkpoint or new_best:
          window.check_finite()  # Never checkpoint a state that came from a non-finite step.
          with report_progress.timed("checkpoint"):
            checkpointing.save(parts.manager, step, state, metrics=eval_metrics)
      if stop:
        logging.warning("Got %s: saved the checkpoint of step %d and stopped. Run the same "
                        "command again to resume.", stop, step)
        break
  return state
