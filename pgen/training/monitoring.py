"""What the training loop watches between steps: its metrics (and that they stay finite),
its throughput, and requests to stop.

    window = MetricWindow();  window.add(step, metrics);  means = window.mean_and_clear()
    throughput = Throughput(images_per_step=64)
    batch = throughput.next_batch(batches)        # input wait is timed
    with throughput.paused(): save_checkpoint()   # not counted as training time
    with StopRequests() as stop: ... stop.requested(step)   # "SIGTERM", "SIGINT" or None
"""

import contextlib
import signal
import threading
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from pgen.core import sharding
from pgen.errors import PgenError
from pgen.training import performance


class NonFiniteLossError(PgenError, FloatingPointError):
  """A loss or gradient norm became NaN or infinite: at `step`, in the metrics `names`."""

  def __init__(self, message: str, step: int, names=()):
    super().__init__(message)
    self.step, self.names = step, tuple(names)


class MetricWindow:
  """Step metrics since the last report, kept on the device until they are needed."""

  def __init__(self):
    self._pending = []  # (step, device metrics)
    self._host = []  # (step, host metrics), checked finite

  def add(self, step: int, metrics) -> None:
    self._pending.append((step, metrics))

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
            "the learning rates or add regularization (or set train.on_nonfinite='rollback'), "
            "then resume from the last checkpoint.", step=step, names=bad)
      self._host.append((step, values))
    self._pending = []

  def mean_and_clear(self) -> dict:
    self.check_finite()
    keys = self._host[0][1].keys() if self._host else ()
    means = {k: float(np.mean([m[k] for _, m in self._host])) for k in keys}
    self._host = []
    return means


class Throughput:
  """Training images per second, the share of time spent waiting for input, and (given the
  step's FLOPs) TFLOP/s per device and MFU, over the steps since the last report; time
  inside `paused()` (samples, eval, checkpoints) is not training time."""

  def __init__(self, images_per_step: int, flops_per_step: float | None = None,
               peak_tflops: float | None = None):
    self._images_per_step = images_per_step
    self._flops_per_step, self._peak_tflops = flops_per_step, peak_tflops
    self._restart()

  def _restart(self) -> None:
    self._start, self._steps, self._input_wait_s, self._paused_s = time.time(), 0, 0.0, 0.0

  def next_batch(self, batches):
    t = time.time()
    batch = next(batches)
    self._input_wait_s += time.time() - t
    self._steps += 1
    return batch

  @contextlib.contextmanager
  def paused(self):
    t = time.time()
    try:
      yield
    finally:
      self._paused_s += time.time() - t

  def scalars_and_restart(self) -> dict:
    training_s = time.time() - self._start - self._paused_s
    scalars = {"images_per_s": self._steps * self._images_per_step / training_s,
               "input_wait_fraction": self._input_wait_s / training_s}
    tflops, mfu = performance.utilization(self._flops_per_step, training_s / self._steps,
                                          self._peak_tflops)
    scalars.update({name: value for name, value in (("tflops_per_device", tflops), ("mfu", mfu))
                    if value is not None})
    peak_bytes = performance.device_peak_memory_bytes()
    if peak_bytes:
      scalars["peak_device_memory_gib"] = peak_bytes / 2**30
    self._restart()
    return scalars


class StopRequests:
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
