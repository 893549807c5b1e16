"""Several processes on this machine (CPU devices, gloo): same results as one, elastic
restore across layouts, and a dead process stopping the others."""

import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from pgen.cli.launch_local import free_port
from pgen.core import sharding
from pgen.gan.state import build
from pgen.training import checkpointing
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py")


def _train_args(workdir, data_dir, *extra):
  return ["train", "--config", f"{CONFIG}:smoke", "--workdir", str(workdir),
          f"--config.data.data_dir={data_dir}", *extra]


def _launch(num_processes, devices_per_process, pgen_args, timeout=300):
  result = subprocess.run(
      [sys.executable, "-m", "pgen.cli.launch_local", f"--num_processes={num_processes}",
       f"--devices_per_process={devices_per_process}", "--", *pgen_args],
      cwd=ROOT, capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, result.stdout[-4000:]
  return result.stdout


def _single_process(devices, pgen_args):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  result = subprocess.run([sys.executable, "-m", "pgen", *pgen_args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-4000:]


def _restore(config, workdir, step=None):
  setup = build(config, sharding.make_mesh(), (32, 32, 1))
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  return checkpointing.restore_latest(manager, setup.abstract_state, step)


def test_two_processes_train_as_one_does(smoke_config, smoke_run, fmnist_data_dir, tmp_path):
  """Two processes (gloo) give the state of the one-process smoke run at step 3."""
  workdir = tmp_path / "2x1"
  output = _launch(2, 1, _train_args(workdir, fmnist_data_dir, "--config.total_steps=3"))
  assert "'process_count': 2" in output
  two, one = _restore(smoke_config, workdir), _restore(smoke_config, smoke_run, step=3)
  assert int(two.step) == int(one.step) == 3
  for x, y in zip(jax.tree.leaves(two), jax.tree.leaves(one), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_processes_match_one_process_and_restore_onto_one_device(
    smoke_config, fmnist_data_dir, tmp_path):
  multi, single = tmp_path / "2x2", tmp_path / "1x4"
  output = _launch(2, 2, _train_args(multi, fmnist_data_dir, "--config.total_steps=4"))
  assert "'process_count': 2" in output and "'global_device_count': 4" in output
  _single_process(4, _train_args(single, fmnist_data_dir, "--config.total_steps=4"))

  a, b = _restore(smoke_config, multi), _restore(smoke_config, single)
  assert int(a.step) == int(b.step) == 4
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)

  # The 2-process x 2-device checkpoint continues on this test's 1 process x 1 device,
  # and gives what the 1 x 4 run gives when it continues too.
  smoke_config.total_steps = 6
  continued = train_and_evaluate(smoke_config, str(multi))
  _single_process(4, _train_args(single, fmnist_data_dir, "--config.total_steps=6"))
  reference = _restore(smoke_config, single)
  assert int(continued.step) == int(reference.step) == 6
  for x, y in zip(jax.tree.leaves(continued), jax.tree.leaves(reference), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_one_device_checkpoint_continues_on_two_processes(smoke_config, fmnist_data_dir,
                                                          tmp_path):
  workdir = tmp_path / "run"
  smoke_config.total_steps = 3
  train_and_evaluate(smoke_config, str(workdir))
  output = _launch(2, 2, _train_args(workdir, fmnist_data_dir, "--config.total_steps=5"))
  assert "Start at step 3 of 5" in output
  assert int(_restore(smoke_config, workdir).step) == 5


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_a_relaunch_resumes(fmnist_data_dir, tmp_path):
  workdir = tmp_path / "run"
  args = _train_args(workdir, fmnist_data_dir, "--config.total_steps=1000000",
                     "--config.checkpoint_every_steps=2")
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  address = f"127.0.0.1:{free_port()}"
  processes = [
      subprocess.Popen([sys.executable, "-m", "pgen", *args, f"--coordinator_address={address}",
                        "--num_processes=2", f"--process_id={rank}", "--heartbeat_timeout_s=10"],
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
      for rank in range(2)]
  try:
    deadline = time.time() + 240
    while not (workdir / "checkpoints" / "4").exists():
      assert time.time() < deadline and all(p.poll() is None for p in processes)
      time.sleep(0.5)
    processes[1].kill()
    killed_at = time.time()
    code = processes[0].wait(timeout=120)
    stopped_after_s = time.time() - killed_at
  finally:
    for p in processes:
      p.kill()
  assert code != 0
  assert stopped_after_s < 60, stopped_after_s

  saved = max(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
  output = _launch(2, 1, _train_args(workdir, fmnist_data_dir, f"--config.total_steps={saved + 2}"))
  assert f"Start at step {saved} of {saved + 2}" in output


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_the_same_step_with_a_checkpoint(
    fmnist_data_dir, tmp_path):
  workdir = tmp_path / "run"
  args = _train_args(workdir, fmnist_data_dir, "--config.total_steps=1000000",
                     "--config.checkpoint_every_steps=1000000", "--config.log_every_steps=1")
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  address = f"127.0.0.1:{free_port()}"
  processes = [
      subprocess.Popen([sys.executable, "-m", "pgen", *args, f"--coordinator_address={address}",
                        "--num_processes=2", f"--process_id={rank}"],
                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
      for rank in range(2)]
  try:
    deadline = time.time() + 240
    while not list(workdir.glob("events.out.tfevents.*")) or os.path.getsize(
        next(workdir.glob("events.out.tfevents.*"))) < 2000:
      exited = [p for p in processes if p.poll() is not None]
      assert not exited, exited[0].communicate()[0][-4000:]
      assert time.time() < deadline, "no training metrics within 240 s"
      time.sleep(0.5)
    processes[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=120)[0] for p in processes]
  finally:
    for p in processes:
      p.kill()
  assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  stopped = [re.search(r"Got SIGTERM: saved the checkpoint of step (\d+)", o) for o in outputs]
  assert all(stopped), outputs[0][-3000:]
  assert stopped[0].group(1) == stopped[1].group(1)
  assert os.listdir(workdir / "checkpoints") == [stopped[0].group(1)]
