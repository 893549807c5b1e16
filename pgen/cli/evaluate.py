r"""Scores a run's samples (or images made elsewhere) against the dataset: FD, KID,
precision/recall, density/coverage, classifier score, class metrics, memorization.

    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000] \
        [--config FILE --config.eval.KEY=VALUE]    # score in another config's eval settings
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py
"""

from absl import app, flags
from ml_collections import config_flags

from pgen.cli import load_tensorflow

config_flags.DEFINE_config_file(
    "config", None, "With --npz: the config naming the dataset to compare with. With "
    "--workdir: its `eval` section replaces the run's.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("npz", None, "Score the uint8 `images` (and `labels`) of this file instead.")
flags.DEFINE_integer("num", 10000, "--workdir: how many samples to score.")
flags.DEFINE_integer("step", None, "--workdir: checkpoint step (default: the latest).")
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  if (FLAGS.workdir is None) == (FLAGS.npz is None):
    raise app.UsageError("Give one of --workdir (a run) or --npz (images made elsewhere).")
  if FLAGS.npz and FLAGS.config is None:
    raise app.UsageError("--config is required with --npz: it names the dataset to compare with.")
  from pgen import config as config_lib  # After flag parsing: loads JAX.
  from pgen.evaluation import evaluate
  config = config_lib.resolve(FLAGS.config) if FLAGS.config else None
  load_tensorflow()
  if FLAGS.npz:
    result = evaluate.evaluate_npz(FLAGS.npz, config)
  else:
    from pgen.generation import generate  # After TensorFlow loads quietly.
    result = generate.evaluate_checkpoint(FLAGS.workdir, step=FLAGS.step, num=FLAGS.num,
                                          eval_config=config.eval if config else None)
  evaluate.print_table(result)
