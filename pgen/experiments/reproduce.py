"""Re-runs a training run from its record and says whether it gives the same state.

    report = reproduce("runs/lr_r1/0007")                  # up to its newest checkpoint
    report = reproduce("runs/lr_r1/0007", steps=2000, out="/tmp/again")
    report.matches, report.verdict                        # <out>/reproduce.json has it all

The reproduction trains the original's config.json unchanged (seed and data location
included; only total_steps becomes the step compared) with train_and_evaluate, the code of
`python -m pgen train`, into a new workdir; then it restores the two checkpoints of that
step into one abstract state and compares them array by array. Before it trains, each
difference between the original's run_record/start_*.json and this machine is a warning.

What counts as a match. With the same library versions, device and process layout and
host (platform, device kind, CPU model), XLA compiles the same programs and training is
deterministic (a resumed run equals an uninterrupted one bit for bit: docs/reliability.md),
so anything but equal bits is a failure; another git revision alone is a warning, not an
excuse (a code change that changes the numbers is what this check is for). Otherwise the
programs differ (another reduction order across devices, other fusions in another XLA,
other vector instructions on another CPU), rounding differs from the first step, and
training amplifies it; then each floating array must be within RELATIVE_TOLERANCE of the
original's in relative L2 norm, ||new - old|| / ||old||, and each integer array (step,
random key) equal. A norm ratio, not an elementwise rtol: biases and Adam's moments hold
entries near zero whose relative error means nothing. Measured with the smoke config on 2
CPU cores, 8 devices against 1: no array differed by more than 3e-4 (Adam's moments of D;
parameters 3e-5) in the first 25 steps, while learning rates 10% apart differ by 1e-1
after one step; 1e-3 tells the two apart with margins of 3x and 100x. Later the rounding
differences grow into the training signal (G's parameters: 3e-3 after 50 steps, 4e-2
after 200), so across versions or layouts only an early checkpoint can be judged: `steps`
of one the run still holds.
"""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from pgen import config as config_lib
from pgen.core import sharding, workdir as workdir_files
from pgen.errors import ArgumentError, PgenError, RunNotFoundError
from pgen.feedback import acceptance
from pgen.gan.state import build
from pgen.training import checkpointing, recovery, run_record
from pgen.training.loop import train_and_evaluate

RELATIVE_TOLERANCE = 1e-3  # ||new - old|| / ||old|| per floating array (module docstring).
REPORT_FILE = "reproduce.json"
_LAYOUT_KEYS = ("platform", "device_kind", "process_count", "global_device_count",
                "local_device_count", "mesh")
_NAMED = 3  # Differing arrays that a one-line verdict names.


class ReproductionMismatchError(PgenError, RuntimeError):
  """The reproduced state differs from the original's beyond what this machine allows."""


@dataclasses.dataclass(frozen=True)
class ArrayDifference:
  """One array of the state, reproduced against original."""
  name: str  # "g_params.Conv_0.kernel"
  identical: bool  # Same bits.
  floating: bool
  max_abs: float  # max |new - old|
  relative: float  # ||new - old||_2 / ||old||_2

  @property
  def group(self) -> str:
    return self.name.split(".")[0]

  def within_tolerance(self) -> bool:
    return self.identical or (self.floating and self.relative <= RELATIVE_TOLERANCE)


@dataclasses.dataclass(frozen=True)
class Report:
  """What a reproduction found; `verdict` says it in one line, `record()` in reproduce.json."""
  original: str
  out: str
  step: int
  exact_expected: bool  # Same versions, layout and host: the bits must be equal.
  warnings: list[str]
  arrays: list[ArrayDifference]

  @property
  def identical(self) -> bool:
    return all(a.identical for a in self.arrays)

  @property
  def matches(self) -> bool:
    return self.identical or (not self.exact_expected
                              and all(a.within_tolerance() for a in self.arrays))

  @property
  def expected(self) -> str:
    if self.exact_expected:
      return "bit for bit (same versions and layout)"
    return (f"relative difference <= {RELATIVE_TOLERANCE:g} (versions or layout differ; "
            "it holds for early steps only)")

  @property
  def verdict(self) -> str:
    if self.identical:
      return "matches bit for bit"
    worst = max(self.arrays, key=lambda a: a.relative)
    if self.matches:
      return (f"matches within tolerance (largest relative difference {worst.relative:.2g} "
              f"in {worst.name}; expected {self.expected})")
    failing = [a for a in self.arrays
               if not (a.identical if self.exact_expected else a.within_tolerance())]
    named = ", ".join(f"{a.name} (max abs difference {a.max_abs:.3g}, relative "
                      f"{a.relative:.3g})" for a in failing[:_NAMED])
    more = f" and {len(failing) - _NAMED} more" if len(failing) > _NAMED else ""
    beyond = "" if self.exact_expected else " beyond the tolerance"
    return (f"does not match: {len(failing)} of {len(self.arrays)} arrays differ{beyond}, "
            f"expected {self.expected}: {named}{more}")

  def record(self) -> dict:
    """reproduce.json: what was compared, the verdict, and the differences by group."""
    return {
        "original": os.path.abspath(self.original), "reproduction": os.path.abspath(self.out),
        "step": self.step, "matches": self.matches, "verdict": self.verdict,
        "expected": self.expected, "relative_tolerance": RELATIVE_TOLERANCE,
        "warnings": self.warnings, "groups": _summary_by_group(self.arrays),
        "differing_arrays": {a.name: {"max_abs_difference": a.max_abs,
                                      "relative_difference": a.relative}
                             for a in self.arrays if not a.identical},
    }


