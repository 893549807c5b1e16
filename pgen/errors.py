"""Errors that mean "the input is wrong", not "pgen has a bug".

`python -m pgen` prints a `PgenError` as one message naming the problem and its fix, without
a traceback (`--verbosity=1` adds it), and exits with status 1. Anything else is a bug and
keeps its traceback. Each class also derives from the built-in error it refines, so
callers of the library can catch `ValueError` or `FileNotFoundError` as before.
"""


class PgenError(Exception):
  """A problem with the user's input or files, with the fix in its message."""

  def command_line_message(self) -> str:
    """The message as `python -m pgen` prints it."""
    return str(self)


class ConfigError(PgenError, ValueError):
  """A config key is unknown, or its value has the wrong type or is out of range."""


class RunNotFoundError(PgenError, FileNotFoundError):
  """A workdir or checkpoint that a command needs is not there."""


class ArgumentError(PgenError, ValueError):
  """An argument does not fit the run or file it names (e.g. a class of an unconditional
  run, an .npz without `images`). When the message starts with the argument's name
  (`argument`), the command line prints it as the flag of that name (--class=...)."""

  def __init__(self, message: str, *, argument: str | None = None):
    super().__init__(message)
    self.argument = argument

  def command_line_message(self) -> str:
    return f"--{self}" if self.argument else str(self)


class CheckpointDamagedError(PgenError, OSError):
  """A checkpoint's files are truncated, emptied or missing (and no intact one is left)."""


class WorkdirWriteError(PgenError, OSError):
  """Writing to the workdir failed (no space, no permission, a read-only or vanished disk)."""
