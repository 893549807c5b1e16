r"""Command line: `python -m pgen <command> [flags]`, one module per command in
pgen/cli/; `python -m pgen <command> --help` lists that command's flags.

    python -m pgen train    --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist \
                            [--config.KEY=VALUE ...]
    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py
    python -m pgen prepare  --src DIR --name NAME [--labels labels.csv] [--out DATA_DIR]
    python -m pgen export   --workdir runs/fmnist --out exports/fmnist
    python -m pgen sweep    --config C --sweep S --workdir runs/S [--parallel 2 | --slurm]
    python -m pgen compare  runs/S [--by KEY,KEY] [--metric fd] [--plot fd.png]
    python -m pgen reproduce runs/S/0003 [--steps N]
    python -m pgen review   --export exports/fmnist --port 8800 [--reviewer anna] \
                            [--condition label=Dress]
    python -m pgen feedback fit --reviews exports/fmnist/reviews.sqlite \
                            --out exports/fmnist/acceptance

A mistake in the input (a config key, a dataset name, a workdir) is printed as one
message that says what to change, with exit status 1; `--verbosity=1` adds the traceback
and the libraries' start-up logs (TensorFlow's C++ logs, JAX's backend probing).
"""

import difflib
import importlib
import logging as std_logging
import os
import sys
import traceback

from absl import app, flags, logging

from pgen import configs
from pgen.core import config_keys
from pgen.errors import PgenError

COMMANDS = ("train", "generate", "evaluate", "prepare", "export", "reproduce", "compare", "sweep",
            "review", "feedback")
_HELP = ("--help", "-h", "--helpshort", "-?")


def _usage() -> str:
  return (f"Usage: python -m pgen {{{','.join(COMMANDS)}}} [flags]\n"
          "       python -m pgen COMMAND --help   (that command's flags)")


def _verbosity(argv) -> int:
  """--verbosity / -v from the raw arguments: start-up logs are set before flags parse."""
  for i, arg in enumerate(argv):
    for prefix in ("--verbosity=", "-v="):
      if arg.startswith(prefix):
        return int(arg[len(prefix):])
    if arg in ("--verbosity", "-v") and i + 1 < len(argv):
      return int(argv[i + 1])
  return 0


class _DropLibraryInfo(std_logging.Filter):
  """INFO logs of the libraries say nothing about the run: Orbax's save steps, JAX's
  probing of absent backends ("Unable to initialize backend 'tpu'"), TFDS's dataset info.
  Orbax's warnings and errors stay, without the tracebacks of its background threads."""

  def filter(self, record):
    if record.levelno >= std_logging.WARNING:
      if "/orbax/" in record.pathname:  # A failed async save: pgen's own error line explains.
        record.exc_info, record.exc_text = None, None
      return True
    return not any(part in record.pathname
                   for part in ("/orbax/", "xla_bridge.py", "/tensorflow_datasets/"))


def _log_unraisable(unraisable) -> None:
  """An exception raised where nothing can catch it (a library's coroutine or future
  collected at exit, e.g. Orbax's reads of a damaged checkpoint): debug information, not
  something to print after pgen's own error line."""
  logging.debug("Exception ignored in %r: %r", unraisable.object, unraisable.exc_value)


def _quiet_startup() -> None:
  """No C++ logs from TensorFlow (see commands.load_tensorflow), no INFO logs from the
  libraries and no "Exception ignored in" reports of their abandoned coroutines."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.get_absl_handler().addFilter(_DropLibraryInfo())
  sys.unraisablehook = _log_unraisable


def _module_flags_help(module_name: str) -> str:
  """The flags a module defined, without absl's line naming the module ("" for none)."""
  text = flags.FLAGS.module_help(module_name).strip()
  return text.split("\n", 1)[1] if "\n" in text else ""


