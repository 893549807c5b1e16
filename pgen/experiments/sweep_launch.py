r"""Runs a sweep's points on this machine, each as the `python -m pgen train` a user would type:
in sequence, several at a time, or one point per call (what a job array's task runs).

    sweep = sweeps.plan(config_path, sweeps.load_points(sweep_path))
    sweeps.write_manifest(workdir, sweep)
    outcomes = run_points(sweep, workdir, parallel=2)   # raises SweepFailedError if any failed
    run_points(sweep, workdir, only=3)                  # point 3 alone

Each point trains in `<workdir>/<index:04d>`, its output in `sweep_log.txt` there. A point
already trained to its total_steps (a checkpoint at or past it) is skipped without starting a
process; any other resumes, as `train` does, from its latest checkpoint, exactly. A point that
fails does not stop the others: its output's last lines go to `sweep_error.txt` and the
error raised at the end lists every failed point.

Cores: with `parallel` N > 1 the cores this process may run on (its affinity) are split
into N contiguous shares, as even as they divide (16 cores, N=3: 6, 5, 5; N above the
number of cores: one core each, shared in turn), and each child is pinned to its slot's share before
it starts Python (sched_setaffinity). XLA's CPU thread pool and tf.data size themselves from
the cores a process may use, so each run's threads stay on its share; no XLA flag is set.
In sequence (N=1) a run has every core. Accelerators are not divided: parallel runs on one
machine share its devices, and each JAX process takes 75% of a GPU's memory at start (run
them one at a time there, or set e.g. XLA_PYTHON_CLIENT_MEM_FRACTION=0.45 for two).

SIGTERM or SIGINT is passed on to the running points (train checkpoints and stops), and no
further point starts; the same command later resumes them.
"""

import collections
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time

from pgen.errors import PgenError
from pgen.experiments.sweeps import Point, Sweep, point_workdir
from pgen.training import checkpointing

LOG = "sweep_log.txt"
ERROR = "sweep_error.txt"
ERROR_LINES = 30  # Of a failed point's output, kept in sweep_error.txt.
_POLL_S = 0.2


class SweepFailedError(PgenError, RuntimeError):
  """Some points of a sweep failed or were stopped; the others ran."""


@dataclasses.dataclass(frozen=True)
class Outcome:
  point: Point
  status: str  # "done", "skipped" (trained before), "failed" or "stopped" (by a signal).


@dataclasses.dataclass(frozen=True)
class _Running:
  point: Point
  process: subprocess.Popen
  started: float
  log_offset: int  # Where this attempt's output starts in the point's log.


def core_shares(cores: list[int], parallel: int) -> list[list[int]]:
  """`parallel` contiguous shares of `cores`, as even as they divide."""
  if parallel >= len(cores):
    return [[cores[slot % len(cores)]] for slot in range(parallel)]
  size, extra = divmod(len(cores), parallel)
  shares, start = [], 0
  for slot in range(parallel):
    end = start + size + (slot < extra)
    shares.append(cores[start:end])
    start = end
  return shares


def trained_step(point_dir: str) -> int:
  """The newest checkpoint's step in a point's workdir (Orbax names a step's directory by
  its number once the save is complete), or 0."""
  directory = checkpointing.checkpoint_dir(point_dir)
  steps = [int(name) for name in os.listdir(directory) if name.isdigit()] if os.path.isdir(
      directory) else []
  return max(steps, default=0)


def is_trained(workdir: str, point: Point) -> bool:
  return trained_step(point_workdir(workdir, point)) >= point.config.total_steps


def train_command(sweep: Sweep, workdir: str, point: Point) -> list[str]:
  """The command that trains `point`: the one a user would type for it."""
  return [sys.executable, "-m", "pgen", "train", f"--config={sweep.config_path}",
          f"--workdir={point_workdir(workdir, point)}", *sweep.train_flags(point)]


def label(sweep: Sweep, point: Point) -> str:
  """The point's name and its values of the swept keys: what tells it from the others."""
  flat = {key: _lookup(point.config, key) for key in sweep.swept_keys} or point.overrides
  values = " ".join(f"{key}={value!r}" for key, value in flat.items())
  return f"[{point.name}] {values}".rstrip()


def _lookup(config, key: str):
  for part in key.split("."):
    config = config[part]
  return config


def _start(sweep: Sweep, workdir: str, point: Point, cores: list[int] | None) -> _Running:
  command = train_command(sweep, workdir, point)
  point_dir = point_workdir(workdir, point)
  os.makedirs(point_dir, exist_ok=True)
  with open(os.path.join(point_dir, LOG), "ab") as log:
    offset = log.tell()
    log.write(f"$ {shlex.join(command)}\n".encode())
    log.flush()
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, preexec_fn=pin)
  where = f" on cores {','.join(map(str, cores))}" if cores else ""
  print(f"{label(sweep, point)}: started{where}", flush=True)
  return _Running(point, process, time.monotonic(), offset)


def _last_lines(path: str, offset: int) -> list[str]:
  with open(path, "rb") as f:
    f.seek(offset)
    text = f.read().decode(errors="replace")
  return text.rstrip().splitlines()[-ERROR_LINES:]


