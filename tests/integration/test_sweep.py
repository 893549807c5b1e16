"""`python -m pgen sweep` as a user runs it: points trained in sequence and two at a time (each
on its own core), skipped once trained, resumed exactly after the sweep is killed; a failing
point reported while the others finish; a bad point refused before anything runs; the SLURM
array (run by a fake sbatch) and the Kubernetes Indexed Job running their points."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import yaml

from pgen import config as config_lib
from pgen.core import sharding
from pgen.experiments import sweep_launch
from pgen.gan.state import build
from pgen.training import checkpointing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py") + ":smoke"
TIMEOUT_S = 900


def _sweep_file(folder, body: str) -> str:
  path = os.path.join(folder, "sweep.py")
  with open(path, "w") as f:
    f.write("from pgen.experiments.sweeps import product, with_seeds, zipped\n\n"
            f"def get_sweep():\n  return {body}\n")
  return path


def _command(sweep_file: str, workdir: str, data_dir: str, *flags) -> list[str]:
  return [sys.executable, "-m", "pgen", "sweep", f"--config={CONFIG}",
          f"--config.data.data_dir={data_dir}", "--config.data.download=False",
          f"--sweep={sweep_file}", f"--workdir={workdir}", *flags]


def _env(**extra) -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu", **extra)


def _run(command, **extra_env) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                        env=_env(**extra_env))


def _value(config, key: str):
  for part in key.split("."):
    config = config[part]
  return config


def _assert_trained(workdir: str, index: int, overrides: dict, data_dir: str) -> None:
  """The point trained to its total_steps with its overrides and the sweep's own."""
  point_dir = os.path.join(workdir, f"{index:04d}")
  config = config_lib.from_workdir(point_dir)
  for key, value in {**overrides, "data.data_dir": data_dir, "data.download": False}.items():
    assert _value(config, key) == config_lib.KEYS[key].typed(value), (index, key)
  assert sweep_launch.trained_step(point_dir) == config.total_steps
  with open(os.path.join(point_dir, "overrides.json")) as f:
    assert json.load(f) == overrides


def _starts(point_dir: str) -> list[dict]:
  record_dir = os.path.join(point_dir, "run_record")
  return [json.load(open(os.path.join(record_dir, name)))
          for name in sorted(os.listdir(record_dir))]


# Points that differ by seed alone compile the smoke run's programs: the session's XLA cache
# has them.
SEED_POINTS = [{"seed": 0}, {"seed": 1}]


@pytest.fixture(scope="module")
def seed_sweep(fmnist_data_dir, tmp_path_factory):
  """A two-point sweep trained in sequence: (sweep file, workdir, the sweep's output)."""
  folder = str(tmp_path_factory.mktemp("seed_sweep"))
  sweep_file = _sweep_file(folder, "product(seed=(0, 1))")
  workdir = os.path.join(folder, "runs")
  result = _run(_command(sweep_file, workdir, fmnist_data_dir))
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return sweep_file, workdir, result.stdout


def test_a_sweep_trains_each_point_in_sequence_and_a_rerun_skips_them(seed_sweep,
                                                                      fmnist_data_dir):
  sweep_file, workdir, output = seed_sweep
  assert "[0000] seed=0: started\n[0000] seed=0: done in" in output
  assert "cores" not in output  # In sequence a run has every core.
  assert output.rstrip().endswith(f"sweep {workdir}: 2 done (of 2 points)")
  with open(os.path.join(workdir, "sweep.json")) as f:
    manifest = json.load(f)
  assert manifest["swept_keys"] == ["seed"]
  assert [p["overrides"] for p in manifest["points"]] == SEED_POINTS
  for index, overrides in enumerate(SEED_POINTS):
    _assert_trained(workdir, index, overrides, fmnist_data_dir)

  again = _run(_command(sweep_file, workdir, fmnist_data_dir))
  assert again.returncode == 0, again.stderr[-3000:]
  assert "[0001] seed=1: skipped, already trained to step 6" in again.stdout
  assert again.stdout.rstrip().endswith("2 skipped (of 2 points)")
  assert len(_starts(os.path.join(workdir, "0001"))) == 1  # No train process ran.


