"""train.on_nonfinite="rollback" and train.on_collapse: injected NaNs and a forced collapse
roll back to the newest checkpoint and resume at the failed step; the rollbacks are
recorded, resume exactly after a relaunch, scale the learning rates, and stop with a
clear error once train.max_rollbacks are spent."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen.training import recovery
from pgen.training.loop import train_and_evaluate
from pgen.training.monitoring import NonFiniteLossError

pytestmark = pytest.mark.usefixtures("fast_compile")  # Runs are compared with each other.


class _NaNAt:
  """The loop's TrainStep, with a NaN in g_loss at `step` (once), or at every step from it
  on (`persist`)."""

  def __init__(self, train_step, step: int, fired: list, persist: bool):
    self._train_step, self._step, self._fired, self._persist = train_step, step, fired, persist

  def compile(self, state, batch):
    return self._train_step.compile(state, batch)

  def at(self, step: int):
    program = self._train_step.at(step)
    due = step + 1 >= self._step if self._persist else step + 1 == self._step
    if not due or (self._fired and not self._persist):
      return program

    def run(state, batch):
      self._fired.append(step + 1)
      state, metrics = program(state, batch)
      return state, {**metrics, "g_loss": metrics["g_loss"] * jnp.nan}

    return run


def nan_at(step: int, persist: bool = False):
  """An instrument: NaN at `step` the first time it runs (a rollback skips it after), or at
  every step from `step` on."""
  fired = []

  def instrument(parts):
    parts.train_step = _NaNAt(parts.train_step, step, fired, persist)
    return parts

  return instrument


def _rollback_config(config, **train):
  config.total_steps, config.checkpoint_every_steps, config.log_every_steps = 9, 3, 1
  config.train.on_nonfinite = "rollback"
  for key, value in train.items():
    config.train[key] = value
  return config


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_a_nan_rolls_back_to_the_newest_checkpoint_and_resumes_past_the_failed_step(
    smoke_config, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(_rollback_config(smoke_config), workdir, instrument=nan_at(5))
  assert int(state.step) == 9
  assert all(np.isfinite(x).all() for x in _leaves(state))
  [rollback] = recovery.load_rollbacks(workdir)
  assert (rollback["failed_at"], rollback["restored_step"]) == (5, 3)
  assert "non-finite g_loss" in rollback["reason"]
  assert "rolling back to the checkpoint of step 3 and resuming at step 5" in caplog.text
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6", "9"]


def test_a_rolled_back_run_relaunched_later_equals_one_that_went_straight_on(
    smoke_config, tmp_path):
  straight = train_and_evaluate(_rollback_config(smoke_config.copy_and_resolve_references()),
                                str(tmp_path / "straight"), instrument=nan_at(5))
  workdir = str(tmp_path / "split")
  first = _rollback_config(smoke_config.copy_and_resolve_references())
  first.total_steps = 7
  train_and_evaluate(first, workdir, instrument=nan_at(5))  # Rolls back, stops at 7.
  resumed = train_and_evaluate(_rollback_config(smoke_config), workdir)
  for a, b in zip(_leaves(straight), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)


def test_rollbacks_scale_the_learning_rates_and_stop_when_spent(smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  config = _rollback_config(smoke_config, max_rollbacks=2, rollback_lr_scale=0.5)
  with pytest.raises(recovery.TooManyRollbacksError,
                     match=r"failed at step 7 .* after train.max_rollbacks=2 rollbacks "
                           r"\(step 5 \(non-finite g_loss\); step 6 .*checkpoints are intact"):
    train_and_evaluate(config, workdir, instrument=nan_at(5, persist=True))
  assert [r["lr_scale"] for r in recovery.load_rollbacks(workdir)] == [0.5, 0.25]
  records = sorted(os.listdir(os.path.join(workdir, "run_record")))
  rates = [json.load(open(os.path.join(workdir, "run_record", name)))["config"]["optim"]
           ["g_learning_rate"] for name in records]
  assert rates == pytest.approx([2e-4, 1e-4, 5e-5])
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3"]


def test_the_default_policy_still_stops_naming_the_step(smoke_config, tmp_path):
  config = _rollback_config(smoke_config)
  config.train.on_nonfinite = "stop"
  workdir = str(tmp_path / "run")
  with pytest.raises(NonFiniteLossError, match="g_loss at step 5.*on_nonfinite='rollback'"):
    train_and_evaluate(config, workdir, instrument=nan_at(5))
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["3"]  # The last good one.


def _collapse_at(call: int, **changes):
  """An instrument whose evaluator reports a healthy class histogram (the smoke generator's
  real one is collapsed: it trains for seconds), and `changes` at its `call`-th call."""
  calls = []

  def instrument(parts):
    evaluator = parts.evaluator

    def evaluate(images, labels=None):
      calls.append(1)
      result = {**evaluator(images, labels), "class_entropy": 2.3}
      if len(calls) == call:
        result = {**result, **{k: v(result) for k, v in changes.items()}}
      return result

    parts.evaluator = evaluate
    return parts

  return instrument


@pytest.fixture
def evaluating_config(smoke_config):
  config = _rollback_config(smoke_config)
  config.eval.every_steps = 3
  return config


def test_a_collapsed_class_histogram_rolls_back(evaluating_config, tmp_path):
  evaluating_config.train.on_collapse = "rollback"
  evaluating_config.train.collapse_min_class_entropy = 1.0
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(evaluating_config, workdir,
                             instrument=_collapse_at(2, class_entropy=lambda r: 0.1))
  assert int(state.step) == 9
  [rollback] = recovery.load_rollbacks(workdir)
  assert (rollback["failed_at"], rollback["restored_step"]) == (6, 3)
  assert "entropy 0.100 fell below train.collapse_min_class_entropy=1.0" in rollback["reason"]


def test_an_fd_jump_stops_the_run_without_checkpointing_it(evaluating_config, tmp_path):
  evaluating_config.train.on_collapse = "stop"
  evaluating_config.train.collapse_fd_ratio = 2.0
  workdir = str(tmp_path / "run")
  with pytest.raises(recovery.CollapseError,
                     match=r"collapsed at step 6: FD .* rose past train.collapse_fd_ratio=2.0 "
                           r"times this run's best .*checkpoints up to step 3 are intact"):
    train_and_evaluate(evaluating_config, workdir,
                       instrument=_collapse_at(2, fd=lambda r: r["fd"] * 10))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3"]