def _finish(sweep: Sweep, workdir: str, run: _Running, stop_signal: str | None) -> Outcome:
  """The outcome of a point whose process has exited, written where the user looks."""
  point, code = run.point, run.process.returncode
  seconds = time.monotonic() - run.started
  point_dir = point_workdir(workdir, point)
  error_path = os.path.join(point_dir, ERROR)
  if code == 0 and is_trained(workdir, point):
    if os.path.exists(error_path):  # An earlier attempt's: this one finished.
      os.remove(error_path)
    print(f"{label(sweep, point)}: done in {seconds:.0f} s", flush=True)
    return Outcome(point, "done")
  if stop_signal:  # Whatever its exit status: it had the signal to stop.
    print(f"{label(sweep, point)}: stopped by {stop_signal} at step "
          f"{trained_step(point_dir)}", flush=True)
    return Outcome(point, "stopped")
  lines = _last_lines(os.path.join(point_dir, LOG), run.log_offset)
  with open(error_path, "w") as f:
    f.write("\n".join(lines) + "\n")
  error = lines[-1] if lines else "no output"
  print(f"{label(sweep, point)}: failed (exit {code}) after {seconds:.0f} s: {error}\n"
        f"  its output's last lines: {error_path}", flush=True)
  return Outcome(point, "failed")


class _StopForwarding:
  """While open, SIGTERM and SIGINT are passed on to the running points and remembered, so
  that no point starts after them."""

  def __init__(self, running: dict):
    self.running = running
    self.signal = None
    self.forwarded = set()  # Process ids that had the signal.

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum)
    self.forward()

  def forward(self) -> None:
    """Passes the signal on to the running points that have not had it: also one started
    while the signal came."""
    for run in self.running.values():
      if self.signal and run.process.pid not in self.forwarded and run.process.poll() is None:
        run.process.send_signal(self.signal)
        self.forwarded.add(run.process.pid)

  @property
  def name(self) -> str | None:
    return self.signal.name if self.signal else None

  def __enter__(self):
    self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def __exit__(self, *exc):
    for s, handler in self.previous.items():
      signal.signal(s, handler)


def _run(sweep: Sweep, workdir: str, todo: list[Point], parallel: int) -> list[Outcome]:
  """Runs `todo` with at most `parallel` processes, each slot pinned to its cores."""
  shares = core_shares(sorted(os.sched_getaffinity(0)), parallel) if parallel > 1 else [None]
  waiting, free_slots = collections.deque(todo), list(range(len(shares)))
  running, outcomes = {}, []
  with _StopForwarding(running) as stop:
    while waiting or running:
      while waiting and free_slots and not stop.signal:
        slot = free_slots.pop(0)
        running[slot] = _start(sweep, workdir, waiting.popleft(), shares[slot])
      stop.forward()
      if stop.signal and not running:
        break
      time.sleep(_POLL_S)
      for slot, run in list(running.items()):
        if run.process.poll() is not None:
          outcomes.append(_finish(sweep, workdir, run, stop.name))
          del running[slot]
          free_slots.append(slot)
  outcomes += [Outcome(point, "stopped") for point in waiting if stop.signal]
  return outcomes


def _summary(workdir: str, outcomes: list[Outcome]) -> str:
  counts = collections.Counter(outcome.status for outcome in outcomes)
  parts = [f"{counts[s]} {s}" for s in ("done", "skipped", "failed", "stopped") if counts[s]]
  return f"sweep {workdir}: {', '.join(parts)} (of {len(outcomes)} points)"


def run_points(sweep: Sweep, workdir: str, *, parallel: int = 1,
               only: int | None = None) -> list[Outcome]:
  """Trains the sweep's points (or point `only`), skipping those already trained; raises
  SweepFailedError naming the points that failed or were stopped, after all have ended."""
  points = sweep.points if only is None else (sweep.points[only],)
  outcomes, todo = [], []
  for point in points:
    if is_trained(workdir, point):
      print(f"{label(sweep, point)}: skipped, already trained to step "
            f"{point.config.total_steps}", flush=True)
      outcomes.append(Outcome(point, "skipped"))
    else:
      todo.append(point)
  outcomes += _run(sweep, workdir, todo, parallel)
  outcomes.sort(key=lambda outcome: outcome.point.index)
  print(_summary(workdir, outcomes), flush=True)
  failed = [o.point.name for o in outcomes if o.status == "failed"]
  stopped = [o.point.name for o in outcomes if o.status == "stopped"]
  if failed or stopped:
    problems = [f"failed: {', '.join(failed)} (each one's error is above; its output's last "
                f"lines are in {os.path.join(workdir, '<point>', ERROR)})"] if failed else []
    problems += [f"stopped: {', '.join(stopped)}"] if stopped else []
    raise SweepFailedError(
        f"{len(failed) + len(stopped)} of {len(outcomes)} points did not finish; "
        f"{'; '.join(problems)}. The same command again retries them and skips the points "
        "already trained.")
  return outcomes