def test_the_slurm_array_runs_one_point_per_task(seed_sweep, fmnist_data_dir, tmp_path):
  """A fake sbatch runs the array's tasks here, one after another; the points are trained,
  so each task checks the sweep and skips its point."""
  sweep_file, workdir, _ = seed_sweep
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "sbatch").write_text(
      f"#!{sys.executable}\n"
      "import os, re, subprocess, sys\n"
      "script = open(sys.argv[1]).read()\n"
      "first, last = map(int, re.search(r'^#SBATCH --array=(\\d+)-(\\d+)', script, re.M)"
      ".groups())\n"
      "for task in range(first, last + 1):\n"
      "  env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(task))\n"
      "  print(f'task {task}: exit', subprocess.call(['bash', sys.argv[1]], env=env))\n"
      "print('Submitted batch job 42')\n")
  (bin_dir / "sbatch").chmod(0o755)
  result = _run(_command(sweep_file, workdir, fmnist_data_dir, "--slurm", "--parallel=2"),
                PATH=f"{bin_dir}:{os.environ['PATH']}")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, "sweep.sbatch")) as f:
    assert "#SBATCH --array=0-1%2\n" in f.read()
  for task in (0, 1):
    assert f"[{task:04d}] seed={task}: skipped" in result.stdout
    assert f"task {task}: exit 0" in result.stdout
  assert result.stdout.rstrip().endswith("Submitted batch job 42")


def test_the_kubernetes_job_runs_the_point_of_its_completion_index(seed_sweep, fmnist_data_dir):
  sweep_file, workdir, _ = seed_sweep
  result = _run(_command(sweep_file, workdir, fmnist_data_dir, "--kubernetes"))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, "sweep_job.yaml")) as f:
    job = yaml.safe_load(f)
  assert (job["kind"], job["spec"]["completionMode"]) == ("Job", "Indexed")
  assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
  [container] = job["spec"]["template"]["spec"]["containers"]
  pod = _run(container["command"], JOB_COMPLETION_INDEX="1",
             PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
  assert pod.returncode == 0, pod.stderr[-3000:]
  assert "[0001] seed=1: skipped" in pod.stdout and "[0000]" not in pod.stdout


def test_a_bad_point_is_refused_before_anything_runs(fmnist_data_dir, tmp_path):
  sweep_file = _sweep_file(str(tmp_path), "[{'seed': 0}, {'seed': 1}, {'loss.r1_weigt': 1.0}]")
  workdir = str(tmp_path / "runs")
  result = _run(_command(sweep_file, workdir, fmnist_data_dir))
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      'pgen sweep: error: point 2 {"loss.r1_weigt": 1.0}: loss.r1_weigt is not a pgen config '
      "key; did you mean loss.r1_weight?")
  assert not os.path.exists(workdir)


def _running_trains(workdir: str) -> dict[str, str]:
  """{point: the cores it may run on} of the train processes running in `workdir`."""
  running = {}
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = [arg.decode() for arg in f.read().split(b"\0")]
      with open(f"/proc/{pid}/status") as f:
        cores = re.search(r"Cpus_allowed_list:\s*(\S+)", f.read()).group(1)
    except OSError:
      continue
    point = [arg for arg in args if arg.startswith(f"--workdir={workdir}{os.sep}")]
    if "train" in args and point:
      running[os.path.basename(point[0])] = cores
  return running


def _run_watching_cores(command, workdir: str):
  """Runs the sweep; returns its result and each moment's {point: cores} of its trains."""
  process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_env())
  moments = []
  while process.poll() is None:
    moments.append(_running_trains(workdir))
    time.sleep(0.5)
  stdout, stderr = process.communicate(timeout=TIMEOUT_S)
  return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), moments


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_a_2x2x2_sweep_trains_every_point(fmnist_data_dir, tmp_path, parallel):
  sweep_file = _sweep_file(str(tmp_path), "with_seeds(product(**{'optim.g_learning_rate': "
                           "(1e-4, 3e-4), 'loss.r1_weight': (0.1, 1.0)}), seeds=(0, 1))")
  workdir = str(tmp_path / "runs")
  result, moments = _run_watching_cores(
      _command(sweep_file, workdir, fmnist_data_dir, f"--parallel={parallel}"), workdir)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert result.stdout.rstrip().endswith("8 done (of 8 points)")
  with open(os.path.join(workdir, "sweep.json")) as f:
    manifest = json.load(f)
  assert manifest["swept_keys"] == ["optim.g_learning_rate", "loss.r1_weight", "seed"]
  for point in manifest["points"]:
    _assert_trained(workdir, point["index"], point["overrides"], fmnist_data_dir)
  all_cores = sorted(os.sched_getaffinity(0))
  together = [moment for moment in moments if len(moment) > 1]
  if parallel == 1:
    assert not together
  elif len(all_cores) > 1:  # Two at a time, each on its own share of the cores.
    assert together, moments
    assert all(len(set(moment.values())) == len(moment) for moment in together), together


