r"""Puts runs side by side by one metric: per run its final and best value, the step of the
best, images/s and wall time; per setting (the sweep's swept keys, or --by) the same
pooled over seeds as mean ± std (min-max). Prints a Markdown table; --out and --plot keep it.

    python -m pgen compare runs/lr_r1 [--by optim.g_learning_rate,loss.r1_weight] \
        [--metric fd] [--source evaluate] [--plot fd.png [--x_axis minutes]] [--out table.md]
    python -m pgen compare runs/a runs/b runs/c      # workdirs, or a directory of them
"""

import os

from absl import app, flags

# What to compare, as arguments: a sweep directory (python -m pgen sweep), training
# workdirs, or directories of workdirs.
TAKES_PATHS = True
flags.DEFINE_list("by", None, "Config keys to group by, e.g. optim.g_learning_rate,loss.r1_weight "
                  "(default: the sweep's swept keys, else the keys whose values differ). Seeds "
                  "are pooled unless `seed` is named.")
flags.DEFINE_string("metric", "fd", "fd, kid, ms_ssim (lower is better); precision, recall, "
                    "density, coverage, classifier_score, class_entropy, class_accuracy ... "
                    "(higher is better).")
flags.DEFINE_enum("source", "training", ["training", "evaluate"], "Where values come from: the "
                  "in-training evaluations (eval/<metric> in metrics.jsonl) or the "
                  "metrics_<step>.json files of `python -m pgen evaluate`.")
flags.DEFINE_string("out", None, "Also write the table to this .md file, and one row a run "
                    "to a .csv beside it.")
flags.DEFINE_string("plot", None, "Draw the metric over training into this .png: a line a "
                    "group (the mean over its seeds), a thin line a run. Needs matplotlib.")
flags.DEFINE_enum("x_axis", "steps", ["steps", "minutes"], "--plot's x axis: training steps, "
                  "or minutes since each run's first start.")
FLAGS = flags.FLAGS


def main(argv) -> None:
  if not argv:
    raise app.UsageError("Name what to compare: a sweep directory, training workdirs, or a "
                         "directory of them (python -m pgen compare runs/lr_r1).")
  from pgen.experiments import compare  # After the paths are checked: loads JAX.
  found = compare.find_runs(argv)
  comparison = compare.compare(found, FLAGS.metric, by=FLAGS.by, source=FLAGS.source)
  text = compare.markdown(comparison)
  print(text, end="")
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      f.write(text)
    csv_path = os.path.splitext(FLAGS.out)[0] + ".csv"
    compare.write_csv(comparison, csv_path)
    print(f"Wrote {FLAGS.out} and {csv_path}.")
  if FLAGS.plot:
    compare.plot(comparison, FLAGS.plot, x_axis=FLAGS.x_axis)
    print(f"Wrote {FLAGS.plot}.")
