r"""A training run to kill anywhere: the smoke config made longer, that prints what it is
doing and pauses inside its checkpoint saves, so that a parent process can SIGKILL it at
a chosen moment (tests/faults/test_kill_anywhere.py).

    python tests/faults/kill_runner.py WORKDIR DATA_DIR TOTAL_STEPS [PAUSE_S]

Prints `EVENT <kind> <step>` lines, flushed: `start` (the step it resumes from), `step` (a
step finished: the loop is between steps), `write` (a checkpoint's arrays are being
written, paused PAUSE_S in Orbax's background thread), `finalize` (written, not yet renamed
into place: paused), `samples` and `evaluate` (paused inside the sample grid and the
evaluation), `done`. The pauses go through pgen's own seams (train_and_evaluate's
checkpoint_handler and instrument), not by patching pgen.
"""

import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402

from pgen.configs import fashion_mnist_dcgan  # noqa: E402
from pgen.training.loop import train_and_evaluate  # noqa: E402


def make_config(data_dir: str, total_steps: int):
  """The smoke config with ADA's probability moving, checkpoints every 4 steps, samples
  every 5 and evaluation every 6: every kind of moment comes round often."""
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.data_dir, config.data.download = data_dir, False
  config.data.split = "train[:80]"  # 5 batches an epoch: kills land in different epochs.
  config.total_steps = total_steps
  config.checkpoint_every_steps, config.sample_every_steps = 4, 5
  config.eval.every_steps, config.eval.num_samples, config.eval.num_reference = 6, 100, 200
  config.log_every_steps, config.keep_checkpoints = 3, 2
  config.augment.policy, config.augment.probability = ("translation",), 0.5
  config.augment.ada_target, config.augment.ada_interval = 0.6, 1
  return config


def emit(kind: str, step) -> None:
  print(f"EVENT {kind} {step}", flush=True)


def _step_of(directory) -> int:
  """The step of a checkpoint directory being written (checkpoints/<step>[.tmp suffix]/...)."""
  match = re.search(r"/checkpoints/(\d+)", str(directory))
  if match is None:
    raise ValueError(f"Not a checkpoint directory of pgen's: {directory}")
  return int(match.group(1))


class _Pause:
  """A future of Orbax's commit: announces the write and holds it for `seconds`."""

  def __init__(self, step: int, seconds: float):
    self._step, self._seconds = step, seconds

  def result(self, timeout=None):
    del timeout
    emit("write", self._step)
    time.sleep(self._seconds)


class PausingHandler(ocp.StandardCheckpointHandler):
  """Orbax's handler with a pause while the arrays are written and one before the directory
  is finalized and renamed into place."""

  def __init__(self, pause_s: float = 0.0):
    super().__init__()
    self._pause_s = pause_s

  async def async_save(self, directory, *args, **kwargs):
    futures = await super().async_save(directory, *args, **kwargs)
    return [*(futures or []), _Pause(_step_of(directory), self._pause_s)]

  def finalize(self, directory):
    emit("finalize", _step_of(directory))
    time.sleep(self._pause_s)
    super().finalize(directory)


class _AnnouncedSteps:
  """The loop's TrainStep, announcing the start step and every finished step."""

  def __init__(self, train_step):
    self._train_step = train_step

  def compile(self, state, batch):
    emit("start", int(jax.device_get(state.step)))
    return self._train_step.compile(state, batch)

  def at(self, step: int):
    program = self._train_step.at(step)

    def run(state, batch):
      state, metrics = program(state, batch)
      jax.block_until_ready(metrics)
      emit("step", step + 1)
      return state, metrics

    return run


def _paused(function, kind: str, pause_s: float):
  def call(*args, **kwargs):
    emit(kind, "-")
    time.sleep(pause_s)
    return function(*args, **kwargs)
  return call


def main(workdir: str, data_dir: str, total_steps: str, pause_s: str = "0.3"):
  pause = float(pause_s)
  # The manager finds its handler by the type of the save and restore arguments: this
  # process (only) writes pgen's StandardSave/StandardRestore with the pausing handler.
  ocp.args.register_with_handler(PausingHandler, for_save=True)(ocp.args.StandardSave)
  ocp.args.register_with_handler(PausingHandler, for_restore=True)(ocp.args.StandardRestore)

  def instrument(parts):
    parts.train_step = _AnnouncedSteps(parts.train_step)
    parts.sample = _paused(parts.sample, "samples", pause)
    parts.evaluator = _paused(parts.evaluator, "evaluate", pause)
    return parts

  state = train_and_evaluate(make_config(data_dir, int(total_steps)), workdir,
                             checkpoint_handler=PausingHandler(pause), instrument=instrument)
  emit("done", int(jax.device_get(state.step)))


if __name__ == "__main__":
  main(*sys.argv[1:])
