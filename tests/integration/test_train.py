"""train_and_evaluate end to end: outputs, generate, exact resume, and its failure modes."""

import glob
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from pgen import config as config_lib
from pgen.core import sharding
from pgen.gan import losses
from pgen.gan.state import build
from pgen.generation.generate import generate
from pgen.training import checkpointing, run_record
from pgen.training.loop import DueActions, due_actions, train_and_evaluate
from pgen.training.monitoring import NonFiniteLossError

V1_WORKDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                          "v1_workdir")


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_smoke_run_writes_checkpoints_events_samples_and_generate_reads_them(
    smoke_run, tmp_path):
  workdir = smoke_run
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  pngs = sorted(os.listdir(os.path.join(workdir, "samples")))
  assert pngs == ["step_00000003.png", "step_00000006.png"]
  grid = np.asarray(Image.open(os.path.join(workdir, "samples", pngs[-1])))
  assert grid.ndim == 2 and grid.shape[0] == grid.shape[1] > 64  # 4x4 tiles of 32 px, enlarged.

  record = json.load(open(os.path.join(workdir, "run_record", "start_000.json")))
  assert record["start_step"] == 0 and record["config"]["batch_size"] == 16
  assert record["layout"]["global_device_count"] == jax.device_count()
  assert record["versions"]["jax"] == jax.__version__

  [grid_path] = generate(workdir, num=10, out=str(tmp_path / "grid.png"))
  assert Image.open(grid_path).size[0] > 32
  npz = np.load(generate(workdir, num=7, out=str(tmp_path / "s.npz"))[0])
  assert npz["images"].shape == (7, 32, 32, 1) and npz["images"].dtype == np.uint8
  again = np.load(generate(workdir, num=7, out=str(tmp_path / "again.npz"))[0])
  np.testing.assert_array_equal(npz["images"], again["images"])
  assert npz["images"].std() > 0


def _with_r3gan_objective_and_schedules(config):
  """The relativistic loss with R1 and R2 every step, and every schedule moving: the
  optimizers hold their learning rate and beta2 in their state."""
  config.loss.name = "relativistic_pairing"
  config.loss.r1_weight = config.loss.r2_weight = 0.1
  config.loss.r1_every = 1
  config.augment.policy = "translation"
  config.schedule.update(images=100, learning_rate_end=0.25, gamma_end=0.1, beta2_end=0.99,
                         ema_from_zero=True, augment_from_zero=True)


