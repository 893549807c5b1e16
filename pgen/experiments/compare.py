r"""Runs side by side: a sweep's points, or any training workdirs, summed up by one metric
(its final and best value, the step of the best, images/s, wall time) and grouped by the
settings that differ, seeds pooled. What `python -m pgen compare` prints.

    found = find_runs(["runs/lr_r1"])     # a sweep directory, workdirs, or a directory of runs
    comparison = compare(found, "fd", by=["optim.g_learning_rate", "loss.r1_weight"])
    print(markdown(comparison))
    write_csv(comparison, "table.csv")    # one row a run
    plot(comparison, "fd.png", x_axis="steps")

A run's values come from its in-training evaluations (`eval/<metric>` in metrics.jsonl,
source "training") or from the metrics_<step>.json files of `python -m pgen evaluate`
(source "evaluate"), never from both at once: their sample counts differ.
"""

import csv
import dataclasses
import datetime
import difflib
import glob
import json
import os
import statistics

from pgen.core import workdir as workdir_files
from pgen.errors import ArgumentError, PgenError, RunNotFoundError
from pgen.experiments import reporting

SWEEP_FILE = "sweep.json"
SOURCES = ("training", "evaluate")
LOWER_IS_BETTER = ("fd", "kid", "ms_ssim")
HIGHER_IS_BETTER = ("precision", "recall", "density", "coverage", "classifier_score",
                    "class_entropy", "rarest_class_share", "class_accuracy",
                    "class_accuracy_min")
_DIGITS = {"fd": 2, "kid": 4}  # Others are fractions or entropies: 3.
_BEST = {"lower": "lowest", "higher": "highest"}


class SweepFileError(PgenError, ValueError):
  """A sweep.json that `python -m pgen sweep` did not write (or that was cut short)."""


@dataclasses.dataclass(frozen=True)
class RunDir:
  """A run to compare: its name in the tables, its workdir, and, for a sweep's point, the
  overrides it trains with (all that is known of a point that has not started)."""
  name: str
  workdir: str
  overrides: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FoundRuns:
  runs: tuple[RunDir, ...]
  swept_keys: tuple[str, ...] | None  # Of the sweeps among the paths; None if there is none.


@dataclasses.dataclass(frozen=True)
class Evaluation:
  step: int
  minutes: float | None  # Since the run's first start; None where no line gives the time.
  value: float


@dataclasses.dataclass(frozen=True)
class RunSummary:
  name: str
  workdir: str
  settings: dict  # Dotted config key -> value: the whole config, or a sweep point's overrides.
  started: bool  # Has a config.json (else `settings` are the point's overrides alone).
  evaluations: tuple[Evaluation, ...]
  final: float | None
  best: Evaluation | None
  images_per_s: float | None
  wall_s: float | None
  note: str | None  # Why the metric is missing.


@dataclasses.dataclass(frozen=True)
class Group:
  values: tuple  # Of the grouping keys, in their order.
  runs: tuple[RunSummary, ...]


@dataclasses.dataclass(frozen=True)
class Comparison:
  metric: str
  source: str
  keys: tuple[str, ...]
  keys_from: str  # How the grouping keys were chosen, for the table's heading.
  runs: tuple[RunSummary, ...]
  groups: tuple[Group, ...]


def direction(metric: str) -> str:
  """"lower" or "higher": which values of `metric` are better."""
  if metric in LOWER_IS_BETTER:
    return "lower"
  if metric in HIGHER_IS_BETTER:
    return "higher"
  raise ArgumentError(f"metric={metric} is not one compare knows the better direction of; "
                      f"choose one of {', '.join(LOWER_IS_BETTER + HIGHER_IS_BETTER)}.",
                      argument="metric")


def _read_sweep(path: str, prefix: str) -> tuple[list[str], list[RunDir]]:
  file = os.path.join(path, SWEEP_FILE)
  try:
    with open(file) as f:
      sweep = json.load(f)
    points = [RunDir(os.path.join(prefix, point["name"]), os.path.join(path, point["name"]),
                     dict(point.get("overrides", {}))) for point in sweep["points"]]
    return list(sweep["swept_keys"]), points
  except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
    raise SweepFileError(f"{file} is not a sweep file ({type(e).__name__}: {e}): "
                         "`python -m pgen sweep` writes {\"swept_keys\": [...], \"points\": "
                         "[{\"name\": ..., \"overrides\": {...}}]}. Write it again with "
                         "`python -m pgen sweep`, or pass the run workdirs.") from None


