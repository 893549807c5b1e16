r"""Sweeps as data: a sweep file's `get_sweep()` lists the config overrides of each training
run (a point); every point is resolved and checked against the config before any runs.

    # sweeps/lr_r1.py
    from pgen.experiments.sweeps import product, with_seeds

    def get_sweep():
      return with_seeds(product(**{"optim.g_learning_rate": (1e-4, 2e-4),
                                   "loss.r1_weight": (0.1, 1.0)}), seeds=(0, 1))

    sweep = plan("configs/fashion_mnist_dcgan.py:smoke", load_points("sweeps/lr_r1.py"))
    write_manifest("runs/lr_r1", sweep)    # sweep.json; 0000/overrides.json, 0001/...
    sweep.train_flags(sweep.points[3])     # ["--config.optim.g_learning_rate=0.0001", ...]

A point is checked twice: its values as Python gives them (pgen.config.resolve words any
problem: an unknown key with the closest known one, a type, a range, a rule across keys),
then as `python -m pgen train` will read them back from its command line, which must give
the same config, so what was checked is what trains. `base_overrides` (the sweep command's
own `--config.KEY=VALUE`) apply to every point; a point's own value of a key wins.
"""

import dataclasses
import difflib
import importlib.util
import itertools
import json
import os

import ml_collections

from pgen import config as config_lib
from pgen.core import files
from pgen.errors import ArgumentError, ConfigError

MANIFEST = "sweep.json"
OVERRIDES = "overrides.json"


def product(*sweeps: list[dict], **axes) -> list[dict]:
  """Every combination of the axes' values (and of the points of each list in `sweeps`,
  which come first), the first slowest: product(a=(1, 2), b=(3, 4)) is a1b3 a1b4 a2b3 a2b4."""
  factors = [list(points) for points in sweeps]
  factors += [[{key: value} for value in _axis(key, values)] for key, values in axes.items()]
  return [dict(item for part in parts for item in part.items())
          for parts in itertools.product(*factors)]


def zipped(**axes) -> list[dict]:
  """The axes side by side: zipped(a=(1, 2), b=(3, 4)) is a1b3 a2b4. They must be of one
  length, so that a value missing from one axis is an error, not a silently shorter sweep."""
  columns = {key: _axis(key, values) for key, values in axes.items()}
  lengths = {key: len(values) for key, values in columns.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"zipped() needs axes of one length; got {lengths}.")
  return [dict(zip(columns, row)) for row in zip(*columns.values())]


def with_seeds(points: list[dict], seeds) -> list[dict]:
  """Each point once per seed (the seed varying fastest): repeats that tell a setting's
  effect from the run-to-run spread."""
  return product(points, seed=seeds)


def _axis(key: str, values) -> list:
  if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
    raise ValueError(f"The axis {key} needs a list of values, got {values!r}.")
  return list(values)


