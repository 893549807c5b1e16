"""`python -m pgen compare` on workdirs written by hand (no training): a sweep's points
grouped by its swept keys with seeds pooled, final against best, each metric's direction,
the CSV and the plot, runs lacking the metric, and the command line's one-line errors."""

import csv
import datetime
import json
import os
import subprocess
import sys

import pytest

from pgen import config as config_lib
from pgen.errors import ArgumentError, RunNotFoundError
from pgen.experiments import compare, reporting

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp()
LR = "optim.g_learning_rate"


def _run(workdir, settings: dict, fd: dict, recall: dict | None = None,
         wall_s: float = 600.0) -> None:
  """A workdir as train leaves it: config.json, its first start's record, and metrics.jsonl
  with two log lines (images/s 600 and 700), the evaluations {step: value} at 0.1 s a step,
  and a last log line `wall_s` after the start."""
  os.makedirs(workdir / "run_record")
  config = config_lib.resolve(settings)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  (workdir / "run_record" / "start_000.json").write_text(json.dumps(
      {"start_time": datetime.datetime.fromtimestamp(START, datetime.timezone.utc).isoformat(),
       "start_step": 0}))
  lines = [{"step": 100, "time": START + 60, "g_loss": 0.7, "images_per_s": 600.0},
           {"step": 200, "time": START + 70, "g_loss": 0.6, "images_per_s": 700.0}]
  for step in sorted({*fd, *(recall or {})}):
    line = {"step": step, "time": START + step / 10}
    line.update({"eval/fd": fd[step]} if step in fd else {})
    line.update({"eval/recall": recall[step]} if recall and step in recall else {})
    lines.append(line)
  lines.append({"step": 3100, "time": START + wall_s, "g_loss": 0.5})
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


