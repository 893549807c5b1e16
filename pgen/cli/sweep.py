r"""Trains every point of a sweep file, each in its own workdir, skipping points already
trained and resuming the others; or writes the sweep as a SLURM or Kubernetes array job.

    python -m pgen sweep --config configs/fashion_mnist_dcgan.py --sweep sweeps/lr_r1.py \
        --workdir runs/lr_r1 [--config.KEY=VALUE ...] [--parallel 2 | --slurm | --kubernetes]
    python -m pgen sweep ... --point 3      # point 3 alone (what an array task runs)

A sweep file's `get_sweep()` returns a list of overrides, one dict per training run:

    from pgen.experiments.sweeps import product, with_seeds   # and zipped
    def get_sweep():
      return with_seeds(product(**{"optim.g_learning_rate": (1e-4, 2e-4),
                                   "loss.r1_weight": (0.1, 1.0)}), seeds=(0, 1))

Every point is checked against the config before any trains. `--config.KEY=VALUE` apply to
every point (a point's own value wins). Point I trains in `<workdir>/<I:04d>`, as
`python -m pgen train --config CONFIG --workdir <workdir>/<I:04d> --config.KEY=VALUE ...`;
`<workdir>/sweep.json` lists the points. A point that fails leaves its output's end in
`<workdir>/<I:04d>/sweep_error.txt` and the others run on; the command then exits with an
error listing the failed points. The same command again resumes the sweep.
"""

from absl import flags
from ml_collections import config_flags

from pgen.errors import ArgumentError

config_flags.DEFINE_config_file(
    "config", None, "A configs/*.py file (optionally `file.py:variant`); its --config.KEY=VALUE "
    "overrides apply to every point.", lock_config=True)
flags.DEFINE_string("sweep", None, "A sweep file: its get_sweep() returns the points' overrides.")
flags.DEFINE_string("workdir", None, "Directory of the sweep: sweep.json and a workdir per point.")
flags.DEFINE_integer("parallel", None, "Points trained at a time, each on its share of the "
                     "cores (default 1); with --slurm or --kubernetes, the array job's "
                     "concurrency (default all).", lower_bound=1)
flags.DEFINE_integer("point", None, "Train this point alone (what array tasks run).",
                     lower_bound=0)
flags.DEFINE_bool("slurm", False, "Write <workdir>/sweep.sbatch, a SLURM job array of the "
                  "points, and submit it if sbatch is on PATH.")
flags.DEFINE_bool("kubernetes", False, "Write <workdir>/sweep_job.yaml, a Kubernetes Indexed "
                  "Job of the points.")
flags.mark_flags_as_required(["config", "sweep", "workdir"])
FLAGS = flags.FLAGS


def _check_modes() -> None:
  if FLAGS.slurm and FLAGS.kubernetes:
    raise ArgumentError("slurm and --kubernetes: choose one.", argument="slurm")
  if FLAGS.point is not None and (FLAGS.slurm or FLAGS.kubernetes):
    raise ArgumentError("point trains one point here; it is what the job's tasks run, so it "
                        "goes without --slurm or --kubernetes.", argument="point")


def main(argv) -> None:
  del argv
  _check_modes()
  from pgen.experiments import sweep_jobs, sweep_launch, sweeps  # After flag parsing: loads JAX.
  sweep = sweeps.plan(config_flags.get_config_filename(FLAGS["config"]),
                      sweeps.load_points(FLAGS.sweep),
                      config_flags.get_override_values(FLAGS["config"]), FLAGS.sweep)
  if FLAGS.point is not None and FLAGS.point >= len(sweep.points):
    raise ArgumentError(f"point={FLAGS.point}, but {FLAGS.sweep} has {len(sweep.points)} "
                        f"points (0 to {len(sweep.points) - 1}).", argument="point")
  sweeps.write_manifest(FLAGS.workdir, sweep)
  if FLAGS.slurm:
    path = sweep_jobs.write_slurm(FLAGS.workdir, sweep, FLAGS.parallel)
    print(f"Wrote {path}.\n{sweep_jobs.submit_slurm(path)}")
  elif FLAGS.kubernetes:
    path = sweep_jobs.write_kubernetes(FLAGS.workdir, sweep, FLAGS.parallel)
    print(f"Wrote {path}; its first lines say how to fill it in and submit it.")
  else:
    sweep_launch.run_points(sweep, FLAGS.workdir, parallel=FLAGS.parallel or 1,
                            only=FLAGS.point)
