"""`python -m pgen` as a user runs it: flag errors, train then generate, SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py")


def _pgen(*args, **kwargs):
  return subprocess.run([sys.executable, "-m", "pgen", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                        **kwargs)


def _one_message(result) -> str:
  """The error a user sees: exit status 1, one `pgen ...: error:` message, no traceback."""
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if ": error: " in line]
  assert len(errors) == 1, result.stderr[-3000:]
  return errors[0]


@pytest.mark.parametrize("override, expected", [
    ("--config.totl_steps=5", 'names a key the config does not have: .*Did you mean "total_steps"'),
    ("--config.loss.r1_every=0", r"loss.r1_every=0 must be >= 1"),
    ("--config.data.name=fashon_mnist", r"data.name='fashon_mnist' is not a TFDS dataset.*"
                                        r"Did you mean fashion_mnist"),
])
def test_bad_input_is_one_message_without_a_traceback(tmp_path, override, expected):
  result = _pgen("train", "--config", f"{CONFIG}:smoke", "--workdir", str(tmp_path), override,
                 f"--config.data.data_dir={tmp_path / 'tfds'}")
  assert re.search(expected, _one_message(result))
  assert not os.path.exists(tmp_path / "checkpoints")


def test_verbosity_shows_the_traceback(tmp_path):
  result = _pgen("train", "--config", f"{CONFIG}:smoke", "--workdir", str(tmp_path),
                 "--config.loss.r1_every=0", "--verbosity=1")
  assert result.returncode == 1 and "Traceback" in result.stderr


def test_each_command_s_help_lists_its_own_flags():
  helps = {c: _pgen(c, "--help") for c in ("train", "generate", "evaluate", "prepare")}
  assert all(r.returncode == 0 for r in helps.values())
  assert "--workdir" in helps["train"].stdout and "trim" not in helps["train"].stdout
  assert "--class" in helps["generate"].stdout and "--config" not in helps["generate"].stdout
  assert "--npz" in helps["evaluate"].stdout and "--src" not in helps["evaluate"].stdout
  assert "--[no]trim" in helps["prepare"].stdout and "--workdir" not in helps["prepare"].stdout


def test_help_lists_the_shared_flags_a_command_takes_and_only_those():
  helps = {c: _pgen(c, "--help").stdout for c in ("generate", "export", "train")}
  for command in ("generate", "export"):
    assert "--truncation" in helps[command] and "--noise_mode" in helps[command], command
  assert "--truncation" not in helps["train"]


def test_a_packaged_config_is_taken_by_name(tmp_path):
  result = _pgen("train", "--config", "fashion_mnist_dcgan:smok", "--workdir", str(tmp_path))
  assert "Unknown config variant 'smok'" in _one_message(result)
  result = _pgen("train", "--config", "fashion_mnist_dcgn", "--workdir", str(tmp_path))
  assert "fashion_mnist_dcgn" in _one_message(result)


def test_unknown_command_lists_the_commands(tmp_path):
  result = _pgen("trian", "--workdir", str(tmp_path))
  assert result.returncode != 0
  assert "unknown command 'trian' (did you mean 'train'?)" in result.stderr
  assert "train, generate, evaluate, prepare, export" in result.stderr


def test_train_then_generate_from_the_command_line(fmnist_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  result = _pgen("train", "--config", f"{CONFIG}:smoke", "--workdir", workdir,
                 f"--config.data.data_dir={fmnist_data_dir}", "--config.total_steps=3")
  assert result.returncode == 0, result.stderr[-3000:]
  out = str(tmp_path / "samples.npz")
  result = _pgen("generate", "--workdir", workdir, "--num", "12", "--out", out)
  assert result.returncode == 0, result.stderr[-3000:]
  assert np.load(out)["images"].shape == (12, 32, 32, 1)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(fmnist_data_dir, tmp_path):
  workdir = tmp_path / "run"
  process = subprocess.Popen(
      [sys.executable, "-m", "pgen", "train", "--config", f"{CONFIG}:smoke", "--workdir",
       str(workdir), f"--config.data.data_dir={fmnist_data_dir}",
       "--config.total_steps=1000000", "--config.checkpoint_every_steps=1000000",
       "--config.sample_every_steps=1000000", "--config.log_every_steps=1"],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  try:
    deadline = time.time() + 240
    while not list(workdir.glob("events.out.tfevents.*")) or os.path.getsize(
        next(workdir.glob("events.out.tfevents.*"))) < 2000:
      assert time.time() < deadline and process.poll() is None, "training did not start"
      time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
  finally:
    process.kill()
  assert process.returncode == 0, output[-3000:]
  assert "Got SIGTERM: saved the checkpoint of step" in output
  steps = [int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()]
  assert len(steps) == 1 and steps[0] > 0