def _summary_by_group(arrays: list[ArrayDifference]) -> dict:
  groups = {}
  for a in arrays:
    group = groups.setdefault(a.group, {"arrays": 0, "differing": 0, "max_abs_difference": 0.0,
                                        "max_relative_difference": 0.0})
    group["arrays"] += 1
    group["differing"] += not a.identical
    group["max_abs_difference"] = max(group["max_abs_difference"], a.max_abs)
    group["max_relative_difference"] = max(group["max_relative_difference"], a.relative)
  return groups


def reproduce(run: str, *, steps: int | None = None, out: str | None = None) -> Report:
  """Trains the config of `run` (a training workdir) into `out` (default <run>/reproduce;
  new or empty) up to `steps` (a step `run` has a checkpoint of; default its newest) and
  compares the two checkpoints of that step. Writes <out>/reproduce.json; returns the
  Report."""
  if not workdir_files.is_run(run):
    raise RunNotFoundError(f"{run} is not a pgen training workdir (it has no config.json); "
                           "name the workdir of a `python -m pgen train` run.")
  config = config_lib.from_workdir(run)
  manager = checkpointing.create_manager(run, read_only=True)
  step = _step_to_compare(manager, run, steps)
  out = out or os.path.join(run, "reproduce")
  _check_empty(out)
  image_shape, num_classes, label_sizes = _data_info(run)
  mesh = sharding.make_mesh()
  warnings, exact_expected = _warnings(run, run_record.environment(mesh))
  for warning in warnings:
    logging.warning("Reproducing %s: %s.", run, warning)
  config.total_steps = step
  train_and_evaluate(config, out, make_reward=acceptance.make_reward(config))
  setup = build(config, mesh, image_shape, num_classes, label_sizes=label_sizes)
  old, new = (checkpointing.restore_latest(m, setup.abstract_state, step)
              for m in (manager, checkpointing.create_manager(out, read_only=True)))
  report = Report(run, out, step, exact_expected, warnings, compare_states(old, new))
  with open(os.path.join(out, REPORT_FILE), "w") as f:
    json.dump(report.record(), f, indent=2)
  return report


def _warnings(original: str, here: dict) -> tuple[list[str], bool]:
  """(what may keep the reproduction from matching: differences from this machine `here`,
  a config edited after training, rollbacks; whether the bits must be equal)."""
  records = _start_records(original)
  warnings, exact_expected = environment_warnings(records, here)
  warnings += _edited_config_warnings(original, records)
  rollbacks = recovery.load_rollbacks(original)
  if rollbacks:
    warnings.append(
        f"the original rolled back {len(rollbacks)} time(s) ({recovery.ROLLBACKS_FILE}), and "
        "its config.json holds its last start's learning rates, scaled by the rollbacks "
        "before it: the reproduction trains with those from step 0")
  return warnings, exact_expected


def _step_to_compare(manager, original: str, steps: int | None) -> int:
  available = sorted(manager.all_steps())
  if not available:
    raise RunNotFoundError(f"{checkpointing.checkpoint_dir(original)} has no checkpoint to "
                           "compare a reproduction with; train the run first.")
  if steps is None:
    return available[-1]
  if steps not in available:
    raise ArgumentError(
        f"steps={steps}: {original} has no checkpoint of step {steps} to compare with (a run "
        "keeps its newest keep_checkpoints and its best evaluated one); available steps: "
        f"{available}.", argument="steps")
  return steps


def _check_empty(out: str) -> None:
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise ArgumentError(f"out={out} is not empty; the reproduction needs a new or empty "
                        "directory: remove it or pass another --out.", argument="out")


def _data_info(original: str) -> tuple[tuple, int, tuple]:
  """(image shape, number of classes, label sizes) of the original's dataset, which the
  state's shapes depend on."""
  info = workdir_files.read_data_info(original)
  return (tuple(info["image_shape"]), len(info["class_names"]),
          tuple(info.get("label_sizes", ())))


