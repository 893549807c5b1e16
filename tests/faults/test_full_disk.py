"""A full disk: the save that does not fit stops the run with one error line naming the
path, the cause and the step to resume from; the earlier checkpoints stay intact and the
run resumes once there is room. On a real small filesystem (a tmpfs, where this machine
lets the test mount one), else with the free space reported small."""

import contextlib
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from pgen.errors import WorkdirWriteError
from pgen.training import checkpointing
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _du(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _mount_tmpfs(path: str, size: int) -> bool:
  os.makedirs(path, exist_ok=True)
  if os.geteuid() != 0 or not shutil.which("mount"):
    return False
  return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                        capture_output=True).returncode == 0


@contextlib.contextmanager
def _small_disk(path: str, smoke_run: str, monkeypatch):
  """`path`/run: a copy of the smoke run (checkpoints 3 and 6) on a disk with ~300 KB free,
  less than a checkpoint; yields a function that makes room."""
  room = _du(smoke_run) + 300 * 1024
  mounted = _mount_tmpfs(path, room)
  shutil.copytree(smoke_run, os.path.join(path, "run"))
  if mounted:
    make_room = lambda: subprocess.run(["mount", "-o", "remount,size=64m", path], check=True)  # noqa: E731
  else:
    usage = shutil.disk_usage
    monkeypatch.setattr(checkpointing.shutil, "disk_usage",
                        lambda p: usage(p)._replace(free=300 * 1024))
    make_room = monkeypatch.undo
  try:
    yield make_room
  finally:
    if mounted:
      subprocess.run(["umount", "--lazy", path], check=True)  # Files may still be open.


def test_a_save_that_does_not_fit_stops_cleanly_and_resumes_once_there_is_room(
    smoke_config, smoke_run, tmp_path, monkeypatch):
  with _small_disk(str(tmp_path / "disk"), smoke_run, monkeypatch) as make_room:
    workdir = str(tmp_path / "disk" / "run")
    smoke_config.total_steps = 9
    with pytest.raises(WorkdirWriteError) as error:
      train_and_evaluate(smoke_config, workdir)
    message = str(error.value)
    assert "Checkpoint 9 needs up to" in message and "No space left on device" in message
    assert f"{workdir}/checkpoints" in message and "resume from step 6" in message
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
    for a, b in zip(jax.tree.leaves(checkpointing.restore_run_state(workdir, 6)[3]),
                    jax.tree.leaves(checkpointing.restore_run_state(smoke_run, 6)[3]),
                    strict=True):
      np.testing.assert_array_equal(a, b)  # Intact.
    make_room()
    assert int(train_and_evaluate(smoke_config, workdir).step) == 9
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6", "9"]


@pytest.mark.slow
def test_the_command_says_it_in_one_line(smoke_config, smoke_run_copy):
  code = ("import shutil, sys\n"
          "from pgen.training import checkpointing\n"
          "usage = shutil.disk_usage\n"
          "checkpointing.shutil.disk_usage = lambda p: usage(p)._replace(free=300 * 1024)\n"
          "from pgen.cli.main import run\n"
          "run()\n")
  result = subprocess.run(
      [sys.executable, "-c", code, "train", "--config",
       os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py") + ":smoke", "--workdir",
       smoke_run_copy, f"--config.data.data_dir={smoke_config.data.data_dir}",
       "--config.total_steps=9"],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      "pgen train: error: Checkpoint 9 needs up to"), result.stderr[-2000:]
  assert "Traceback" not in result.stderr
