"""train_and_evaluate end to end: outputs, generate, exact resume, and its failure modes."""

import glob
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from pgen import checkpointing, losses, run_record, sharding
from pgen.generate import generate
from pgen.train import NonFiniteLossError, build, train_and_evaluate


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_smoke_run_writes_checkpoints_events_samples_and_generate_reads_them(
    smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(smoke_config, workdir)
  assert int(state.step) == smoke_config.total_steps == 6
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


def test_stop_and_resume_equals_straight_through(smoke_config, tmp_path):
  smoke_config.data.split = "train[:40]"  # Two batches per epoch: resume crosses epochs.
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


def test_raising_total_steps_continues_and_equal_total_steps_does_nothing(smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  train_and_evaluate(smoke_config, workdir)
  again = train_and_evaluate(smoke_config, workdir)
  assert int(again.step) == 6
  smoke_config.total_steps = 9
  assert int(train_and_evaluate(smoke_config, workdir).step) == 9
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6", "9"]


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    smoke_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  smoke_config.total_steps = 3
  train_and_evaluate(smoke_config, workdir)

  monkeypatch.setitem(losses.LOSSES, "nonsaturating", (
      losses.nonsaturating_d_loss, lambda logits: jnp.mean(logits) * jnp.nan))
  smoke_config.total_steps = 6
  with pytest.raises(NonFiniteLossError, match="g_loss.* at step 4"):
    train_and_evaluate(smoke_config, workdir)

  manager = checkpointing.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [3]
  setup = build(smoke_config, sharding.make_mesh(), (32, 32, 1))
  restored = checkpointing.restore_latest(manager, setup.abstract_state)
  assert int(restored.step) == 3
  assert all(np.isfinite(x).all() for x in _leaves(restored))


def test_second_run_in_the_same_workdir_is_refused(smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  with run_record.workdir_lock(workdir):
    with pytest.raises(run_record.WorkdirBusyError, match="Another pgen run .* is using workdir"):
      train_and_evaluate(smoke_config, workdir)
  assert int(train_and_evaluate(smoke_config, workdir).step) == 6  # Free again once released.


def test_generate_on_a_directory_that_is_not_a_run_explains(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a pgen training workdir"):
    generate(str(tmp_path), num=4, out=str(tmp_path / "x.png"))


def test_resuming_with_an_incompatible_model_config_explains(smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  smoke_config.total_steps = 3
  train_and_evaluate(smoke_config, workdir)
  smoke_config.model.g_width = 12
  smoke_config.total_steps = 6
  with pytest.raises(ValueError, match="does not fit the state of this config"):
    train_and_evaluate(smoke_config, workdir)