# Exact resume is checked bit for bit in the fast suite by test_folder_resume.py, and the
# schedules' dependence on the step alone by unit/gan/test_schedules.py.
@pytest.mark.slow
@pytest.mark.parametrize("objective", ["default", "r3gan_schedules"])
def test_stop_and_resume_equals_straight_through(smoke_config, tmp_path, objective):
  smoke_config.data.split = "train[:40]"  # Two batches per epoch: resume crosses epochs.
  if objective == "r3gan_schedules":
    _with_r3gan_objective_and_schedules(smoke_config)
  straight = train_and_evaluate(smoke_config, str(tmp_path / "straight"))

  resumed_dir = str(tmp_path / "resumed")
  first_half = smoke_config.copy_and_resolve_references()
  first_half.total_steps = 3
  assert int(train_and_evaluate(first_half, resumed_dir).step) == 3
  resumed = train_and_evaluate(smoke_config, resumed_dir)

  assert int(resumed.step) == int(straight.step) == 6
  for a, b in zip(_leaves(straight), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  starts = sorted(os.listdir(os.path.join(resumed_dir, "run_record")))
  assert starts == ["start_000.json", "start_001.json"]
  assert json.load(open(os.path.join(resumed_dir, "run_record", starts[1])))["start_step"] == 3


def test_raising_total_steps_continues_and_equal_total_steps_does_nothing(smoke_config,
                                                                         smoke_run_copy):
  workdir = smoke_run_copy
  again = train_and_evaluate(smoke_config, workdir)
  assert int(again.step) == 6
  smoke_config.total_steps = 9
  assert int(train_and_evaluate(smoke_config, workdir).step) == 9
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6", "9"]


# The fast suite keeps this guarantee in faults/test_rollback.py (the default policy stops,
# naming the step, and keeps only checkpoints from before it).
@pytest.mark.slow
def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    smoke_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  smoke_config.total_steps = 3
  train_and_evaluate(smoke_config, workdir)

  monkeypatch.setitem(losses.LOSSES, "nonsaturating", (
      losses.nonsaturating_d_loss, lambda logits, logits_real: jnp.mean(logits) * jnp.nan))
  smoke_config.total_steps = 6
  with pytest.raises(NonFiniteLossError, match="g_loss.* at step 4"):
    train_and_evaluate(smoke_config, workdir)

  manager = checkpointing.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [3]
  setup = build(smoke_config, sharding.make_mesh(), (32, 32, 1))
  restored = checkpointing.restore_latest(manager, setup.abstract_state)
  assert int(restored.step) == 3
  assert all(np.isfinite(x).all() for x in _leaves(restored))


def test_second_run_in_the_same_workdir_is_refused(smoke_config, smoke_run_copy):
  workdir = smoke_run_copy
  with run_record.workdir_lock(workdir):
    with pytest.raises(run_record.WorkdirBusyError, match="Another pgen run .* is using workdir"):
      train_and_evaluate(smoke_config, workdir)
  assert int(train_and_evaluate(smoke_config, workdir).step) == 6  # Free again once released.


def test_generate_on_a_directory_that_is_not_a_run_explains(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a pgen training workdir"):
    generate(str(tmp_path), num=4, out=str(tmp_path / "x.png"))


def test_resuming_with_an_incompatible_model_config_explains(smoke_config, smoke_run_copy):
  smoke_config.model.g_width = 12
  smoke_config.total_steps = 9
  with pytest.raises(ValueError, match="does not fit the state of this config"):
    train_and_evaluate(smoke_config, smoke_run_copy)


def test_a_run_of_pgen_before_config_versions_generates_the_same_and_trains_on(
    fmnist_data_dir, tmp_path):
  """tests/data/v1_workdir: the smoke config trained 3 steps by pgen before the config
  layer (its config.json has no config_version), with 8 images it generated (seed 3)."""
  workdir = str(tmp_path / "run")
  shutil.copytree(V1_WORKDIR, workdir)
  [out] = generate(workdir, num=8, out=str(tmp_path / "x.npz"), seed=3)
  images = np.load(out)["images"].astype(int)
  expected = np.load(os.path.join(V1_WORKDIR, "generate_seed3_num8.npz"))["images"].astype(int)
  assert np.abs(images - expected).max() <= 1  # Within one grey level (other CPUs round).

  config = config_lib.from_workdir(workdir)
  config.data.data_dir = fmnist_data_dir
  config.total_steps = 6
  assert int(train_and_evaluate(config, workdir).step) == 6
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]


def test_periodic_actions_are_due_on_their_interval_and_all_at_the_last_step(smoke_config):
  smoke_config.log_every_steps, smoke_config.sample_every_steps = 10, 100
  smoke_config.eval.every_steps, smoke_config.checkpoint_every_steps = 50, 100
  config = config_lib.resolve(smoke_config)
  due = lambda step, **kw: due_actions(step, config, **{"last": False, "stopping": False, **kw})
  assert due(7) == DueActions(log=False, samples=False, evaluate=False, checkpoint=False)
  assert due(50) == DueActions(log=True, samples=False, evaluate=True, checkpoint=False)
  assert due(100) == DueActions(log=True, samples=True, evaluate=True, checkpoint=True)
  assert due(123, last=True) == DueActions(log=True, samples=True, evaluate=True, checkpoint=True)
  assert due(7, stopping=True) == DueActions(log=False, samples=False, evaluate=False,
                                              checkpoint=True)
  smoke_config.eval.every_steps = 0
  assert not due_actions(123, config_lib.resolve(smoke_config), last=True, stopping=False).evaluate


def test_every_logged_scalar_is_in_metrics_jsonl(smoke_run):
  """The smoke run's log steps (2, 4, 6) in metrics.jsonl, the file compare reads."""
  from pgen.training import metrics_file
  steps = metrics_file.read_scalars(smoke_run)
  assert sorted(steps) == [2, 4, 6]
  assert {"g_loss", "d_loss", "images_per_s", "time"} <= set(steps[6])