def load_points(path: str) -> list[dict]:
  """The points of the sweep file at `path`, each a {dotted key: value} that JSON holds."""
  if not os.path.isfile(path):
    raise ArgumentError(f"sweep={path}: no such file.", argument="sweep")
  spec = importlib.util.spec_from_file_location("pgen_sweep_file", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    points = module.get_sweep()
  except Exception as e:  # noqa: BLE001  The sweep file's own error, as one line.
    raise ArgumentError(f"sweep={path}: running its get_sweep() failed: "
                        f"{type(e).__name__}: {e}", argument="sweep") from e
  if not isinstance(points, (list, tuple)) or not points:
    raise ArgumentError(f"sweep={path}: get_sweep() must return a non-empty list of "
                        f"override dicts, got {points!r:.200}.", argument="sweep")
  return [_as_json(path, index, point) for index, point in enumerate(points)]


def _as_json(path: str, index: int, point) -> dict:
  """The point as its overrides.json holds it (tuples become lists), or an error naming it."""
  if not isinstance(point, dict) or not all(isinstance(key, str) for key in point):
    raise ArgumentError(f"sweep={path}: point {index} is {point!r:.200}; each point must be a "
                        "dict of dotted config keys.", argument="sweep")
  try:
    return json.loads(json.dumps(point, allow_nan=False))
  except (TypeError, ValueError) as e:
    raise ArgumentError(f"sweep={path}: point {index} {point!r:.200}: {e}; values must be "
                        "numbers, strings, booleans or lists of them.", argument="sweep") from e


@dataclasses.dataclass(frozen=True)
class Point:
  """One training run of a sweep: its index, the sweep file's overrides and the config."""
  index: int
  overrides: dict
  config: ml_collections.ConfigDict  # Resolved: base config, base overrides, then these.

  @property
  def name(self) -> str:
    """Its workdir below the sweep's."""
    return f"{self.index:04d}"


@dataclasses.dataclass(frozen=True)
class Sweep:
  config_path: str  # A configs/*.py file, optionally `file.py:variant`.
  sweep_path: str
  base_overrides: dict  # Every point's `--config.KEY=VALUE`, before its own.
  points: tuple[Point, ...]
  swept_keys: tuple[str, ...]  # The keys that take more than one value across the points.

  def train_flags(self, point: Point) -> list[str]:
    """The `--config.KEY=VALUE` flags that give `train` this point's config."""
    return override_flags({**self.base_overrides, **point.overrides})

  def manifest(self) -> dict:
    return {"config": self.config_path, "sweep": self.sweep_path,
            "base_overrides": _json(self.base_overrides), "swept_keys": list(self.swept_keys),
            "points": [{"index": p.index, "name": p.name, "overrides": p.overrides}
                       for p in self.points]}


def _json(value):
  return json.loads(json.dumps(value))


def command_line_value(key: str, value) -> str:
  """`value` as ml_collections' override parser reads it back for `key`: numbers by repr
  (exact for floats), tuples as Python literals; strings as they are for a string key, quoted
  for a key of several types (data.resolution, augment.policy) whose parser reads literals."""
  if value is None:
    raise ConfigError(f"{key}=None cannot be passed on train's command line (it would read "
                      "as the text 'None'); leave the key out of the point, or set None in "
                      "the config file.")
  if isinstance(value, list):
    value = tuple(value)
  if isinstance(value, str) and config_lib.KEYS[key].value_type is not object:
    return value
  return repr(value)


def override_flags(overrides: dict) -> list[str]:
  return [f"--config.{key}={command_line_value(key, value)}" for key, value in overrides.items()]


def _check_known(key: str) -> None:
  if key not in config_lib.KEYS:
    close = difflib.get_close_matches(key, list(config_lib.KEYS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"{key} is not a pgen config key{hint}")


def _resolve_point(config_path: str, base: dict, overrides: dict) -> ml_collections.ConfigDict:
  """The point's config, checked; then `train`'s reading of its command line, which must be
  the same config."""
  for key in overrides:
    _check_known(key)
  config = config_lib.resolve({**base, **overrides})
  as_trained = config_lib.resolve(config_lib.load(config_path, override_flags(overrides)))
  wanted, got = config_lib.flat(config.to_dict()), config_lib.flat(as_trained.to_dict())
  for key, value in wanted.items():
    if got[key] != value:
      raise ConfigError(f"{key}={value!r} reads back from train's command line as "
                        f"{got[key]!r}; give it in a form that survives "
                        f"--config.{key}=VALUE.")
  return config


def _swept_keys(points: list[Point]) -> tuple[str, ...]:
  keys = dict.fromkeys(key for point in points for key in point.overrides)
  values = [config_lib.flat(point.config.to_dict()) for point in points]
  return tuple(key for key in keys if len({json.dumps(flat[key]) for flat in values}) > 1)


def plan(config_path: str, points: list[dict], base_overrides: dict | None = None,
         sweep_path: str = "") -> Sweep:
  """Every point resolved against the config at `config_path` with `base_overrides` (flat,
  Python values) and its own overrides; raises a ConfigError naming the first bad point."""
  base_overrides = dict(base_overrides or {})
  base = {**config_lib.flat(config_lib.load(config_path).to_dict()), **base_overrides}
  try:
    config_lib.resolve(base)
  except ConfigError as e:
    raise ConfigError(f"--config={config_path}, before any point's overrides: {e}") from e
  resolved, seen = [], {}
  for index, overrides in enumerate(points):
    where = f"point {index} {json.dumps(overrides)}"
    key = json.dumps(overrides, sort_keys=True)
    if key in seen:
      raise ConfigError(f"{where} repeats point {seen[key]}; give each point once (use "
                        "with_seeds() for repeats that differ by seed).")
    seen[key] = index
    try:
      config = _resolve_point(config_path, base, {**base_overrides, **overrides})
    except ConfigError as e:
      raise ConfigError(f"{where}: {e}") from e
    resolved.append(Point(index, overrides, config))
  return Sweep(config_path, sweep_path, base_overrides, tuple(resolved), _swept_keys(resolved))


def point_workdir(workdir: str, point: Point) -> str:
  return os.path.join(workdir, point.name)


def _write_json(path: str, value) -> None:
  """Written whole or not at all: array tasks starting together write the same files."""
  files.write_whole(path, json.dumps(value, indent=2) + "\n")


def _difference(old: dict, new: dict) -> str | None:
  for field in ("config", "base_overrides"):
    if old.get(field) != new[field]:
      return f"{field} {old.get(field)!r} there, {new[field]!r} now"
  old_points = [p["overrides"] for p in old.get("points", [])]
  new_points = [p["overrides"] for p in new["points"]]
  if len(old_points) != len(new_points):
    return f"{len(old_points)} points there, {len(new_points)} now"
  for index, (a, b) in enumerate(zip(old_points, new_points)):
    if a != b:
      return f"point {index} is {json.dumps(a)} there, {json.dumps(b)} now"
  return None


def write_manifest(workdir: str, sweep: Sweep) -> None:
  """`<workdir>/sweep.json` and each point's `overrides.json`. A workdir that holds this
  sweep already is resumed; one that holds another sweep is refused (its points' runs would
  mix with the new ones')."""
  manifest = sweep.manifest()
  path = os.path.join(workdir, MANIFEST)
  if os.path.isfile(path):
    with open(path) as f:
      difference = _difference(json.load(f), manifest)
    if difference:
      raise ArgumentError(
          f"workdir={workdir} holds a different sweep ({path}: {difference}). Re-running the "
          "same sweep resumes it; give a new sweep a new --workdir.", argument="workdir")
  _write_json(path, manifest)
  for point in sweep.points:
    _write_json(os.path.join(point_workdir(workdir, point), OVERRIDES), point.overrides)
