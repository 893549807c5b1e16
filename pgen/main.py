r"""Command line: `python -m pgen <command> [flags]`.

    python -m pgen train    --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist \
                            [--config.KEY=VALUE ...]
    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "generate")

config_flags.DEFINE_config_file(
    "config", None, "A configs/*.py file (optionally `file.py:variant`).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory of the run: checkpoints, logs, samples.")
flags.DEFINE_integer("num", 64, "generate: how many images.")
flags.DEFINE_string("out", None, "generate: output path, .png (grid) or .npz (arrays).")
flags.DEFINE_integer("step", None, "generate: checkpoint step (default: the latest).")
flags.DEFINE_integer("seed", 0, "generate: seed of the latents.")
FLAGS = flags.FLAGS


def _usage_error(message: str) -> None:
  raise app.UsageError(f"{message}\nUsage: python -m pgen {{{','.join(COMMANDS)}}} [flags]")


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    _usage_error(f"Expected one command from {COMMANDS}, got {argv[1:]}.")
  if FLAGS.workdir is None:
    _usage_error("--workdir is required.")
  # Imported here so that `--help` and flag errors come back without loading TF and JAX.
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")  # The input pipeline must not take accelerator memory.

  if argv[1] == "train":
    if FLAGS.config is None:
      _usage_error("--config is required for train.")
    from pgen.train import train_and_evaluate
    train_and_evaluate(FLAGS.config, FLAGS.workdir)
  else:
    if FLAGS.out is None:
      _usage_error("--out is required for generate.")
    from pgen.generate import generate
    generate(FLAGS.workdir, FLAGS.num, FLAGS.out, step=FLAGS.step, seed=FLAGS.seed)
  logging.info("Done.")


def _quiet_checkpoint_logs() -> None:
  """Orbax logs every save step by step at INFO; keep its warnings and errors only."""
  import logging as std_logging

  class _DropOrbaxInfo(std_logging.Filter):
    def filter(self, record):
      return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(_DropOrbaxInfo())


def run():
  _quiet_checkpoint_logs()
  app.run(main, argv=sys.argv)
