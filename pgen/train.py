"""The training loop: `train_and_evaluate(config, workdir)`.

    from configs.fashion_mnist_dcgan import get_config
    state = train_and_evaluate(get_config(), "runs/fmnist")

Phases: resolve the dataset and models, create (or restore) the sharded state, then loop
over jitted train steps; between steps, one place decides the periodic actions (metrics,
sample grids, checkpoints, progress). Running it again on the same workdir resumes from
the latest checkpoint and continues to `config.total_steps`.
"""

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils

from pgen import checkpointing, run_record, samples, sharding
from pgen.data import pipeline, sources
from pgen.models import build_models
from pgen.state import make_optimizers, state_factory
from pgen.train_step import jit_train_step, make_train_step

REQUIRED_KEYS = ("seed", "total_steps", "batch_size", "data.name", "data.resolution",
                 "checkpoint_every_steps", "log_every_steps", "sample_every_steps")


class NonFiniteLossError(FloatingPointError):
  """A loss or gradient norm became NaN or infinite."""


def check_config(config: ml_collections.ConfigDict) -> None:
  for key in REQUIRED_KEYS:
    node = config
    for part in key.split("."):
      if part not in node:
        raise ValueError(f"The config has no `{key}`; every pgen config needs {REQUIRED_KEYS}.")
      node = node[part]
  for key in ("total_steps", "batch_size", "checkpoint_every_steps", "log_every_steps",
              "sample_every_steps", "keep_checkpoints"):
    if config[key] <= 0:
      raise ValueError(f"{key}={config[key]} must be positive.")


@dataclasses.dataclass(frozen=True)
class Setup:
  """Models, optimizers and the abstract state of a config: shared by train and generate."""
  generator: Any
  discriminator: Any
  g_tx: Any
  d_tx: Any
  abstract_state: Any
  init: Callable[[], Any]  # Creates the initial state in its shardings.
  num_classes: int  # Classes the models are conditioned on; 0 when unconditional.


def build(config: ml_collections.ConfigDict, mesh, image_shape, num_classes: int = 0) -> Setup:
  """`num_classes`: the dataset's; used only when `model.conditioning` is not "none"."""
  num_classes = num_classes if config.model.conditioning != "none" else 0
  generator, discriminator = build_models(config, image_shape, num_classes)
  g_tx, d_tx = make_optimizers(config.optim)
  abstract_state, init = state_factory(config, generator, discriminator, g_tx, d_tx, mesh,
                                       image_shape, num_classes)
  return Setup(generator, discriminator, g_tx, d_tx, abstract_state, init, num_classes)


def compile_train_step(config: ml_collections.ConfigDict, setup: Setup, mesh):
  """The jitted train step for `setup` (XLA compiles it on the first call)."""
  step_fn = make_train_step(config, setup.generator, setup.discriminator, setup.g_tx, setup.d_tx,
                            mesh, setup.num_classes)
  return jit_train_step(step_fn, setup.abstract_state, mesh)


def input_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config the input pipeline reads: one step consumes `optim.d_steps` real batches."""
  if config.optim.d_steps == 1:
    return config
  data_config = ml_collections.ConfigDict(config.to_dict())
  data_config.batch_size = config.batch_size * config.optim.d_steps
  return data_config


class _MetricWindow:
  """Step metrics since the last report, kept on the device until they are needed."""

  def __init__(self):
    self._pending = []  # (step, device metrics)
    self._host = []  # (step, host metrics), checked finite

  def add(self, step: int, metrics) -> None:
    self._pending.append((step, metrics))

  def __len__(self) -> int:
    return len(self._pending) + len(self._host)

  def check_finite(self) -> None:
    """Fetches pending metrics; raises naming the first step whose values are not finite."""
    for step, metrics in self._pending:
      values = {k: float(sharding.to_host(v)) for k, v in metrics.items()}
      bad = [k for k, v in values.items() if not np.isfinite(v)]
      if bad:
        first = self._host[0][0] if self._host else step
        raise NonFiniteLossError(
            f"Non-finite {', '.join(bad)} at step {step} (first bad step in the window "
            f"{first}..{step}): {values}. Nothing from this step on was checkpointed. Lower "
            "the learning rates or add regularization, then resume from the last checkpoint.")
      self._host.append((step, values))
    self._pending = []

  def mean_and_clear(self) -> dict:
    self.check_finite()
    keys = self._host[0][1].keys() if self._host else ()
    means = {k: float(np.mean([m[k] for _, m in self._host])) for k in keys}
    self._host = []
    return means


class _StopRequests:
  """SIGTERM or SIGINT asks the run to checkpoint and stop at a step all processes agree on.

  One process: a Python signal handler sets a flag. Several: JAX's preemption service
  (started by jax.distributed) catches SIGTERM on any process and every process's
  `reached_preemption_sync_point` turns true at the same step.
  """

  def __init__(self):
    self._signal = None
    self._previous = {}

  def __enter__(self):
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self._signal = signal.Signals(signum).name

  def requested(self, step: int) -> str | None:
    """The reason to stop after `step`, or None."""
    if jax.process_count() > 1:
      return "SIGTERM" if multihost_utils.reached_preemption_sync_point(step) else None
    return self._signal

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains to `config.total_steps`, resuming from `workdir`'s latest checkpoint if any."""
  check_config(config)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  builder = sources.get_builder(config.data)
  info = pipeline.input_info(builder, config)
  setup = build(config, mesh, info.image_shape, info.num_classes)
  is_chief = jax.process_index() == 0

  with run_record.workdir_lock(workdir) if is_chief else contextlib.nullcontext():
    manager = checkpointing.create_manager(workdir, config)
    state = checkpointing.restore_latest(manager, setup.abstract_state)
    if state is None:
      state = setup.init()
    start_step = int(sharding.to_host(state.step))
    if is_chief:
      run_record.write_run_record(workdir, config, mesh, start_step)
      with open(os.path.join(workdir, "data_info.json"), "w") as f:
        json.dump({"image_shape": info.image_shape, "class_names": info.class_names}, f)
    logging.info("Start at step %d of %d on %s", start_step, config.total_steps,
                 run_record.layout(mesh))
    if start_step >= config.total_steps:
      logging.info("Already trained to step %d; raise --config.total_steps to continue.",
                   start_step)
      manager.close()
      return state
    try:
      state = _train_loop(config, workdir, mesh, builder, setup, state, manager, start_step)
    finally:
      manager.wait_until_finished()
      manager.close()
  return state


