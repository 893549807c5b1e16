r"""Trains a config, resuming from the workdir's latest checkpoint.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist \
        [--config.KEY=VALUE ...]

Multi-process launches add --coordinator_address, --num_processes and --process_id (or
PGEN_COORDINATOR_ADDRESS, PGEN_NUM_PROCESSES, PGEN_PROCESS_ID); SLURM, Open MPI and TPU
pods are detected.
"""

from absl import flags
from ml_collections import config_flags

import pgen
from pgen.cli import load_tensorflow

config_flags.DEFINE_config_file(
    "config", None, "A configs/*.py file (optionally `file.py:variant`).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory of the run: checkpoints, logs, samples.")
flags.DEFINE_string("coordinator_address", None,
                    "Multi-process: host:port of process 0 (or PGEN_COORDINATOR_ADDRESS).")
flags.DEFINE_integer("num_processes", None, "Multi-process: how many (or PGEN_NUM_PROCESSES).")
flags.DEFINE_integer("process_id", None, "Multi-process: this one's index (or PGEN_PROCESS_ID).")
flags.DEFINE_integer("heartbeat_timeout_s", 100,
                     "Multi-process: a process silent this long counts as dead; all stop.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  from pgen import config as config_lib  # After flag parsing: loads JAX.
  from pgen.core import compiler, distributed
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         heartbeat_timeout_s=FLAGS.heartbeat_timeout_s)
  config = config_lib.resolve(FLAGS.config)  # Checked before anything loads or compiles.
  compiler.warn_if_accelerator_unused()
  load_tensorflow()
  pgen.train(config, FLAGS.workdir)