def _restore(config, point_dir):
  setup = build(config, sharding.make_mesh(), (32, 32, 1))
  manager = checkpointing.create_manager(point_dir, read_only=True)
  return checkpointing.restore_latest(manager, setup.abstract_state)


def _stop_during_point_1(command, workdir: str, how: str, log_path) -> tuple[int, str]:
  """Runs the sweep until point 1 has its first checkpoint, then stops it `how`; returns
  the sweep's exit status and output."""
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env=_env(), start_new_session=True)
    point_1 = os.path.join(workdir, "0001")
    deadline = time.monotonic() + TIMEOUT_S
    while sweep_launch.trained_step(point_1) == 0 and time.monotonic() < deadline:
      assert process.poll() is None, open(log_path).read()[-3000:]
      time.sleep(0.05)
    if how == "SIGKILL":
      os.killpg(process.pid, signal.SIGKILL)  # The sweep and its train process, at once.
    else:
      process.send_signal(signal.SIGTERM)  # The sweep passes it on: point 1 checkpoints.
    process.wait(timeout=TIMEOUT_S)
  with open(log_path) as f:
    return process.returncode, f.read()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_stopped_sweep_skips_finished_points_and_resumes_the_others_exactly(
    fmnist_data_dir, tmp_path, how):
  """SIGKILL to the sweep's process group (a crash: point 1 resumes from its last periodic
  checkpoint) or SIGTERM to the sweep (a preemption: point 1 checkpoints where it is)."""
  sweep_file = _sweep_file(str(tmp_path), "product(seed=(0, 1, 2))")
  workdir = str(tmp_path / "runs")
  command = _command(sweep_file, workdir, fmnist_data_dir, "--config.total_steps=300",
                     "--config.checkpoint_every_steps=20", "--config.log_every_steps=100",
                     "--config.sample_every_steps=1000")
  code, output = _stop_during_point_1(command, workdir, how, tmp_path / "stopped.log")
  point_1 = os.path.join(workdir, "0001")
  assert sweep_launch.trained_step(os.path.join(workdir, "0000")) == 300
  assert 0 < sweep_launch.trained_step(point_1) < 300, output[-3000:]
  if how == "SIGTERM":
    assert code == 1 and "[0001] seed=1: stopped by SIGTERM at step" in output, output[-3000:]
    assert "2 of 3 points did not finish; stopped: 0001, 0002." in output

  result = _run(command)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "[0000] seed=0: skipped, already trained to step 300" in result.stdout
  assert "[0001] seed=1: done" in result.stdout and "[0002] seed=2: done" in result.stdout
  starts = _starts(point_1)
  assert len(starts) == 2 and 0 < starts[1]["start_step"] < 300

  with open(os.path.join(point_1, "sweep_log.txt")) as f:  # The command a user would type.
    train_args = shlex.split(f.readline().removeprefix("$ "))
  straight_dir = str(tmp_path / "straight")
  straight = _run([a if not a.startswith("--workdir=") else f"--workdir={straight_dir}"
                   for a in train_args])
  assert straight.returncode == 0, straight.stderr[-3000:]
  config = config_lib.from_workdir(point_1)
  resumed, expected = _restore(config, point_1), _restore(config, straight_dir)
  assert int(resumed.step) == int(expected.step) == 300
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(expected), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_a_failing_point_is_reported_and_the_others_finish(fmnist_data_dir, tmp_path):
  """train[:10] is a valid split, but holds fewer images than one batch of 16: train
  refuses it when it opens the data."""
  sweep_file = _sweep_file(str(tmp_path), "zipped(seed=(0, 1, 2), "
                           "**{'data.split': ('train', 'train[:10]', 'train')})")
  workdir = str(tmp_path / "runs")
  result = _run(_command(sweep_file, workdir, fmnist_data_dir))
  assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
  assert re.search(r"\[0001\] seed=1 data.split='train\[:10\]': failed \(exit 1\) after \d+ s: "
                   r"pgen train: error: train\[:10\] has 10 examples, fewer than one step's 16",
                   result.stdout)
  with open(os.path.join(workdir, "0001", "sweep_error.txt")) as f:
    assert "fewer than one step's 16" in f.read().splitlines()[-1]
  assert result.stdout.rstrip().endswith("2 done, 1 failed (of 3 points)")
  assert result.stderr.strip().splitlines()[-1].startswith(
      "pgen sweep: error: 1 of 3 points did not finish; failed: 0001 (")
  for index in (0, 2):
    _assert_trained(workdir, index, {"seed": index, "data.split": "train"}, fmnist_data_dir)
