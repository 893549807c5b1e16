"""Damaged checkpoints: a truncated, emptied or deleted file in the newest checkpoint makes
training, generate and export fall back to the newest intact one with a warning that names
the damaged step; nothing is deleted, and a workdir with no intact checkpoint stops with an
error that says how to start again."""

import glob
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from pgen.errors import CheckpointDamagedError
from pgen.generation import generators
from pgen.training import checkpointing
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _largest_array_file(workdir: str, step: int) -> str:
  files = glob.glob(os.path.join(workdir, "checkpoints", str(step), "default", "**", "d", "*"),
                    recursive=True)
  return max(files, key=os.path.getsize)


DAMAGE = {
    "truncated": lambda workdir, step: os.truncate(_largest_array_file(workdir, step), 100),
    "emptied": lambda workdir, step: open(os.path.join(
        workdir, "checkpoints", str(step), "default", "_METADATA"), "w").close(),
    "deleted": lambda workdir, step: os.remove(os.path.join(
        workdir, "checkpoints", str(step), "default", "manifest.ocdbt")),
}


def _state(workdir: str, step: int | None = None):
  return checkpointing.restore_run_state(workdir, step)[3]


@pytest.mark.parametrize("damage", [
    "truncated", pytest.param("emptied", marks=pytest.mark.slow),
    pytest.param("deleted", marks=pytest.mark.slow)])
def test_training_resumes_from_the_newest_intact_checkpoint_and_ends_the_same(
    damage, smoke_config, smoke_run, smoke_run_copy, caplog):
  workdir = smoke_run_copy  # The smoke config trained to 6, checkpoints at 3 and 6.
  DAMAGE[damage](workdir, 6)
  state = train_and_evaluate(smoke_config, workdir)
  assert "Checkpoint 6 in" in caplog.text and "is damaged" in caplog.text
  assert int(state.step) == 6  # Steps 4-6 trained again from checkpoint 3.
  assert os.listdir(os.path.join(workdir, checkpointing.DAMAGED_DIR)) == ["6"]  # Kept aside.
  for a, b in zip(jax.tree.leaves(_state(workdir)), jax.tree.leaves(_state(smoke_run)),
                  strict=True):
    np.testing.assert_array_equal(a, b)  # As if nothing had happened: exact resume.


def test_generate_falls_back_without_touching_the_workdir(smoke_run_copy, caplog):
  DAMAGE["truncated"](smoke_run_copy, 6)
  assert generators.from_checkpoint(smoke_run_copy).step == 3
  assert "Checkpoint 6 in" in caplog.text
  assert sorted(os.listdir(os.path.join(smoke_run_copy, "checkpoints"))) == ["3", "6"]
  with pytest.raises(CheckpointDamagedError, match="Checkpoint 6 in .* is damaged.*another --step"):
    generators.from_checkpoint(smoke_run_copy, step=6)


def test_no_intact_checkpoint_stops_with_one_line_that_says_how_to_start_again(
    smoke_config, smoke_run_copy):
  workdir = smoke_run_copy
  DAMAGE["truncated"](workdir, 6)
  DAMAGE["emptied"](workdir, 3)
  with pytest.raises(CheckpointDamagedError, match=r"Every checkpoint .* damaged \(steps \[3, 6\]"):
    train_and_evaluate(smoke_config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]  # Untouched.
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "train", "--config",
       os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py") + ":smoke", "--workdir", workdir,
       f"--config.data.data_dir={smoke_config.data.data_dir}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("pgen train: error: Every checkpoint in") and "move" in last, result.stderr[-2000:]
  assert "Traceback" not in result.stderr


def test_a_killed_save_s_temporary_directory_is_cleared_and_the_step_saved_again(
    smoke_config, smoke_run_copy):
  checkpoints = os.path.join(smoke_run_copy, "checkpoints")
  leftover = os.path.join(checkpoints, "9.orbax-checkpoint-tmp-1795000000000000")
  os.makedirs(os.path.join(leftover, "default"))
  open(os.path.join(leftover, "default", "manifest.ocdbt"), "wb").close()
  smoke_config.total_steps = 9
  assert int(train_and_evaluate(smoke_config, smoke_run_copy).step) == 9
  assert sorted(os.listdir(checkpoints)) == ["3", "6", "9"]
  assert generators.from_checkpoint(smoke_run_copy).step == 9
