"""Kill it anywhere: a training process SIGKILLed at seeded moments (between steps, inside
a step, while a checkpoint is written or finalized, while samples or an evaluation are
made) and relaunched until it finishes ends with the state of an uninterrupted run, bit
for bit, and every relaunch starts from the newest complete checkpoint.

The moments are drawn from a seed and printed in every failure message, so a failing
schedule replays with the same seed (KILL_SEED, KILL_COUNT in the environment override
them). kill_runner.py pauses inside saves, so those windows are hit by design, not luck.
"""

import os
import random
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from pgen.core import sharding
from pgen.gan.state import build
from pgen.training import checkpointing
from tests.faults import kill_runner

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MOMENTS = ("between_steps", "in_step", "in_write", "in_finalize", "in_samples", "in_eval")
TRIGGER = {"between_steps": "step", "in_step": "step", "in_write": "write",
           "in_finalize": "finalize", "in_samples": "samples", "in_eval": "evaluate"}
PAUSE_S = 0.3


def schedule(seed: int, kills: int) -> list[tuple[str, int, float]]:
  """(moment, which occurrence of its event after the launch, delay in s) per kill."""
  rng = random.Random(seed)
  kills_list = []
  for _ in range(kills):
    moment = rng.choice(MOMENTS)
    delay = {"between_steps": 0.0, "in_step": rng.uniform(0.0, 0.004)}.get(
        moment, rng.uniform(0.05, 0.9) * PAUSE_S)
    kills_list.append((moment, rng.randint(1, 2), round(delay, 4)))
  return kills_list


def _launch(workdir, data_dir, total_steps, log):
  """The runner, its events on a pipe and its log in the file `log` (a pipe nobody reads
  while waiting for events would fill up and block it)."""
  return subprocess.Popen(
      [sys.executable, os.path.join(HERE, "kill_runner.py"), workdir, data_dir,
       str(total_steps), str(PAUSE_S)],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))


def _complete_checkpoints(workdir) -> list[int]:
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def _run_until(process, moment, occurrence, delay, seen):
  """Reads events into `seen` until the kill's trigger, then SIGKILLs."""
  count = 0
  for line in process.stdout:
    if not line.startswith("EVENT "):
      continue
    _, kind, step = line.split()
    seen.append((kind, step))
    if kind == TRIGGER[moment]:
      count += 1
      if count == occurrence:
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        break
  process.wait(timeout=120)


def _final_state(config, workdir):
  setup = build(config, sharding.make_mesh(), (32, 32, 1))
  manager = checkpointing.create_manager(workdir, read_only=True)
  return checkpointing.restore_latest(manager, setup.abstract_state)


def _kill_and_relaunch(tmp_path, data_dir, seed, kills, total_steps):
  kills = int(os.environ.get("KILL_COUNT", kills))
  seed = int(os.environ.get("KILL_SEED", seed))
  plan = schedule(seed, kills)
  replay = f"kill schedule (KILL_SEED={seed} KILL_COUNT={kills}): {plan}"
  print(replay)
  workdir = str(tmp_path / "killed")
  killed = 0
  for moment, occurrence, delay in plan:
    before = _complete_checkpoints(workdir)
    events = []
    log_path = tmp_path / f"launch_{killed}.log"
    with open(log_path, "w") as log:
      _run_until(_launch(workdir, data_dir, total_steps, log), moment, occurrence, delay, events)
    stderr = log_path.read_text()
    if ("done", str(total_steps)) in events:
      break  # Finished before this kill's moment came.
    starts = [int(step) for kind, step in events if kind == "start"]
    assert starts == [before[-1] if before else 0], (
        f"relaunch {killed} did not start from the newest complete checkpoint {before}: "
        f"{events[:3]}; {replay}\n{stderr[-3000:]}")
    assert "is damaged" not in stderr, f"{replay}\n{stderr[-3000:]}"
    killed += 1
  finish = subprocess.run(
      [sys.executable, os.path.join(HERE, "kill_runner.py"), workdir, data_dir,
       str(total_steps), "0"], cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert f"EVENT done {total_steps}" in finish.stdout, f"{replay}\n{finish.stderr[-3000:]}"
  assert "is damaged" not in finish.stderr, f"{replay}\n{finish.stderr[-3000:]}"
  straight = str(tmp_path / "straight")
  reference = subprocess.run(
      [sys.executable, os.path.join(HERE, "kill_runner.py"), straight, data_dir,
       str(total_steps), "0"], cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert reference.returncode == 0, reference.stderr[-3000:]
  config = kill_runner.make_config(data_dir, total_steps)
  want, got = _final_state(config, straight), _final_state(config, workdir)
  assert int(got.step) == int(want.step) == total_steps
  for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(want)[0], jax.tree.leaves(got),
                          strict=True):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a),
                                  err_msg=f"{jax.tree_util.keystr(path)}; {replay}")
  leftovers = [n for n in os.listdir(os.path.join(workdir, "checkpoints"))
               if not re.fullmatch(r"\d+", n)]
  assert not leftovers, f"temporary save directories left: {leftovers}; {replay}"
  return killed


# The fast suite keeps exact resume (integration/test_folder_resume.py) and a killed save's
# leftovers cleared (test_damaged_checkpoints.py); kills at random moments are runs of minutes.
@pytest.mark.slow
def test_two_kills_at_seeded_moments_end_bit_exact(fmnist_data_dir, tmp_path):
  assert _kill_and_relaunch(tmp_path, fmnist_data_dir, seed=1, kills=2, total_steps=40) == 2


@pytest.mark.slow
def test_twenty_kills_at_seeded_moments_end_bit_exact(fmnist_data_dir, tmp_path):
  assert _kill_and_relaunch(tmp_path, fmnist_data_dir, seed=2026, kills=20,
                            total_steps=200) == 20