def _train_loop(config, workdir, mesh, builder, setup: Setup, state, manager, start_step):
  is_chief = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief)
  train_step = compile_train_step(config, setup, mesh)
  sample = samples.make_sampler(setup.generator, config.model.latent_dim, mesh)
  batches = pipeline.train_batches(builder, input_config(config), mesh, start_step=start_step)
  sample_dir = os.path.join(workdir, "samples")
  os.makedirs(sample_dir, exist_ok=True)

  report_progress = periodic_actions.ReportProgress(
      num_train_steps=config.total_steps, writer=writer, every_steps=config.log_every_steps,
      every_secs=None)
  hooks = [report_progress]
  if is_chief and config.profile_steps > 0:
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=config.profile_steps,
                                          first_profile=start_step + 10, every_secs=None))
  window = _MetricWindow()

  evaluator = None
  if config.eval.every_steps > 0 and is_chief:
    from pgen.evaluation.scoring import Evaluator  # Loads the feature extractor.
    evaluator = Evaluator(config, builder)
  eval_key = jax.random.fold_in(samples.grid_key(config.seed), 1)

  def evaluate(step, state):
    """Metrics of EMA samples to TensorBoard; returns the Frechet distance on every process."""
    with report_progress.timed("eval"):
      labels = samples.balanced_labels(config.eval.num_samples, setup.num_classes)
      images = sample(state.ema_g_params, state.g_batch_stats, eval_key,
                      config.eval.num_samples, labels)
      fd = 0.0
      if is_chief:
        result = evaluator(images, labels)
        writer.write_scalars(step, {f"eval/{k}": v for k, v in result.items()
                                    if isinstance(v, (int, float))})
        fd = result["fd"]
      return float(multihost_utils.broadcast_one_to_all(np.float64(fd)))

  def write_samples(step, state):
    with report_progress.timed("samples"):
      images = sample(state.ema_g_params, state.g_batch_stats, samples.grid_key(config.seed),
                      config.num_sample_images,
                      samples.balanced_labels(config.num_sample_images, setup.num_classes))
      if is_chief:
        grid = samples.image_grid(images)
        samples.save_png(grid, os.path.join(sample_dir, f"step_{step:08d}.png"))
        writer.write_images(step, {"samples": grid[None]})

  window_start, input_wait_s = time.time(), 0.0
  with metric_writers.ensure_flushes(writer), _StopRequests() as stop_requests:
    for step in range(start_step + 1, config.total_steps + 1):
      t = time.time()
      batch = next(batches)
      input_wait_s += time.time() - t
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        state, metrics = train_step(state, batch)
      window.add(step, metrics)
      if step == start_step + 1:
        jax.block_until_ready(metrics)
        logging.info("First step (compile included) done %.1fs after the loop started.",
                     time.time() - window_start)
      for hook in hooks:
        hook(step)

      last = step == config.total_steps
      stop = stop_requests.requested(step)
      if step % config.log_every_steps == 0 or last:
        steps_in_window = len(window)
        scalars = window.mean_and_clear()
        elapsed = time.time() - window_start
        # Real images the discriminator saw per second of training.
        scalars["images_per_s"] = (steps_in_window * config.batch_size * config.optim.d_steps
                                   / elapsed)
        scalars["input_wait_fraction"] = input_wait_s / elapsed
        scalars["g_learning_rate"] = config.optim.g_learning_rate
        scalars["d_learning_rate"] = config.optim.d_learning_rate
        writer.write_scalars(step, scalars)
        window_start, input_wait_s = time.time(), 0.0
      actions_start = time.time()
      if step % config.sample_every_steps == 0 or last:
        write_samples(step, state)
      eval_metrics = None
      if config.eval.every_steps > 0 and (step % config.eval.every_steps == 0 or last):
        window.check_finite()
        eval_metrics = {"fd": evaluate(step, state)}
      if manager.should_save(step) or last or stop:
        window.check_finite()  # Never checkpoint a state that came from a non-finite step.
        with report_progress.timed("checkpoint"):
          checkpointing.save(manager, step, state, force=True, metrics=eval_metrics)
      window_start += time.time() - actions_start  # images/s counts training time only.
      if stop:
        logging.warning("Got %s: saved the checkpoint of step %d and stopped. Run the same "
                        "command again to resume.", stop, step)
        break
  return state
