r"""Exports a run's EMA generator for serving: its parameters (Orbax), a StableHLO function
(z, labels) -> uint8 images with a symbolic batch size (jax.export), a TensorFlow
SavedModel of the same function, and export.json.

    python -m pgen export --workdir runs/fmnist --out exports/fmnist [--step N]
    python -m pgen export --workdir runs/sg2 --out exports/sg2 --truncation 0.7  # StyleGAN2
    python -m pgen generate --export exports/fmnist --per_class 1000 --out catalog/
"""

import time

from absl import flags

from pgen.cli import define_render_flags, load_tensorflow, render_options

flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("out", None, "A new directory for the export.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
define_render_flags()  # Built into the exported function; export.json records them.
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  load_tensorflow()
  from pgen.generation.export import export  # noqa: PLC0415  (after TensorFlow loads quietly)
  start = time.time()
  record = export(FLAGS.workdir, FLAGS.out, step=FLAGS.step, options=render_options())
  size = sum(record["files"].values())
  print(f"Exported step {record['source_step']} of {FLAGS.workdir} to {FLAGS.out} "
        f"({size / 2**20:.1f} MiB, {time.time() - start:.0f} s): "
        + ", ".join(f"{name} {bytes_ / 2**20:.1f} MiB" for name, bytes_ in record["files"].items()))
