"""pgen's configuration: every key declared once, filled in and checked once, at load.

    config = resolve(get_config())                # a configs/*.py file's ConfigDict
    config = from_workdir("runs/fmnist")          # a run's config.json, from any pgen version
    print(KEYS["loss.r1_every"].doc)              # what a key means; .default, .check

Each key is a `pgen.core.config_keys.Key`: its default, type, range or choices, and doc.
pgen/config/schema.py declares the keys of the run, data, objective, augmentation,
evaluation and recovery; the model families declare theirs (pgen/models/). `defaults()` is
every key's default, what a config file starts from. `resolve` fills in what a config lacks,
rejects unknown keys (naming the closest known one), checks every value's type and range,
then the rules that read several keys (the families' among them), and returns a locked
ConfigDict: a config it returned is valid wherever it is read, and nothing after it needs
`.get(key, default)`.
"""

import difflib
import json
import os

import ml_collections
from absl import flags
from ml_collections import config_flags

from pgen.config.schema import KEYS, RENAMED, RULES, VERSION
from pgen.core import workdir as workdir_files
from pgen.core.config_keys import config_dict, with_keyword_keys_quoted
from pgen.errors import ConfigError, RunNotFoundError


def defaults() -> ml_collections.ConfigDict:
  """Every config key with its default: together, DCGAN on Fashion-MNIST at 32x32."""
  return config_dict(KEYS.values())


def flat(tree: dict, prefix: str = "") -> dict:
  """{"model.name": "dcgan", ...}: a (Config)dict's leaves by dotted key."""
  leaves = {}
  for key, value in tree.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      leaves.update(flat(value, f"{prefix}{key}."))
    else:
      leaves[prefix + key] = value
  return leaves


def _check_version(version) -> None:
  if not isinstance(version, int) or not 1 <= version <= VERSION:
    raise ConfigError(f"config_version={version!r}: this pgen reads config versions 1 to "
                      f"{VERSION}; a newer pgen wrote this config, so upgrade pgen to use it.")


def resolve(config) -> ml_collections.ConfigDict:
  """The complete, checked and locked config for `config` (a ConfigDict or a plain dict,
  e.g. a config.json); raises ConfigError naming the first bad key."""
  given = flat(config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
  _check_version(given.pop("config_version", 1))
  result = defaults()
  for name, value in given.items():
    name = RENAMED.get(name, name)
    if name not in KEYS:
      close = difflib.get_close_matches(name, list(KEYS), n=1)
      hint = f"; did you mean {close[0]}?" if close else ""
      raise ConfigError(f"{name} is not a pgen config key{hint} (pgen/config/schema.py and "
                        "pgen/models/ declare them all).")
    section, _, leaf = name.rpartition(".")
    node = result
    for part in filter(None, section.split(".")):
      node = node[part]
    node[leaf] = KEYS[name].typed(value)
  for name, value in flat(result.to_dict()).items():
    problem = KEYS[name].problem(value)
    if problem:
      raise ConfigError(problem)
  for rule in RULES:
    problem = rule(result)
    if problem:
      raise ConfigError(problem)
  result.lock()
  return result


def load(config_path: str, flag_args=()) -> ml_collections.ConfigDict:
  """The ConfigDict that `train --config config_path *flag_args` parses (unresolved):
  `config_path` is `PATH[:VARIANT]` (pgen.configs.path_of gives a packaged config's)."""
  argv = ["pgen", f"--config={config_path}", *with_keyword_keys_quoted(list(flag_args))]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=flag_values,
                                  lock_config=True, sys_argv=argv)
  try:
    flag_values(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    text = str(e).strip()
    if "Traceback (most recent call last)" in text:  # The config file raised: its last line.
      text = text.splitlines()[-1]
    given = " ".join([f"--config={config_path}", *flag_args])
    raise ConfigError(f"{given}: {' '.join(text.split()):.500}") from e
  if not isinstance(flag_values.config, ml_collections.ConfigDict):  # Unreadable: an error.
    raise ConfigError(f"--config={config_path}: no such config file (a configs/*.py, "
                      "optionally with :variant).")
  return flag_values.config


def from_workdir(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run in `workdir` was (last) started with."""
  path = workdir_files.config_path(workdir)
  if not os.path.isfile(path):
    raise RunNotFoundError(
        f"{path} is missing: {workdir} is not a pgen training workdir (train writes it at "
        "start). Pass the --workdir of a `python -m pgen train` run.")
  with open(path) as f:
    return resolve(json.load(f))
