"""How a config key is declared: its default, its type, the check of its range or choices
and its doc, in one record that pgen/config/__init__.py and each model family (pgen/models/) use.

    W_DIM = Key("model.w_dim", 512, "Width of w, the mapping network's output.", at_least(1))
    config = config_dict([W_DIM])        # the defaults as a ConfigDict: config.model.w_dim == 512
    W_DIM.typed(256.0)                   # ConfigError: model.w_dim=256.0 must be an integer.
    W_DIM.problem(0)                     # 'model.w_dim=0 must be >= 1.'

A key's type is its default's; a key whose default is None may be None or a value of
`kind`, and `kind=object` takes whatever its check accepts (data.resolution: a side or a
pair). Rules that read several keys (a family that lacks an option, a group size that must
divide the batch) are functions of the whole config that return a message or None.
"""

import dataclasses
import keyword
from typing import Any, Callable, Iterable

import ml_collections

from pgen.errors import ConfigError

# What a value must be, or None when it is in range: a Key's `check`.
Check = Callable[[Any], str | None]
# What is wrong with a whole config (one complete message), or None: a cross-key rule.
Rule = Callable[[ml_collections.ConfigDict], str | None]

_KIND_NAMES = {bool: "True or False", int: "an integer", float: "a number", str: "a string",
               tuple: "a tuple"}


@dataclasses.dataclass(frozen=True)
class Key:
  """One config key, declared once: `name` is dotted ("model.w_dim")."""
  name: str
  default: Any
  doc: str
  check: Check | None = None
  kind: type | None = None  # The type where the default does not say it (None, a union).

  @property
  def optional(self) -> bool:
    return self.default is None

  @property
  def value_type(self) -> type:
    return self.kind or type(self.default)

  def field(self):
    """The default as a ConfigDict holds it: a FieldReference where a plain value would make
    ml_collections refuse the key's other values (None, or another type of a union), and
    tell config_flags how to parse a command-line override."""
    if self.optional or self.value_type is object:
      return ml_collections.FieldReference(self.default, field_type=self.value_type)
    return self.default

  def typed(self, value):
    """`value` in this key's type: lists become tuples, ints floats where floats are
    expected; else a ConfigError naming the key."""
    expected = self.value_type
    if value is None and self.optional:
      return None
    if expected is object:  # A union that the check sorts out.
      return tuple(value) if isinstance(value, list) else value
    if expected is tuple and isinstance(value, (tuple, list)):
      return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
      return float(value)
    if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
      return value
    kind = _KIND_NAMES.get(expected, expected.__name__)
    raise ConfigError(
        f"{self.name}={value!r} must be {kind}{' or None' if self.optional else ''}.")

  def problem(self, value) -> str | None:
    """The message for a typed value out of this key's range, or None (None is in range)."""
    problem = self.check(value) if self.check and value is not None else None
    return f"{self.name}={value!r} {problem}." if problem else None


def by_name(keys: Iterable[Key]) -> dict[str, Key]:
  """{name: Key}, refusing a name declared twice (each key has one default and one check)."""
  declared = {}
  for key in keys:
    if key.name in declared:
      raise ValueError(f"Config key {key.name} is declared twice.")
    declared[key.name] = key
  return declared


def config_dict(keys: Iterable[Key]) -> ml_collections.ConfigDict:
  """A ConfigDict of the keys' defaults, a section per dotted prefix."""
  config = ml_collections.ConfigDict()
  for key in keys:
    *sections, name = key.name.split(".")
    node = config
    for section in sections:
      if section not in node:
        node[section] = ml_collections.ConfigDict()
      node = node[section]
    node[name] = key.field()
  return config


def at_least(minimum, noun: str = "") -> Check:
  """`noun` names the type in the message where users are told it ("an integer")."""
  must = f"must be {noun} >= {minimum}" if noun else f"must be >= {minimum}"
  return lambda value: None if value >= minimum else must


def greater_than(minimum) -> Check:
  return lambda value: None if value > minimum else f"must be > {minimum}"


def between(low, high) -> Check:
  return lambda value: None if low <= value <= high else f"must be in [{low}, {high}]"


def above_up_to(low, high) -> Check:
  return lambda value: None if low < value <= high else f"must be in ({low}, {high}]"


def one_of(choices) -> Check:
  return lambda value: None if value in choices else f"is unknown; choose one of {tuple(choices)}"


def with_keyword_keys_quoted(argv: list[str]) -> list[str]:
  """`argv` with each --config.KEY override whose path holds a Python keyword written as a
  subscript (--config.init.from=X -> --config.init['from']=X): ml_collections parses a key
  path as Python, where `from` cannot follow a dot."""
  def quoted(arg: str) -> str:
    path, equals, value = arg.partition("=")
    parts = path.split(".")
    if parts[0] != "--config" or not any(keyword.iskeyword(p) for p in parts[1:]):
      return arg
    rest = "".join(f"['{p}']" if keyword.iskeyword(p) else f".{p}" for p in parts[1:])
    return f"--config{rest}{equals}{value}"
  return [quoted(arg) for arg in argv]