def find_runs(paths: list[str]) -> FoundRuns:
  """The runs that `paths` name: each a sweep directory (its sweep.json's points), a
  training workdir (has config.json), or a directory whose subdirectories are workdirs."""
  runs, swept = [], None
  for path in map(os.path.normpath, paths):
    prefix = os.path.basename(path) if len(paths) > 1 else ""
    if not os.path.isdir(path):
      raise RunNotFoundError(f"{path} is not a directory: pass a sweep directory, training "
                             "workdirs, or a directory of workdirs.")
    if os.path.isfile(os.path.join(path, SWEEP_FILE)):
      keys, points = _read_sweep(path, prefix)
      swept = list(dict.fromkeys((swept or []) + keys))
      runs += points
    elif workdir_files.is_run(path):
      runs.append(RunDir(path, path))
    else:
      found = [RunDir(os.path.join(prefix, name), os.path.join(path, name))
               for name in sorted(os.listdir(path))
               if workdir_files.is_run(os.path.join(path, name))]
      if not found:
        raise RunNotFoundError(
            f"{path} holds no pgen runs: no {SWEEP_FILE}, no config.json, and no subdirectory "
            "with a config.json. Pass a sweep directory (python -m pgen sweep), training "
            "workdirs (python -m pgen train --workdir), or a directory of them.")
      runs += found
  return FoundRuns(tuple(runs), None if swept is None else tuple(swept))


def _first_start(workdir: str) -> float | None:
  """Seconds since the epoch of the run's first start (run_record/start_<n>.json)."""
  times = []
  for path in workdir_files.start_records(workdir):
    with open(path) as f:
      times.append(datetime.datetime.fromisoformat(json.load(f)["start_time"]).timestamp())
  return min(times, default=None)


def _evaluated_values(workdir: str, metric: str) -> dict[int, float]:
  """{step: value} of `python -m pgen evaluate`'s metrics_<step>.json files."""
  values = {}
  for path in glob.glob(os.path.join(workdir, "metrics_*.json")):
    with open(path) as f:
      result = json.load(f)
    if isinstance(result.get(metric), (int, float)):
      values[int(result["step"])] = float(result[metric])
  return values


def _missing_note(source: str, metric: str, scalars: dict) -> str:
  if source == "evaluate":
    return (f"no metrics_<step>.json with {metric} (`python -m pgen evaluate --workdir` "
            "writes them)")
  if not scalars:
    return "no metrics.jsonl (a run of a pgen before it was written, or not logged yet)"
  return f"no eval/{metric} in metrics.jsonl (no in-training evaluation yet, or eval off)"


def summarize_run(run: RunDir, metric: str, source: str = "training") -> RunSummary:
  """`run`'s values of `metric` and its throughput and wall time, from its files."""
  # JAX, CLU and TensorFlow take seconds to load: find_runs's mistakes are reported first.
  from pgen import config as config_lib  # noqa: PLC0415
  from pgen.training import metrics_file
  if not workdir_files.is_run(run.workdir):
    return RunSummary(run.name, run.workdir, config_lib.flat(run.overrides), False, (), None,
                      None, None, None, f"not started: {run.workdir} has no config.json")
  settings = config_lib.flat(config_lib.from_workdir(run.workdir).to_dict())
  scalars = metrics_file.read_scalars(run.workdir)
  start = _first_start(run.workdir)
  values = (_evaluated_values(run.workdir, metric) if source == "evaluate" else
            {step: float(line[f"eval/{metric}"]) for step, line in scalars.items()
             if f"eval/{metric}" in line})
  evaluations = tuple(
      Evaluation(step, None if start is None or "time" not in scalars.get(step, {}) else
                 (scalars[step]["time"] - start) / 60, values[step]) for step in sorted(values))
  pick = min if direction(metric) == "lower" else max  # The earliest of equal values.
  best = pick(evaluations, key=lambda e: e.value) if evaluations else None
  speeds = [line["images_per_s"] for line in scalars.values() if "images_per_s" in line]
  times = [line["time"] for line in scalars.values() if "time" in line]
  return RunSummary(
      run.name, run.workdir, settings, True, evaluations,
      evaluations[-1].value if evaluations else None, best,
      statistics.fmean(speeds) if speeds else None,
      max(times) - start if times and start is not None else None,
      None if evaluations else _missing_note(source, metric, scalars))


