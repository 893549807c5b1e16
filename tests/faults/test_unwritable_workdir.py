"""A workdir the run may not write to (without root's power to write anywhere: setpriv) or
that vanishes under it: the failing save stops the run with one error line naming the path
and the cause, earlier checkpoints stay intact, and the same command resumes once fixed."""

import os
import shutil
import subprocess
import sys

import pytest

from pgen.errors import WorkdirWriteError
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py") + ":smoke"


def _unprivileged(command: list) -> list:
  """`command`, bound by file permissions even when run by root: without the capabilities
  that let root read and write any file (util-linux's setpriv)."""
  if os.geteuid() != 0:
    return command
  return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


def _train(workdir, data_dir, steps):
  return subprocess.run(
      _unprivileged([sys.executable, "-m", "pgen", "train", "--config", CONFIG, "--workdir",
                     workdir, f"--config.data.data_dir={data_dir}", "--config.data.download=False",
                     f"--config.total_steps={steps}"]),
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_permission_denied_stops_in_one_line_and_the_same_command_resumes(smoke_run_copy,
                                                                          fmnist_data_dir):
  workdir = smoke_run_copy  # Checkpoints 3 and 6.
  checkpoints = os.path.join(workdir, "checkpoints")
  os.chmod(checkpoints, 0o555)  # Readable, not writable: the save of step 9 fails.
  try:
    result = _train(workdir, fmnist_data_dir, 9)
  finally:
    os.chmod(checkpoints, 0o755)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("pgen train: error: Writing to the workdir failed: Permission "
                         "denied"), result.stderr[-3000:]
  assert checkpoints in last and "resume from step 6 (checkpoints [3, 6] are intact)" in last
  assert sorted(os.listdir(checkpoints)) == ["3", "6"]
  result = _train(workdir, fmnist_data_dir, 9)
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(checkpoints)) == ["3", "6", "9"]


def test_a_workdir_that_vanishes_stops_naming_it_and_the_same_command_starts_again(
    smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  smoke_config.total_steps = 9

  def remove_checkpoints_after_step_7(parts):
    train_step = parts.train_step

    class Removing:
      def compile(self, state, batch):
        return train_step.compile(state, batch)

      def at(self, step):
        if step == 7:
          parts.manager.wait_until_finished()
          shutil.rmtree(os.path.join(workdir, "checkpoints"))
        return train_step.at(step)

    parts.train_step = Removing()
    return parts

  with pytest.raises(WorkdirWriteError, match=r"Writing to the workdir failed: No such file or "
                                              r"directory.*run the same command to start again"):
    train_and_evaluate(smoke_config, workdir, instrument=remove_checkpoints_after_step_7)
  assert int(train_and_evaluate(smoke_config, workdir).step) == 9
