"""Every file a training run writes in its workdir, by name: the one place that knows the
layout; the modules that write or read a file ask here for its path.

    workdir.config_path("runs/fmnist")        # runs/fmnist/config.json
    workdir.is_run("runs/fmnist")             # has a config.json: a run was started there

    <workdir>/config.json       the resolved config of the latest start (pgen.config reads it)
    <workdir>/data_info.json    image shape, class names and attributes of the data trained on
    <workdir>/run_record/       start_NNN.json per start: environment, layout, step cost
    <workdir>/metrics.jsonl     every logged scalar, a JSON object a line
    <workdir>/rollbacks.json    the rollbacks of train.on_nonfinite / on_collapse="rollback"
    <workdir>/checkpoints/      Orbax checkpoints, one folder per step
    <workdir>/samples/          the sample grid of each sample_every_steps
    <workdir>/pgen.lock         held while a run trains, so one run uses a workdir at a time

and the two files of an export (`pgen export`) that generation and init.from read:

    <export>/export.json        what the export holds and where it came from
    <export>/params/            the EMA generator's variables (Orbax)
"""

import glob
import json
import os

from pgen.errors import RunNotFoundError

CONFIG = "config.json"
DATA_INFO = "data_info.json"
RUN_RECORD = "run_record"
METRICS = "metrics.jsonl"
ROLLBACKS = "rollbacks.json"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
LOCK = "pgen.lock"
EXPORT_INFO = "export.json"
EXPORT_PARAMS = "params"


def config_path(workdir: str) -> str:
  return os.path.join(workdir, CONFIG)


def data_info_path(workdir: str) -> str:
  return os.path.join(workdir, DATA_INFO)


def run_record_dir(workdir: str) -> str:
  return os.path.join(workdir, RUN_RECORD)


def start_records(workdir: str) -> list[str]:
  """The run record of each start, oldest first."""
  return sorted(glob.glob(os.path.join(run_record_dir(workdir), "start_*.json")))


def metrics_path(workdir: str) -> str:
  return os.path.join(workdir, METRICS)


def rollbacks_path(workdir: str) -> str:
  return os.path.join(workdir, ROLLBACKS)


def checkpoints_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), CHECKPOINTS)


def samples_dir(workdir: str) -> str:
  return os.path.join(workdir, SAMPLES)


def lock_path(workdir: str) -> str:
  return os.path.join(workdir, LOCK)


def is_export(path: str) -> bool:
  """Whether `path` is a directory written by `pgen export`."""
  return os.path.isfile(os.path.join(path, EXPORT_INFO))


def is_run(path: str) -> bool:
  """Whether `path` is a training workdir: a run was started there (it has a config.json)."""
  return os.path.isfile(config_path(path))


def read_data_info(workdir: str) -> dict:
  """data_info.json of a run: what generating and reproducing it need of its dataset."""
  path = data_info_path(workdir)
  if not os.path.isfile(path):
    raise RunNotFoundError(f"{path} is missing: {workdir} is not a complete pgen training "
                           "workdir (train writes it at start).")
  with open(path) as f:
    return json.load(f)