def _differing_keys(summaries) -> tuple[str, ...]:
  """The config keys (but the seed) whose values differ between the started runs."""
  started = [s.settings for s in summaries if s.started]
  keys = dict.fromkeys(key for settings in started for key in settings)
  return tuple(key for key in keys if key != "seed" and len(
      {json.dumps(settings.get(key), sort_keys=True) for settings in started}) > 1)


def _grouping_keys(summaries, swept_keys, by) -> tuple[tuple[str, ...], str]:
  if by:
    known = dict.fromkeys(key for s in summaries for key in s.settings)
    for key in by:
      if key not in known:
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ArgumentError(f"by={key} is not a config key of these runs{hint}", argument="by")
    return tuple(by), "as asked"
  if swept_keys is not None:
    return tuple(key for key in swept_keys if key != "seed"), "the sweep's swept keys"
  return _differing_keys(summaries), "the config keys whose values differ"


def compare(found: FoundRuns, metric: str = "fd", *, by=None,
            source: str = "training") -> Comparison:
  """Every run of `found` summed up, grouped by `by` (config keys; default: the sweep's
  swept keys, else the keys whose values differ). The seed groups only when named."""
  metric = metric.removeprefix("eval/")
  direction(metric)
  if source not in SOURCES:
    raise ArgumentError(f"source={source} must be one of {', '.join(SOURCES)}.",
                        argument="source")
  summaries = tuple(summarize_run(run, metric, source) for run in found.runs)
  keys, keys_from = _grouping_keys(summaries, found.swept_keys, by)
  groups = {}
  for summary in summaries:
    values = tuple(summary.settings.get(key) for key in keys)
    groups.setdefault(json.dumps(values, sort_keys=True), (values, []))[1].append(summary)
  return Comparison(metric, source, keys, keys_from, summaries,
                    tuple(Group(values, tuple(runs)) for values, runs in groups.values()))


def _setting(value) -> str:
  if value is None:
    return reporting.MISSING
  return value if isinstance(value, str) else json.dumps(value)


def _spread(values, digits: int) -> str:
  values = [v for v in values if v is not None]
  return reporting.pool(values).format(digits) if values else reporting.MISSING


def _group_row(comparison: Comparison, group: Group) -> list[str]:
  digits = _DIGITS.get(comparison.metric, 3)
  with_metric = [run for run in group.runs if run.best is not None]
  n = (str(len(with_metric)) if len(with_metric) == len(group.runs) else
       f"{len(with_metric)} of {len(group.runs)}")
  return [*map(_setting, group.values), n,
          _spread([run.final for run in with_metric], digits),
          _spread([run.best.value for run in with_metric], digits),
          _spread([run.images_per_s for run in group.runs], 0),
          _spread([run.wall_s and run.wall_s / 60 for run in group.runs], 1)]


def _run_row(comparison: Comparison, run: RunSummary) -> list[str]:
  digits = _DIGITS.get(comparison.metric, 3)
  return [run.name, *(_setting(run.settings.get(key)) for key in comparison.keys),
          _setting(run.settings.get("seed")), reporting.format_value(run.final, digits),
          reporting.format_value(run.best and run.best.value, digits),
          reporting.MISSING if run.best is None else str(run.best.step),
          reporting.format_value(run.images_per_s, 0),
          reporting.format_value(run.wall_s and run.wall_s / 60, 1)]


