r"""Command line: `python -m pgen <command> [flags]`.

    python -m pgen train    --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist \
                            [--config.KEY=VALUE ...]
    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
    python -m pgen evaluate --workdir runs/fmnist [--step N] [--num 10000]
    python -m pgen evaluate --npz samples.npz --config configs/fashion_mnist_dcgan.py
    python -m pgen prepare  --src DIR --name NAME [--labels labels.csv] [--out DATA_DIR]
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "generate", "evaluate", "prepare")

config_flags.DEFINE_config_file(
    "config", None, "A configs/*.py file (optionally `file.py:variant`).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory of the run: checkpoints, logs, samples.")
flags.DEFINE_integer("num", None, "generate, evaluate: how many images (64; 10000).")
flags.DEFINE_string("npz", None, "evaluate: score the uint8 `images` of this file instead.")
flags.DEFINE_string("out", None, "generate: output path, .png (grid) or .npz (arrays); "
                    "prepare: the TFDS data_dir to write to (default: TFDS's).")
flags.DEFINE_integer("step", None, "generate, evaluate: checkpoint step (default: latest).")
flags.DEFINE_integer("seed", 0, "generate: seed of the latents.")
flags.DEFINE_string("class", None, "generate, conditional runs: class index or name of every "
                    "sample (default: one grid per class).")
flags.DEFINE_string("coordinator_address", None,
                    "Multi-process: host:port of process 0 (or PGEN_COORDINATOR_ADDRESS).")
flags.DEFINE_integer("num_processes", None, "Multi-process: how many (or PGEN_NUM_PROCESSES).")
flags.DEFINE_integer("process_id", None, "Multi-process: this one's index (or PGEN_PROCESS_ID).")
flags.DEFINE_integer("heartbeat_timeout_s", 100,
                     "Multi-process: a process silent this long counts as dead; all stop.")
flags.DEFINE_string("src", None, "prepare: folder of images; class = first-level subfolder.")
flags.DEFINE_string("name", None, "prepare: name of the new TFDS dataset (data.name to train).")
flags.DEFINE_string("labels", None, "prepare: CSV with `file` (relative to --src), optional "
                    "`label` (else the subfolder) and attribute columns (extra labels).")
flags.DEFINE_bool("trim", True, "prepare: crop uniform borders (product whitespace).")
flags.DEFINE_bool("dedup", True, "prepare: drop exact and near-exact copies (perceptual hash).")
flags.DEFINE_integer("min_size", 32, "prepare: skip images whose shorter side is smaller.")
flags.DEFINE_integer("max_size", 1024, "prepare: shrink longer sides to this; 0 = keep all sizes.")
flags.DEFINE_enum("encoding", "png", ["png", "jpeg"], "prepare: how images are stored.")
flags.DEFINE_string("dataset_version", None, "prepare: e.g. 1.0.0 (default: the next one).")
FLAGS = flags.FLAGS


def _usage_error(message: str) -> None:
  raise app.UsageError(f"{message}\nUsage: python -m pgen {{{','.join(COMMANDS)}}} [flags]")


def _prepare() -> None:
  """`prepare`: builds the dataset, prints its report (also written next to it)."""
  if FLAGS.src is None or FLAGS.name is None:
    _usage_error("prepare needs --src (the folder of images) and --name (the new dataset).")
  from pgen.data import folder, images, report
  options = images.CleanOptions(trim=FLAGS.trim, min_size=FLAGS.min_size,
                                max_size=FLAGS.max_size, encoding=FLAGS.encoding)
  result = folder.prepare(FLAGS.src, FLAGS.name, out=FLAGS.out, labels_csv=FLAGS.labels,
                          options=options, dedup=FLAGS.dedup, version=FLAGS.dataset_version)
  print(report.report_markdown(result))
  print(f"Wrote {result['path']} (report.md, report.json, manifest.json there).")


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    _usage_error(f"Expected one command from {COMMANDS}, got {argv[1:]}.")
  if argv[1] == "prepare":
    _prepare()
    return
  if FLAGS.workdir is None and not (argv[1] == "evaluate" and FLAGS.npz):
    _usage_error("--workdir is required.")
  # Imported here so that `--help` and flag errors come back without loading TF and JAX.
  from pgen import distributed
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         heartbeat_timeout_s=FLAGS.heartbeat_timeout_s)
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")  # The input pipeline must not take accelerator memory.

  if argv[1] == "train":
    if FLAGS.config is None:
      _usage_error("--config is required for train.")
    from pgen.train import train_and_evaluate
    train_and_evaluate(FLAGS.config, FLAGS.workdir)
  elif argv[1] == "generate":
    if FLAGS.out is None:
      _usage_error("--out is required for generate.")
    from pgen.generate import generate
    generate(FLAGS.workdir, FLAGS.num or 64, FLAGS.out, step=FLAGS.step, seed=FLAGS.seed,
             class_name=FLAGS["class"].value)
  else:
    from pgen.evaluation import evaluate
    if FLAGS.npz:
      if FLAGS.config is None:
        _usage_error("--config is required with --npz: it names the dataset to compare with.")
      result = evaluate.evaluate_npz(FLAGS.npz, FLAGS.config)
    else:
      # With --config, its eval section (e.g. feature_extractor=inception) replaces the run's.
      result = evaluate.evaluate_run(FLAGS.workdir, step=FLAGS.step, num=FLAGS.num or 10000,
                                     eval_config=FLAGS.config.eval if FLAGS.config else None)
    evaluate.print_table(result)
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
