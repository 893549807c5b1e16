"""The commands of `python -m pgen`, one module each: its flags (defined when the module is
imported, so `python -m pgen <command> --help` shows that command's alone) and `main`."""

import contextlib
import os
import sys

from absl import flags, logging


def define_render_flags() -> None:
  """--truncation and --noise_mode: what generate and export ask of a StyleGAN2 generator."""
  flags.DEFINE_float("truncation", None, "StyleGAN2: truncation psi, w pulled towards the "
                     "running mean w_avg (per class when conditional); e.g. 0.7. Default: none.")
  flags.DEFINE_enum("noise_mode", None, ["const", "random", "none"], "StyleGAN2's noise inputs: "
                    "each layer's fixed noise (const, the default), noise drawn from the latents "
                    "(random), or none.")


def render_options():
  """The generators.RenderOptions of --truncation and --noise_mode."""
  from pgen.generation.generators import RenderOptions  # noqa: PLC0415  (loads JAX)
  return RenderOptions(truncation=flags.FLAGS.truncation, noise_mode=flags.FLAGS.noise_mode)


@contextlib.contextmanager
def _stderr_file_silenced():
  """Sends what C++ code writes to file descriptor 2 to /dev/null (Python's own errors
  still reach the terminal once it is restored)."""
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def load_tensorflow() -> None:
  """Imports TensorFlow, without its C++ start-up notices unless --verbosity asks for them
  (its oneDNN notice is printed while it loads, whatever TF_CPP_MIN_LOG_LEVEL says). Called
  once the command's input is checked, so a mistake is reported without loading it."""
  if logging.get_verbosity() >= 1:
    import tensorflow  # noqa: F401
    return
  with _stderr_file_silenced():
    import tensorflow  # noqa: F401