def _print_help(command: str, module) -> None:
  # The command's own flags, then the shared ones it defined through pgen.cli's helpers
  # (only the running command's module is imported, so those are the ones it accepts).
  flags_help = "\n".join(filter(None, (_module_flags_help(module.__name__),
                                        _module_flags_help("pgen.cli"))))
  print(f"{module.__doc__.strip()}\n\nFlags:\n{flags_help}\n\n"
        f"--verbosity=1 adds tracebacks and library logs; python -m pgen {command} --helpfull "
        "lists every flag.")


def _error(command: str, message: str, verbose: bool) -> None:
  if verbose:
    traceback.print_exc()
  print(f"pgen {command}: error: {message}", file=sys.stderr)
  sys.exit(1)


def _parse_flags(command: str, verbose: bool, argv):
  """absl's flag parsing, with the errors of --config files and overrides (a mistyped
  key, a config file that raises) as one message."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback (most recent call last)" in text:  # A config file raised: its last line.
      text = text.split("\n")[0] + " " + text.strip().split("\n")[-1]
    _error(command, f"{text}\nSee: python -m pgen {command} --help", verbose)
  except (AttributeError, KeyError) as e:  # A --config.KEY override that names no key.
    while isinstance(e.args[0], BaseException):
      e = e.args[0]
    text = " ".join(str(e.args[0]).split())
    _error(command, f"a --config override names a key the config does not have: {text}",
           verbose)
  except Exception as e:  # noqa: BLE001  A config file's own error.
    _error(command, f"loading the flags failed: {type(e).__name__}: {e}", verbose)


def _run_command(command: str, module, argv) -> None:
  if argv and not getattr(module, "TAKES_PATHS", False):  # compare and reproduce take paths.
    raise app.UsageError(f"Unexpected arguments {argv}; flags take the form --name=value.")
  try:
    module.main(argv)
  except PgenError as e:
    _error(command, e.command_line_message(), logging.get_verbosity() >= 1)
  logging.info("Done.")


def _packaged_paths(command: str, argv: list[str]) -> list[str]:
  """`argv` with --config NAME[:VARIANT] and --sweep NAME of a config or sweep that ships
  with pgen (pgen/configs/) as its file's path; paths are left as they are. A --config that
  is neither is one message listing the packaged configs (ml_collections would fail later,
  with a traceback)."""
  folders = {"--config": configs.FOLDER, "--sweep": os.path.join(configs.FOLDER, "sweeps")}
  result = list(argv)
  for i, arg in enumerate(argv):
    flag, equals, value = arg.partition("=")
    if flag not in folders or not (equals or i + 1 < len(argv)):
      continue
    index = i if equals else i + 1
    path = configs.path_of(value if equals else argv[index], folders[flag])
    result[index] = f"{flag}={path}" if equals else path
    if flag == "--config" and not os.path.isfile(path.partition(":")[0]):
      print(f"pgen {command}: error: --config={path}: no such config file, and no packaged "
            f"config of that name; the packaged ones: {', '.join(configs.names())}.",
            file=sys.stderr)
      sys.exit(1)
  return result


def run(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  command = argv[1] if len(argv) > 1 else None
  if command in _HELP or command is None:
    print(__doc__.strip() + "\n\n" + _usage())
    sys.exit(0 if command else 2)
  if command not in COMMANDS:
    guess = difflib.get_close_matches(command, COMMANDS, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    print(f"pgen: unknown command {command!r}{hint}; choose one of {', '.join(COMMANDS)}.\n"
          f"{_usage()}", file=sys.stderr)
    sys.exit(2)
  argv = config_keys.with_keyword_keys_quoted(_packaged_paths(command, argv))
  sys.argv = argv  # ml_collections' config flags find their --config.KEY overrides there.
  module = importlib.import_module(f"pgen.cli.{command}")  # Defines its flags.
  if any(arg in _HELP for arg in argv[2:]):
    _print_help(command, module)
    sys.exit(0)
  verbose = _verbosity(argv) >= 1
  if not verbose:
    _quiet_startup()
  app.run(lambda args: _run_command(command, module, args[1:]),
          argv=[f"{argv[0]} {command}", *argv[2:]],
          flags_parser=lambda args: _parse_flags(command, verbose, args))