def _start_records(original: str) -> dict[str, dict]:
  """{"start_000.json": record} of each start of the original, oldest first."""
  records = {}
  for path in workdir_files.start_records(original):
    with open(path) as f:
      records[os.path.basename(path)] = json.load(f)
  return records


def _edited_config_warnings(original: str, records: dict[str, dict]) -> list[str]:
  """A warning when config.json is not the config its last start recorded (it was edited
  after training): the reproduction trains config.json, as asked, but should not match."""
  if not records:
    return []
  name, record = list(records.items())[-1]
  with open(workdir_files.config_path(original)) as f:
    now, then = config_lib.flat(json.load(f)), config_lib.flat(record.get("config", {}))
  changed = [f"{key} {then.get(key)} -> {now.get(key)}" for key in sorted(set(now) | set(then))
             if now.get(key) != then.get(key)]
  if not changed:
    return []
  return [f"config.json differs from the config of the last start ({name}), so it changed "
          f"after training: {', '.join(changed)}"]


def _program_facts(record: dict) -> dict[str, object]:
  """What decides the programs XLA compiles and runs: library versions, device and process
  layout, host. {"jax": "0.10.2", "device_kind": "cpu", "host cpu": "...", ...}"""
  facts = dict(record.get("versions", {}))
  facts.update({key: record.get("layout", {}).get(key) for key in _LAYOUT_KEYS})
  facts.update({f"host {key}": value for key, value in record.get("host", {}).items()})
  return json.loads(json.dumps(facts))  # Tuples as lists, as a record read back has them.


def environment_warnings(records: dict[str, dict], here: dict) -> tuple[list[str], bool]:
  """(a warning for each difference between the original's start records and `here`,
  run_record.environment() of this machine; whether the programs are the same, so that
  the bits must be equal)."""
  if not records:
    return ["the original has no run_record/start_*.json: its versions and layout are "
            "unknown"], False
  mine = _program_facts(here)
  differing, unrecorded = {}, set()
  for name, record in records.items():
    facts = _program_facts(record)
    for key in sorted(set(facts) | set(mine)):
      if key.startswith("host ") and "host" not in record:
        unrecorded.add(name)
      elif facts.get(key) != mine.get(key):
        differing.setdefault((key, json.dumps(facts.get(key))), []).append(name)
  warnings = [f"{key}: {_shown(json.loads(value))} in the original ({', '.join(names)}), "
              f"{_shown(mine.get(key))} here" for (key, value), names in differing.items()]
  if unrecorded:
    warnings.append(f"the original's {', '.join(sorted(unrecorded))} do not name its host "
                    "(recorded before pgen did): a different CPU would go unnoticed")
  return warnings + _code_warnings(records, here["git_revision"]), not differing


def _shown(value) -> str:
  return "absent" if value is None else str(value)


def _code_warnings(records: dict[str, dict], revision: str | None) -> list[str]:
  """Warnings for another git revision, or a tree with uncommitted changes, on either side."""
  starts_by_revision = {}
  for name, record in records.items():
    starts_by_revision.setdefault(record.get("git_revision"), []).append(name)
  warnings = []
  for original, names in starts_by_revision.items():
    if original is None or original.endswith("-dirty"):
      warnings.append(f"the original ({', '.join(names)}) ran from {_code(original)}: its "
                      "code is not known exactly")
    elif original != revision:
      warnings.append(f"the original ({', '.join(names)}) ran from git revision {original}, "
                      f"this is {_code(revision)}")
  if revision is None or revision.endswith("-dirty"):
    warnings.append(f"this is {_code(revision)}")
  return warnings


def _code(revision: str | None) -> str:
  if revision is None:
    return "code outside a git checkout"
  if revision.endswith("-dirty"):
    return f"git revision {revision.removesuffix('-dirty')} with uncommitted changes"
  return f"git revision {revision}"


def compare_states(original, reproduced) -> list[ArrayDifference]:
  """Each array of two states of one abstract state, in the state's order."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(original)
  return [_difference(jax.tree_util.keystr(path, simple=True, separator="."), old, new)
          for (path, old), new in zip(leaves, jax.tree.leaves(reproduced), strict=True)]


def _difference(name: str, old, new) -> ArrayDifference:
  old, new = np.asarray(old), np.asarray(new)  # One process holds all of both.
  floating = bool(jnp.issubdtype(old.dtype, jnp.floating))
  if old.tobytes() == new.tobytes():
    return ArrayDifference(name, True, floating, 0.0, 0.0)
  delta = new.astype(np.float64) - old.astype(np.float64)
  delta_norm = np.linalg.norm(delta.ravel())
  old_norm = np.linalg.norm(old.astype(np.float64).ravel())
  relative = 0.0 if delta_norm == 0 else (delta_norm / old_norm if old_norm else math.inf)
  return ArrayDifference(name, False, floating, float(np.max(np.abs(delta))), float(relative))
