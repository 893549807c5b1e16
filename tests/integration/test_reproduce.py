"""`python -m pgen reproduce`: a run reproduced on the machine that trained it gives its state
bit for bit, at its newest checkpoint and at an earlier one; a run whose config.json changed
after training does not, and the command line says so in one line with exit status 1; a
step the run no longer holds is refused with those it holds; differences from the run's
record are warnings, and any in versions or layout relax bit for bit to the tolerance."""

import copy
import json
import os
import re
import subprocess
import sys

import pytest

from pgen.errors import ArgumentError
from pgen.experiments import reproduce as reproduce_lib
from pgen.experiments.reproduce import ArrayDifference, Report, environment_warnings, reproduce

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _report_file(out: str) -> dict:
  with open(os.path.join(out, reproduce_lib.REPORT_FILE)) as f:
    return json.load(f)


def test_a_run_reproduces_bit_for_bit_at_its_newest_checkpoint_and_an_earlier_one(
    smoke_run, smoke_run_copy, tmp_path):
  report = reproduce(smoke_run_copy)  # Checkpoints 3 and 6: the newest is compared.
  assert report.exact_expected  # This machine trained it.
  assert (report.step, report.verdict, report.matches) == (6, "matches bit for bit", True)
  record = _report_file(os.path.join(smoke_run_copy, "reproduce"))
  assert record["step"] == 6 and record["verdict"] == "matches bit for bit"
  assert record["differing_arrays"] == {}
  assert {"g_params", "d_params", "ema_g_params", "g_opt_state"} <= set(record["groups"])

  early = reproduce(smoke_run, steps=3, out=str(tmp_path / "early"))
  assert (early.step, early.verdict) == (3, "matches bit for bit")
  assert _report_file(str(tmp_path / "early"))["step"] == 3


@pytest.mark.slow  # The fast suite keeps the verdict's wording (the tolerance test below).
def test_a_config_changed_after_training_does_not_match_on_the_command_line(smoke_run_copy):
  path = os.path.join(smoke_run_copy, "config.json")
  with open(path) as f:
    config = json.load(f)
  config["optim"]["g_learning_rate"] *= 1.1
  with open(path, "w") as f:
    json.dump(config, f)
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "reproduce", smoke_run_copy, "--steps", "3"],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if ": error: " in line]
  assert len(errors) == 1, result.stderr[-3000:]
  assert re.search(r"pgen reproduce: error: step 3 of .*, reproduced in .*, does not match: "
                   r"\d+ of \d+ arrays differ, expected bit for bit .*g_params\.\S+ \(max abs "
                   r"difference [0-9.e-]+", errors[0]), errors[0]
  record = _report_file(os.path.join(smoke_run_copy, "reproduce"))
  assert record["matches"] is False and record["groups"]["g_params"]["differing"] > 0
  assert any(re.search(r"changed after training: optim.g_learning_rate \S+ -> ", warning)
             for warning in record["warnings"]), record["warnings"]
  assert all(difference["max_abs_difference"] > 0
             for difference in record["differing_arrays"].values())


def test_a_step_the_run_does_not_hold_is_refused_listing_those_it_holds(smoke_run, tmp_path):
  with pytest.raises(ArgumentError, match=r"steps=4: .* available steps: \[3, 6\]"):
    reproduce(smoke_run, steps=4, out=str(tmp_path / "out"))
  assert not os.path.exists(tmp_path / "out")  # Refused before anything trains.
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "x").touch()
  with pytest.raises(ArgumentError, match="out=.* is not empty"):
    reproduce(smoke_run, out=str(tmp_path / "full"))


def _record(**changes) -> dict:
  record = {"git_revision": "abc", "versions": {"jax": "0.10.2", "numpy": "2.0.0"},
            "layout": {"platform": "cpu", "device_kind": "cpu", "process_count": 1,
                       "local_device_count": 1, "global_device_count": 1, "mesh": {"data": 1},
                       "process_index": 0, "hostname": "a"},
            "host": {"system": "Linux", "machine": "x86_64", "cpu": "Some CPU"}}
  for key, value in changes.items():
    section, _, leaf = key.rpartition("__")
    (record[section] if section else record)[leaf] = value
  return record


def test_each_difference_from_the_record_is_a_warning_and_versions_or_layout_relax_the_check():
  here = _record(layout__hostname="b", layout__process_index=3)
  assert environment_warnings({"start_000.json": _record()}, here) == ([], True)
  old = _record(versions__jax="0.4.35", layout__global_device_count=8, git_revision="def-dirty")
  warnings, exact = environment_warnings({"start_000.json": old, "start_001.json": _record()},
                                         here)
  assert not exact
  assert "jax: 0.4.35 in the original (start_000.json), 0.10.2 here" in warnings
  assert "global_device_count: 8 in the original (start_000.json), 1 here" in warnings
  assert any("def with uncommitted changes" in w for w in warnings), warnings
  older = copy.deepcopy(_record())
  del older["host"]
  warnings, exact = environment_warnings({"start_000.json": older}, here)
  assert exact and len(warnings) == 1 and "do not name its host" in warnings[0]


def test_a_tolerance_verdict_names_the_arrays_beyond_it():
  tolerance = reproduce_lib.RELATIVE_TOLERANCE

  def report(exact_expected, *relatives):
    return Report("run", "run/reproduce", 5, exact_expected, [], [
        ArrayDifference(f"g_params.Dense_{i}.kernel", r == 0, True, r, r)
        for i, r in enumerate(relatives)])

  assert report(False, 0, tolerance / 2).matches
  assert report(False, 0, tolerance / 2).verdict.startswith("matches within tolerance")
  assert not report(True, 0, tolerance / 2).matches
  beyond = report(False, tolerance / 2, 2 * tolerance)
  assert not beyond.matches
  assert re.match(r"does not match: 1 of 2 arrays differ beyond the tolerance, expected "
                  r"relative difference <= 0.001 .*: g_params.Dense_1.kernel \(max abs",
                  beyond.verdict)