def markdown(comparison: Comparison) -> str:
  """The groups' table (seeds pooled), the runs' table, and a note per run lacking the
  metric."""
  metric, keys = comparison.metric, comparison.keys
  where = (f"`eval/{metric}` in each run's metrics.jsonl (in-training evaluations)"
           if comparison.source == "training" else
           f"`{metric}` in each run's metrics_<step>.json (`python -m pgen evaluate`)")
  grouped = (f"Grouped by {', '.join(keys)} ({comparison.keys_from})" if keys else
             "One group: no setting differs but the seed")
  values = [f"final {metric}", f"best {metric}"]
  lines = [f"# {metric}: {direction(metric)} is better", "",
           f"From {where}. Final: the last evaluation; best: the {_BEST[direction(metric)]}. "
           f"{grouped}; a group's runs (its seeds) pooled: mean ± std (min-max), n of them "
           f"with {metric}. Wall time: first start to the last logged line.", "",
           *reporting.markdown_table([*keys, "n", *values, "images/s", "wall min"],
                                     [_group_row(comparison, g) for g in comparison.groups]),
           "", "## Runs", "",
           *reporting.markdown_table(
               ["run", *keys, "seed", *values, "best at step", "images/s", "wall min"],
               [_run_row(comparison, run) for run in comparison.runs])]
  notes = [f"- {run.name}: {run.note}." for run in comparison.runs if run.note]
  if notes:
    lines += ["", f"Runs without {metric} ({reporting.MISSING} above):", "", *notes]
  return "\n".join(lines) + "\n"


def write_csv(comparison: Comparison, path: str) -> None:
  """One row a run, the numbers unrounded, for a spreadsheet or pandas."""
  metric = comparison.metric
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["run", "workdir", *comparison.keys, "seed", f"final_{metric}",
                     f"best_{metric}", "best_step", "images_per_s", "wall_s", "note"])
    for run in comparison.runs:
      writer.writerow([run.name, run.workdir,
                       *(_csv_value(run.settings.get(key)) for key in comparison.keys),
                       _csv_value(run.settings.get("seed")), _csv_value(run.final),
                       _csv_value(run.best and run.best.value),
                       _csv_value(run.best and run.best.step), _csv_value(run.images_per_s),
                       _csv_value(run.wall_s), run.note or ""])


def _csv_value(value) -> str:
  if value is None:
    return ""
  return value if isinstance(value, str) else json.dumps(value)


def _group_curve(comparison: Comparison, group: Group, x_axis: str) -> reporting.Curve | None:
  """The group's mean over its runs at the steps they all evaluated, and each run."""
  x_of = (lambda e: e.step) if x_axis == "steps" else (lambda e: e.minutes)
  series = [{e.step: e for e in run.evaluations if x_of(e) is not None} for run in group.runs]
  series = [s for s in series if s]
  if not series:
    return None
  common = sorted(set.intersection(*map(set, series)))
  settings = ", ".join(f"{key}={_setting(value)}"
                       for key, value in zip(comparison.keys, group.values)) or "all runs"
  runs = tuple(([x_of(e) for e in s.values()], [e.value for e in s.values()])
               for s in series) if len(series) > 1 else ()
  return reporting.Curve(f"{settings} (n={len(series)})",
                         [statistics.fmean(x_of(s[step]) for s in series) for step in common],
                         [statistics.fmean(s[step].value for s in series) for step in common],
                         runs)


def plot(comparison: Comparison, path: str, x_axis: str = "steps") -> None:
  """The metric over training steps (or minutes since each run's first start): a line per
  group, the mean over its seeds, and a thin line per run."""
  curves = [curve for group in comparison.groups
            if (curve := _group_curve(comparison, group, x_axis)) is not None]
  if not curves:
    raise ArgumentError(f"plot={path}: no run has {comparison.metric} to draw"
                        f"{' with the time logged' if x_axis == 'minutes' else ''}.",
                        argument="plot")
  xlabel = "training step" if x_axis == "steps" else "minutes since the run's first start"
  reporting.plot_curves(path, [(xlabel, curves)],
                        f"{comparison.metric} ({direction(comparison.metric)} is better)",
                        log_y=comparison.metric == "fd", legend_below=True)
