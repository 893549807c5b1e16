"""What a workdir records about its run, and the lock that keeps one run per workdir.

    with workdir_lock(workdir):
      write_run_record(workdir, config, mesh, start_step)

The record (run_record/start_<n>.json, and config.json with the latest resolved config)
holds what is needed to reproduce and audit a run: config, versions of pgen and its
libraries, the git revision, and the device/process layout of each start.
"""

import contextlib
import datetime
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys

import jax
from absl import logging

import pgen
from pgen.core import files, workdir as workdir_files
from pgen.errors import PgenError

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-cpu", "tensorflow",
             "tensorflow-datasets", "clu", "ml_collections", "numpy")


class WorkdirBusyError(PgenError, RuntimeError):
  """Another pgen process is already running in this workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """Holds an exclusive lock on the workdir. The OS drops it when the process dies, so a
  killed run's lock is taken over (and logged: its owner line is still in the file, which a
  clean exit empties)."""
  os.makedirs(workdir, exist_ok=True)
  path = workdir_files.lock_path(workdir)
  with open(path, "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "unknown"
      raise WorkdirBusyError(
          f"Another pgen run ({owner}) is using workdir {workdir}. Wait for it to finish, stop "
          "it, or pass a different --workdir.") from None
    f.seek(0)
    previous = f.read().strip()
    if previous:
      logging.warning("Took over the lock of %s: a run (%s) that ended without releasing it "
                      "(killed) and is no longer running.", path, previous)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}")
    f.flush()
    try:
      yield
    finally:
      f.seek(0)
      f.truncate()  # Released cleanly: no owner left behind.
      f.flush()
      fcntl.flock(f, fcntl.LOCK_UN)


def _git_revision() -> str | None:
  source = os.path.dirname(os.path.dirname(os.path.abspath(pgen.__file__)))
  try:
    rev = subprocess.run(["git", "-C", source, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return rev + ("-dirty" if dirty else "")


def _versions() -> dict:
  versions = {"pgen": pgen.__version__, "python": sys.version.split()[0]}
  for name in _PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return versions


def add_to_record(path: str, key: str, value) -> None:
  """Adds `key` to a run record that write_run_record wrote (e.g. the compiled step's cost)."""
  with open(path) as f:
    record = json.load(f)
  record[key] = value
  files.write_whole(path, json.dumps(record, indent=2))


def layout(mesh) -> dict:
  """The device and process layout of this start."""
  return {
      "platform": jax.devices()[0].platform,
      "device_kind": jax.devices()[0].device_kind,
      "process_count": jax.process_count(),
      "process_index": jax.process_index(),
      "local_device_count": jax.local_device_count(),
      "global_device_count": jax.device_count(),
      "mesh": dict(mesh.shape),
      "hostname": socket.gethostname(),
  }


def host() -> dict:
  """The machine's OS, architecture and CPU model: XLA compiles CPU programs for the host's
  instruction set, so another CPU model may round differently."""
  cpu = platform.processor()
  if os.path.isfile("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f
                  if line.startswith("model name")), cpu)
  return {"system": platform.system(), "machine": platform.machine(), "cpu": cpu or "unknown"}


def environment(mesh) -> dict:
  """What a start records of its code and machine (`python -m pgen reproduce` compares it
  with the machine it runs on)."""
  return {"git_revision": _git_revision(), "versions": _versions(), "layout": layout(mesh),
          "host": host()}


def write_data_info(workdir: str, info) -> None:
  """data_info.json: what generate needs of the dataset (image shape, class names, and the
  values of each attribute of combined labels)."""
  content = {"image_shape": info.image_shape, "class_names": info.class_names}
  if info.label_sizes:
    content["label_sizes"] = info.label_sizes
  with open(workdir_files.data_info_path(workdir), "w") as f:
    json.dump(content, f)


def acceptance_sha256(path: str) -> str:
  """SHA-256 of the acceptance model a fine-tuning run rewards (frozen: this names it)."""
  file = os.path.join(path, "acceptance.json") if os.path.isdir(path) else path
  with open(file, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def write_run_record(workdir: str, config, mesh, start_step: int) -> str:
  """Writes config.json and run_record/start_<n>.json; returns the latter's path."""
  with open(workdir_files.config_path(workdir), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  record_dir = workdir_files.run_record_dir(workdir)
  os.makedirs(record_dir, exist_ok=True)
  n = len([name for name in os.listdir(record_dir) if name.startswith("start_")])
  record = {
      "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
      "start_step": start_step,
      "command": sys.argv,
      **environment(mesh),
      "config": json.loads(config.to_json_best_effort()),
  }
  if config.feedback.acceptance:
    record["feedback_acceptance_sha256"] = acceptance_sha256(config.feedback.acceptance)
  path = os.path.join(record_dir, f"start_{n:03d}.json")
  with open(path, "w") as f:
    json.dump(record, f, indent=2)
  return path