# Sweep points: (learning rate, seed, FD at steps 1000, 2000, 3000); None: no evaluation.
POINTS = [(2e-4, 0, (30, 4, 6)), (2e-4, 1, (28, 5, 5)), (2e-4, 2, (25, 6, 7)),
          (5e-4, 0, (20, 10, 12)), (5e-4, 1, (22, 14, 8)), (5e-4, 2, None)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  """A sweep over the learning rate and the seed; its last point never started."""
  root = tmp_path_factory.mktemp("sweep")
  points = []
  for index, (lr, seed, fds) in enumerate(POINTS + [(1e-3, 0, "not started")]):
    name = f"{index:04d}"
    points.append({"index": index, "name": name, "overrides": {LR: lr, "seed": seed}})
    if fds != "not started":
      _run(root / name, {LR: lr, "seed": seed},
           dict(zip((1000, 2000, 3000), fds or ())), recall={1000: 0.5, 2000: 0.9, 3000: 0.8})
  (root / "sweep.json").write_text(json.dumps(
      {"config": "configs/fashion_mnist_dcgan.py", "sweep": "sweeps/lr.py",
       "swept_keys": [LR, "seed"], "points": points}))
  return root


def test_a_sweep_groups_by_its_swept_keys_and_pools_the_seeds(sweep):
  comparison = compare.compare(compare.find_runs([str(sweep)]), "fd")
  assert comparison.keys == (LR,)  # The seed is swept, but pooled.
  assert [(g.values, len(g.runs)) for g in comparison.groups] == [
      ((2e-4,), 3), ((5e-4,), 3), ((1e-3,), 1)]
  text = compare.markdown(comparison)
  # Final FD 6, 5, 7 (mean 6, std 1); best 4, 5, 6; 650 images/s; 10 minutes each.
  assert ("| 0.0002 | 3 | 6.00 ± 1.00 (5.00-7.00) | 5.00 ± 1.00 (4.00-6.00) | "
          "650 ± 0 (650-650) | 10.0 ± 0.0 (10.0-10.0) |") in text
  # Final 12 and 8; the seed without an evaluation is counted, not pooled.
  assert "| 0.0005 | 2 of 3 | 10.00 ± 2.83 (8.00-12.00) | 9.00 ± 1.41 (8.00-10.00) |" in text
  assert "| 0.001 | 0 of 1 | — | — | — | — |" in text
  assert "# fd: lower is better" in text


def test_best_is_the_metric_s_direction_and_its_step_the_earliest(sweep):
  runs = {r.name: r for r in compare.compare(compare.find_runs([str(sweep)]), "fd").runs}
  assert (runs["0000"].final, runs["0000"].best.value, runs["0000"].best.step) == (6, 4, 2000)
  assert (runs["0001"].best.value, runs["0001"].best.step) == (5, 2000)  # Tied with 3000.
  assert (runs["0004"].final, runs["0004"].best.step) == (8, 3000)
  recall = compare.compare(compare.find_runs([str(sweep)]), "eval/recall")
  run = recall.runs[0]
  assert (run.final, run.best.value, run.best.step) == (0.8, 0.9, 2000)
  assert "# recall: higher is better" in compare.markdown(recall)
  assert [compare.direction(m) for m in ("fd", "kid", "recall", "precision", "coverage",
                                         "density")] == ["lower"] * 2 + ["higher"] * 4
  with pytest.raises(ArgumentError, match="metric=g_loss .* choose one of fd, kid"):
    compare.compare(compare.find_runs([str(sweep)]), "g_loss")


def test_runs_without_the_metric_are_listed_with_a_note(sweep):
  text = compare.markdown(compare.compare(compare.find_runs([str(sweep)]), "fd"))
  runs = text[text.index("## Runs"):]
  assert "| 0000 | 0.0002 | 0 | 6.00 | 4.00 | 2000 | 650 | 10.0 |" in runs
  assert "| 0005 | 0.0005 | 2 | — | — | — | 650 | 10.0 |" in runs
  assert "| 0006 | 0.001 | 0 | — | — | — | — | — |" in runs
  assert "- 0005: no eval/fd in metrics.jsonl" in runs
  assert f"- 0006: not started: {sweep / '0006'} has no config.json." in runs


def test_the_csv_has_a_row_a_run_and_the_plot_is_a_png(sweep, tmp_path):
  comparison = compare.compare(compare.find_runs([str(sweep)]), "fd")
  compare.write_csv(comparison, str(tmp_path / "table.csv"))
  with open(tmp_path / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["run", "workdir", LR, "seed", "final_fd", "best_fd", "best_step",
                           "images_per_s", "wall_s", "note"]
  assert [r["run"] for r in rows] == [f"{i:04d}" for i in range(7)]
  assert (rows[0]["final_fd"], rows[0]["best_fd"], rows[0]["best_step"]) == ("6.0", "4.0", "2000")
  assert (rows[0]["images_per_s"], rows[0]["wall_s"]) == ("650.0", "600.0")
  assert rows[5]["final_fd"] == "" and rows[5]["note"].startswith("no eval/fd")
  for x_axis in ("steps", "minutes"):
    path = tmp_path / f"fd_{x_axis}.png"
    compare.plot(comparison, str(path), x_axis=x_axis)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_without_matplotlib_says_how_to_install_it(sweep, tmp_path, monkeypatch):
  comparison = compare.compare(compare.find_runs([str(sweep)]), "fd")
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  with pytest.raises(reporting.MatplotlibMissingError, match="pip install matplotlib"):
    compare.plot(comparison, str(tmp_path / "fd.png"))


def test_a_directory_of_runs_groups_by_the_keys_that_differ_or_by_those_named(tmp_path):
  for name, settings, fds in (("a", {LR: 2e-4, "seed": 0}, (9, 3, 4)),
                              ("b", {LR: 2e-4, "seed": 1}, (9, 5, 6)),
                              ("c", {LR: 5e-4, "loss.r1_weight": 0.1, "seed": 0}, (9, 8, 7))):
    _run(tmp_path / "runs" / name, settings, dict(zip((1000, 2000, 3000), fds)))
  found = compare.find_runs([str(tmp_path / "runs")])
  assert [r.name for r in found.runs] == ["a", "b", "c"] and found.swept_keys is None
  inferred = compare.compare(found, "fd")
  assert set(inferred.keys) == {LR, "loss.r1_weight"}
  assert [len(g.runs) for g in inferred.groups] == [2, 1]
  by_seed = compare.compare(found, "fd", by=["seed"])
  assert [(g.values, len(g.runs)) for g in by_seed.groups] == [((0,), 2), ((1,), 1)]
  with pytest.raises(ArgumentError, match="by=loss.r1_weigth .* did you mean loss.r1_weight"):
    compare.compare(found, "fd", by=["loss.r1_weigth"])
  (tmp_path / "runs" / "a" / "metrics_00003000.json").write_text(
      json.dumps({"step": 3000, "fd": 4.5, "recall": 0.8}))
  evaluated = compare.compare(found, "fd", source="evaluate")
  assert [r.final for r in evaluated.runs] == [4.5, None, None]
  assert "metrics_<step>.json" in evaluated.runs[1].note
  with pytest.raises(RunNotFoundError, match="holds no pgen runs"):
    compare.find_runs([str(tmp_path)])


def _pgen(*args):
  return subprocess.run([sys.executable, "-m", "pgen", "compare", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_the_command_line_writes_the_table_and_names_an_empty_directory(sweep, tmp_path):
  result = _pgen(str(sweep), "--out", str(tmp_path / "table.md"),
                 "--plot", str(tmp_path / "fd.png"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| 0.0002 | 3 | 6.00 ± 1.00 (5.00-7.00) |" in result.stdout
  assert (tmp_path / "table.md").read_text() in result.stdout
  assert (tmp_path / "table.csv").exists() and (tmp_path / "fd.png").exists()
  empty = tmp_path / "empty"
  empty.mkdir()
  result = _pgen(str(empty))
  assert result.returncode == 1 and "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if ": error: " in line]
  assert errors == [f"pgen compare: error: {empty} holds no pgen runs: no sweep.json, no "
                    "config.json, and no subdirectory with a config.json. Pass a sweep "
                    "directory (python -m pgen sweep), training workdirs (python -m pgen "
                    "train --workdir), or a directory of them."], result.stderr
