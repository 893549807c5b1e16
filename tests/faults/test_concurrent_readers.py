"""generate and evaluate on a workdir that is training: they read the newest complete
checkpoint, never a half-written one, also while saves are in flight (paused to widen
them, kill_runner.py) and while the trainer deletes old checkpoints (keep_checkpoints)."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pgen import config as config_lib
from pgen.core import sharding
from pgen.gan.state import build
from pgen.generation import generators
from pgen.training import checkpointing

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _listing(workdir):
  folder = os.path.join(workdir, "checkpoints")
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return sorted(int(n) for n in names if n.isdigit()), any(not n.isdigit() for n in names)


# A trainer and readers side by side for a minute; the fast suite keeps the reader's half
# (checkpoints deleted while read, below).
@pytest.mark.slow
def test_generate_while_training_reads_only_complete_checkpoints(fmnist_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  log = open(tmp_path / "trainer.log", "w")  # Not a pipe: unread, it would block the trainer.
  trainer = subprocess.Popen(
      [sys.executable, os.path.join(HERE, "kill_runner.py"), workdir, fmnist_data_dir, "48",
       "0.4"], cwd=ROOT, stdout=log, stderr=log, text=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  try:
    while not _listing(workdir)[0]:
      assert trainer.poll() is None, (tmp_path / "trainer.log").read_text()[-3000:]
      time.sleep(0.05)
    loads, during_saves = [], 0
    while trainer.poll() is None:
      complete_before, saving = _listing(workdir)
      generator = generators.from_checkpoint(workdir)
      images = generator.render(np.zeros((2, generator.latent_dim), np.float32), None)
      assert images.shape == (2, 32, 32, 1)
      loads.append(generator.step)
      during_saves += saving
      assert generator.step >= complete_before[-1], (generator.step, complete_before)
    trainer.wait(timeout=60)
  finally:
    if trainer.poll() is None:
      trainer.kill()
    log.close()
  output = (tmp_path / "trainer.log").read_text()
  assert trainer.returncode == 0 and "EVENT done 48" in output, output[-3000:]
  assert len(set(loads)) >= 3 and during_saves >= 1, (loads, during_saves)
  assert loads == sorted(loads)  # Never an older checkpoint once a newer one was read.


def test_a_checkpoint_deleted_while_read_gives_way_to_the_newer_one(smoke_run_copy, caplog):
  """What a reader sees when the trainer saves step 9 and its keep policy deletes step 6
  while the reader restores 6: it reads 9, not an error or an older checkpoint."""
  folder = os.path.join(smoke_run_copy, "checkpoints")
  manager = checkpointing.create_manager(smoke_run_copy, read_only=True)
  restore = manager.restore

  def restore_while_the_trainer_moves_on(step, *args, **kwargs):
    if step == 6 and os.path.isdir(os.path.join(folder, "6")):
      shutil.copytree(os.path.join(folder, "6"), os.path.join(folder, "9"))
      shutil.rmtree(os.path.join(folder, "6"))
    return restore(step, *args, **kwargs)

  manager.restore = restore_while_the_trainer_moves_on
  config = config_lib.from_workdir(smoke_run_copy)
  setup = build(config, sharding.make_mesh(), (32, 32, 1))
  state = checkpointing.restore_latest(manager, setup.abstract_state)
  assert int(state.step) == 6  # Read from 9 (a copy of 6's arrays), not fallen back to 3.
  assert manager.all_steps() == [3, 9] and "is damaged" not in caplog.text
  assert not os.path.exists(os.path.join(smoke_run_copy, checkpointing.DAMAGED_DIR))


def test_a_checkpoint_deleted_while_the_reader_lists_them_is_passed_over(smoke_run_copy,
                                                                          monkeypatch):
  """Orbax lists the step directories, then reads each one's metadata and time: the trainer's
  keep policy may delete a step in between. The reader sees the rest, not a
  FileNotFoundError."""
  victim = os.path.join(checkpointing.checkpoint_dir(smoke_run_copy), "3")
  stat, deleted = os.stat, []

  def stat_while_the_trainer_deletes(path, *args, **kwargs):
    if os.fspath(path).startswith(victim + os.sep) and not deleted:  # Listed, now read.
      deleted.append(victim)
      shutil.rmtree(victim)
    return stat(path, *args, **kwargs)

  monkeypatch.setattr(os, "stat", stat_while_the_trainer_deletes)
  generator = generators.from_checkpoint(smoke_run_copy)
  assert deleted and generator.step == 6
  assert checkpointing.create_manager(smoke_run_copy, read_only=True).all_steps() == [6]
