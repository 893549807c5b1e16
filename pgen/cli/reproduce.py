r"""Re-runs a training run from its record into a new workdir and says whether it gives the
same state: exit status 0 when it does, 1 when it does not.

    python -m pgen reproduce runs/lr_r1/0007 [--steps 2000] [--out DIR]

It trains the run's config.json (same seed, same data) the way `train` does, up to the
newest checkpoint of the run or to --steps (a step the run still has a checkpoint of), into
--out (default <run>/reproduce; new or empty), and compares the two checkpoints of that
step array by array. Differences between the run's record and this machine (library
versions, git revision, devices, processes, host) are warnings; with the same versions and
layout the states must be equal bit for bit, otherwise within a relative difference
(pgen/experiments/reproduce.py says which and why). <out>/reproduce.json holds the verdict, the
warnings and the largest differences per group of arrays.
"""

import os

from absl import app, flags

from pgen.cli import load_tensorflow

TAKES_PATHS = True  # The workdir of the `python -m pgen train` run to reproduce.
flags.DEFINE_integer("steps", None, "Reproduce the first N steps; the run must still hold a "
                     "checkpoint of step N. Default: up to its newest checkpoint.")
flags.DEFINE_string("out", None, "A new or empty directory for the reproduction (default: "
                    "<run>/reproduce).")
FLAGS = flags.FLAGS


def main(argv) -> None:
  if len(argv) != 1:
    raise app.UsageError("Name one training workdir to reproduce: python -m pgen reproduce "
                         f"runs/fmnist (got {len(argv)} arguments: {argv}).")
  from pgen.core import compiler  # noqa: PLC0415  (after flag parsing: loads JAX)
  compiler.warn_if_accelerator_unused()
  load_tensorflow()
  from pgen.experiments.reproduce import (  # noqa: PLC0415
      REPORT_FILE, ReproductionMismatchError, reproduce)
  report = reproduce(argv[0], steps=FLAGS.steps, out=FLAGS.out)
  summary = (f"Step {report.step} of {report.original}, reproduced in {report.out}, "
             f"{report.verdict}. Report: {os.path.join(report.out, REPORT_FILE)}"
             + (f" ({len(report.warnings)} warnings)." if report.warnings else "."))
  if not report.matches:
    raise ReproductionMismatchError(summary[0].lower() + summary[1:])
  print(summary)
