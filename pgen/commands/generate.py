r"""Samples a run's EMA generator into a PNG grid or an .npz (needs no dataset and no
TensorFlow).

    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
    python -m pgen generate --workdir runs/fmnist --num 10000 --out samples.npz
    python -m pgen generate --workdir runs/sngan --num 64 --out bags.png --class Bag
"""

from absl import flags

flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("out", None, "Output path: .png (a grid; one per class for a conditional "
                    "run without --class) or .npz (`images`, uint8 (N, H, W, C); `labels`).")
flags.DEFINE_integer("num", 64, "How many images (per class for per-class grids).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_string("class", None, "Conditional runs: class index or name of every sample.")
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  from pgen.generate import generate
  generate(FLAGS.workdir, FLAGS.num, FLAGS.out, step=FLAGS.step, seed=FLAGS.seed,
           class_name=FLAGS["class"].value)
