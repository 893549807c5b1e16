r"""Quality per minute on this machine: trains Fashion-MNIST recipes for a fixed wall-clock
budget, scores the EMA generator at fixed points, and writes bench/QUALITY.md (a section
per dataset) and bench/quality.png (FD against minutes and against images seen, every
Fashion-MNIST recipe on one figure; another dataset's runs in bench/quality_<dataset>.png).

    python bench/quality.py --recipe dcgan [--seeds 0,1,2]       # a recipe of RECIPES
    python bench/quality.py --all                                # every recipe at its seeds
    python bench/quality.py --report                             # tables and plot only
    python bench/quality.py --config configs/x.py --set model.g_width=32 --name mine
    python bench/quality.py --recipe stylegan2 --workdir runs/q   # its generator kept

The RGB catalog's runs (conditional on category and colour; scored in the catalog's own
classifier, with each attribute's accuracy) are --config runs on a catalog made with
`python bench/make_rgb_catalog.py --out photos --per_combination 200` and `python -m pgen
prepare --src photos --labels photos/labels.csv --name rgb_catalog --out DIR`:

    python bench/quality.py --config configs/catalog_resnet64.py:cpu --name ... \
        --set 'data.name="rgb_catalog"' --set 'data.data_dir="DIR"' \
        --set 'data.label_keys=["label","colour"]' --minutes 5,10,15,20

Points: 5, 10 and 15 minutes of training (the wall clock of the steps and their input;
compilation and scoring are not counted; StyleGAN2, R3GAN and the default's seed 0 go on
to 30) and 100k, 250k and 500k images seen, those a run reaches by its last minute point
(`--minutes` sets other points). At each point the EMA generator makes 10,000 images
(balanced over the classes for conditional recipes) scored against the 60,000 training
images in pgen's classifier features (a --config run on another dataset: in its
eval.feature_extractor's, which the table of recipes names): FD, KID, precision/recall,
density/coverage, class entropy, and class accuracy when conditional.
Every run appends a line to bench/quality/results.jsonl: recipe, config and overrides,
seed, commit, machine, throughput and the metrics at each point. The tables and the plot
are made from all lines, the newest run of each (recipe, seed) counting.

Runs are timed by the wall clock, so run nothing else on the machine meanwhile; each line
keeps the run's images/s, which shows a disturbed run.
"""

import argparse
import dataclasses
import datetime
import importlib.util
import itertools
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The tables and plot read as `pgen compare`'s do.
from pgen.experiments import reporting  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "quality", "results.jsonl")
REPORT = os.path.join(ROOT, "bench", "QUALITY.md")
PLOT = os.path.join(ROOT, "bench", "quality.png")
MINUTES = (5, 10, 15)
KIMG = (100, 250, 500)
NUM_SAMPLES = 10_000
# What eval.feature_extractor's features are, for the table of recipes.
FEATURE_SPACES = {"classifier": "pgen's Fashion-MNIST classifier",
                  "catalog": "the dataset's own catalog classifier",
                  "inception": "Inception-v3 (FID)"}
FASHION_MNIST = "fashion_mnist"
DATASET_TITLES = {FASHION_MNIST: "Fashion-MNIST (28x28 grayscale, at 32x32)",
                  "rgb_catalog": "RGB catalog (bench/make_rgb_catalog.py --per_combination 200, "
                                 "prepared; 64x48, 5 categories x 4 colours)"}
METRICS = ("fd", "kid", "precision", "recall", "density", "coverage", "class_entropy",
           "class_accuracy")

@dataclasses.dataclass(frozen=True)
class Recipe:
  config_file: str
  overrides: dict = dataclasses.field(default_factory=dict)
  seeds: tuple = (0,)
  what: str = ""
  minutes: tuple = MINUTES
  long_seeds: tuple = ()  # Seeds that go on to LONG, beside StyleGAN2's and R3GAN's.

  def minutes_for(self, seed: int) -> tuple:
    return LONG if seed in self.long_seeds else self.minutes


DCGAN = "configs/fashion_mnist_dcgan.py:classic"  # The recipes tried start from it.
LONG = (5, 10, 15, 20, 25, 30)  # The newer families beside DCGAN at the same wall clock.

# The shipped configs first; the others are the recipes tried for a faster default
# (losers included: the table is the evidence).
RECIPES = {
    "dcgan": Recipe("configs/fashion_mnist_dcgan.py", seeds=(0, 1, 2), long_seeds=(0,),
                    what="the default config (dcgan_fast_r1_strong's settings)"),
    "dcgan_classic": Recipe(DCGAN, what="the default config before: the DCGAN paper's recipe"),
    "dcgan_r1_ada": Recipe("configs/fashion_mnist_dcgan_r1_ada.py", what="shipped"),
    "sngan_cond": Recipe("configs/fashion_mnist_sngan_cond.py", what="shipped, conditional",
                         minutes=(5, 10, 15, 20)),
    "sngan_cond_projection": Recipe("configs/fashion_mnist_sngan_cond.py",
                                    {"model.conditioning": "projection"},
                                    what="the conditional config with a projection D",
                                    minutes=(5, 10, 15, 20)),
    "stylegan2": Recipe("configs/fashion_mnist_stylegan2.py", what="shipped", minutes=LONG),
    "stylegan2_fast": Recipe("configs/fashion_mnist_stylegan2.py:fast", minutes=LONG,
                             what="shipped small-budget variant: 4x the rates, no PL, no ADA"),
    "r3gan": Recipe("configs/fashion_mnist_r3gan.py", minutes=LONG,
                   what="shipped: R3GAN's recipe, narrowed"),
    "r3gan_default_optim": Recipe("configs/fashion_mnist_r3gan.py", {
        "optim.g_learning_rate": 5e-4, "optim.d_learning_rate": 5e-4,
        "optim.g_betas": [0.5, 0.99], "optim.d_betas": [0.5, 0.99],
        "schedule.learning_rate_end": 1.0, "schedule.beta2_end": 0.0},
        what="r3gan with the default job's Adam settings, constant", minutes=LONG),
    "dcgan_r1": Recipe(DCGAN, {"loss.r1_weight": 0.1, "model.minibatch_std": 4},
                       what="lazy R1 (gamma 0.1, every 16) and minibatch stddev"),
    "dcgan_fast": Recipe(DCGAN, {"optim.g_learning_rate": 5e-4, "optim.d_learning_rate": 5e-4,
                                 "optim.g_betas": [0.5, 0.99], "optim.d_betas": [0.5, 0.99],
                                 "ema.half_life_images": 50_000},
                         what="learning rates 5e-4, Adam b2 0.99, EMA half-life 50k images"),
    "dcgan_fast_r1": Recipe(DCGAN, {"optim.g_learning_rate": 5e-4, "optim.d_learning_rate": 5e-4,
                                    "optim.g_betas": [0.5, 0.99], "optim.d_betas": [0.5, 0.99],
                                    "ema.half_life_images": 50_000, "loss.r1_weight": 0.1,
                                    "model.minibatch_std": 4},
                            what="dcgan_fast with dcgan_r1's R1"),
    "dcgan_fast_r1_strong": Recipe(DCGAN, {
        "optim.g_learning_rate": 5e-4, "optim.d_learning_rate": 5e-4,
        "optim.g_betas": [0.5, 0.99], "optim.d_betas": [0.5, 0.99],
        "ema.half_life_images": 100_000, "loss.r1_weight": 0.5, "model.minibatch_std": 4},
        what="dcgan_fast_r1 with R1 gamma 0.5 and an EMA half-life of 100k images"),
}


def _load_config(path: str, overrides: dict):
  spec, _, variant = path.partition(":")
  module_spec = importlib.util.spec_from_file_location("quality_config", os.path.join(ROOT, spec))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(variant) if variant else module.get_config()
  for key, value in overrides.items():
    node = config
    *sections, name = key.split(".")
    for section in sections:
      node = node[section]
    node[name] = value
  return config


def _parse_value(text: str):
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return text


def _machine() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
  return f"{model}, {os.cpu_count()} cores"


def _commit() -> str:
  rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                       text=True).stdout.strip()
  dirty = subprocess.run(["git", "status", "--porcelain", "--", "pgen", "configs"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
  return rev + ("+changes" if dirty else "")


def _sample(sampler, state, config, num_classes, key):
  """NUM_SAMPLES EMA images in chunks of 1,000 (and their labels when conditional)."""
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from pgen.gan import sampling  # noqa: PLC0415
  labels = sampling.balanced_labels(NUM_SAMPLES, num_classes)
  chunks = []
  for i, start in enumerate(range(0, NUM_SAMPLES, 1000)):
    chunk_labels = None if labels is None else labels[start:start + 1000]
    chunks.append(sampler(state.ema_g_params, state.g_batch_stats, jax.random.fold_in(key, i),
                          1000, chunk_labels))
  return np.concatenate(chunks), labels


def _save_run(workdir: str, config, mesh, info, state) -> None:
  """The final state as a training workdir (config.json, data_info.json, a checkpoint), so
  that `python -m pgen generate --workdir` and `export` read it."""
  from pgen.training import checkpointing, run_record  # noqa: PLC0415
  os.makedirs(workdir, exist_ok=True)
  run_record.write_run_record(workdir, config, mesh, 0)
  run_record.write_data_info(workdir, info)
  manager = checkpointing.create_manager(workdir, config)
  checkpointing.save(manager, int(state.step), state)
  checkpointing.finish(manager)


def train_and_score(config, minutes=MINUTES, kimg=KIMG, progress=print,
                    workdir: str | None = None) -> dict:
  """Trains `config` to the last of `minutes` of training time, scoring at every point of
  `minutes` and of `kimg` it reaches; with `workdir`, leaves the final state there as a run."""
  import jax  # noqa: PLC0415

  from pgen import config as config_lib, data, models  # noqa: PLC0415
  from pgen.core import sharding
  from pgen.evaluation.scoring import Evaluator  # noqa: PLC0415
  from pgen.gan import sampling
  from pgen.gan.state import build  # noqa: PLC0415
  from pgen.training.compiled_step import compile_train_step  # noqa: PLC0415

  config.eval.num_samples, config.eval.reference_split = NUM_SAMPLES, "train"
  config.eval.num_reference = None
  config = config_lib.resolve(config)
  mesh = sharding.make_mesh()
  dataset = data.open_dataset(config)
  config = models.for_dataset(config, dataset.info.num_classes)
  setup = build(config, mesh, dataset.info.image_shape, dataset.info.num_classes,
                label_sizes=dataset.info.label_sizes)
  train_step = compile_train_step(config, setup, mesh)
  state = setup.init()
  batches = dataset.batches(config, mesh, start_step=0)
  first = next(batches)
  start = time.perf_counter()
  train_step.compile(state, first)
  compile_s = time.perf_counter() - start
  evaluator = Evaluator(config, dataset.builder)
  sampler = sampling.make_sampler(setup.generator, config.model.latent_dim, mesh)
  key = jax.random.fold_in(sampling.grid_key(config.seed), 1)
  images_per_step = data.images_per_step(config)
  pending = sorted([("minutes", m, m * 60.0) for m in minutes] +
                   [("kimg", k, None) for k in kimg], key=lambda p: (p[2] is None, p[1]))
  points, training_s, images, step, extractor = [], 0.0, 0, 0, None
  for batch in itertools.chain([first], batches):
    tick = time.perf_counter()
    state, metrics = train_step.at(step)(state, batch)
    jax.block_until_ready(state.step)
    training_s += time.perf_counter() - tick
    step, images = step + 1, images + images_per_step
    due = [p for p in pending if (p[0] == "minutes" and training_s >= p[2]) or
           (p[0] == "kimg" and images >= p[1] * 1000)]
    for kind, value, _ in due:
      pending.remove((kind, value, _))
      losses = {k: float(sharding.to_host(v)) for k, v in metrics.items()}
      generated, labels = _sample(sampler, state, config, setup.num_classes, key)
      result = evaluator(generated, labels)
      extractor = result.get("feature_extractor")
      point = {"kind": kind, "at": value, "minutes": training_s / 60, "images": images,
               "step": step, **{m: result[m] for m in METRICS if m in result},
               **{k: v for k, v in result.items() if k.startswith("accuracy/")},
               "losses_finite": all(map(lambda v: v == v and abs(v) != float("inf"),
                                        losses.values()))}
      points.append(point)
      progress(f"  {kind} {value}: step {step}, {images} images, {training_s / 60:.1f} min, "
               f"FD {point['fd']:.2f}, recall {point.get('recall', float('nan')):.3f}")
    if not any(p[0] == "minutes" for p in pending):
      break
  if workdir:
    _save_run(workdir, config, mesh, dataset.info, state)
  return {"compile_s": compile_s, "images_per_s": images / training_s, "steps": step,
          "points": points, "feature_extractor": extractor, "config": config.to_dict()}


def run(name: str, config_path: str, overrides: dict, seed: int, minutes, kimg,
        results: str = RESULTS, workdir: str | None = None) -> dict:
  config = _load_config(config_path, overrides)
  config.seed = seed
  started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  commit = _commit()  # Of the code this process imported.
  print(f"{name} seed {seed}: {config_path} {overrides or ''}", flush=True)
  result = train_and_score(config, minutes, kimg, progress=lambda s: print(s, flush=True),
                           workdir=workdir and os.path.join(workdir, f"{name}_seed{seed}"))
  line = {"recipe": name, "config_file": config_path, "overrides": overrides, "seed": seed,
          "commit": commit, "machine": _machine(), "started": started, **result}
  os.makedirs(os.path.dirname(results), exist_ok=True)
  with open(results, "a") as f:
    f.write(json.dumps(line) + "\n")
  return line


def _results(results: str = RESULTS) -> list[dict]:
  if not os.path.exists(results):
    return []
  latest = {}
  for line in open(results):
    entry = json.loads(line)
    latest[(entry["recipe"], entry["seed"])] = entry
  return list(latest.values())


def _at(entry, kind, value, metric):
  return next((p.get(metric) for p in entry["points"] if p["kind"] == kind and p["at"] == value),
              None)


def _settings(entry) -> str:
  """What a run trained, less its seed and total_steps (the runs here stop by the clock)."""
  config = {k: v for k, v in entry["config"].items() if k not in ("seed", "total_steps")}
  return json.dumps(config, sort_keys=True)


def _attribute_metrics(entries) -> list[str]:
  """The per-attribute accuracies (accuracy/<attribute>) the runs on combined labels have."""
  return sorted({k for e in entries for p in e["points"] for k in p if k.startswith("accuracy/")})


def _by_point_table(entries, kind, points, unit) -> list[str]:
  """FD at each point of `kind`, then the last point's recall, precision, class accuracy
  (and each attribute's accuracy, for runs on combined labels)."""
  last_point_metrics = ("recall", "precision", "class_accuracy", *_attribute_metrics(entries))
  rows = []
  for e in entries:
    reached = [p["at"] for p in e["points"] if p["kind"] == kind]
    last = max(reached) if reached else None
    rows.append([e["recipe"], str(e["seed"]),
                 *(reporting.format_value(_at(e, kind, v, "fd")) for v in points),
                 *(reporting.format_value(_at(e, kind, last, metric), 3)
                   for metric in last_point_metrics),
                 f"{e['images_per_s']:.0f}", e["commit"]])
  return reporting.markdown_table(
      ["recipe", "seed", *(f"FD @{v} {unit}" for v in points), "recall", "precision",
       "class acc.", *(f"{m.split('/', 1)[1]} acc." for m in last_point_metrics[3:]),
       "images/s", "commit"], rows)


def _seeds_table(entries, at) -> list[str]:
  """FD and recall at `at` minutes pooled over the seeds of runs with the same settings."""
  by_settings = {}  # settings -> seed -> the run (one a seed: the same seed is the same run)
  for e in entries:
    if _at(e, "minutes", at, "fd") is not None:
      by_settings.setdefault(_settings(e), {}).setdefault(e["seed"], e)
  rows = []
  for by_seed in by_settings.values():
    runs = [by_seed[seed] for seed in sorted(by_seed)]
    if len(runs) > 1:
      rows.append([" = ".join(dict.fromkeys(e["recipe"] for e in by_seed.values())),
                   ", ".join(str(e["seed"]) for e in runs),
                   *(reporting.pool([_at(e, "minutes", at, metric) for e in runs]).format(digits)
                     for metric, digits in (("fd", 2), ("recall", 3)))])
  return reporting.markdown_table(["recipe", "seeds", "FD", "recall"], rows)


def _by_dataset(entries) -> dict:
  """{dataset name: its runs}, Fashion-MNIST first: FDs compare within a dataset only."""
  groups = {}
  for e in sorted(entries, key=lambda e: _dataset(e) != FASHION_MNIST):
    groups.setdefault(_dataset(e), []).append(e)
  return groups


def _dataset(entry) -> str:
  return entry["config"].get("data", {}).get("name", FASHION_MNIST)


def report(results: str = RESULTS, plot: str = PLOT) -> str:
  """bench/QUALITY.md's tables from every run in `results`, a section per dataset; draws
  Fashion-MNIST's plot into `plot`, another dataset's beside it (quality_<dataset>.png)."""
  order = list(RECIPES)
  entries = sorted(_results(results), key=lambda e: (
      order.index(e["recipe"]) if e["recipe"] in order else len(order), e["recipe"], e["seed"]))
  lines = ["# Quality per minute", "",
           "Generated by `python bench/quality.py` (its docstring says how); edit the script, "
           "not this file.", ""]
  machines = sorted({e["machine"] for e in entries})
  lines += [f"Machine{'s' if len(machines) > 1 else ''}: " + "; ".join(machines) + ".", ""]
  for dataset, runs in _by_dataset(entries).items():
    lines += [f"## {DATASET_TITLES.get(dataset, dataset)}", ""]
    for kind, points, unit in (("minutes", sorted({p["at"] for e in runs for p in e["points"]
                                                    if p["kind"] == "minutes"}), "min"),
                               ("kimg", KIMG, "k images")):
      lines += [f"### By {'training time' if kind == 'minutes' else 'images seen'}", "",
                "Recall, precision and accuracies are at each run's last point.", "",
                *_by_point_table(runs, kind, points, unit), ""]
    _plot(runs, plot if dataset == FASHION_MNIST else
          f"{os.path.splitext(plot)[0]}_{dataset}.png")
  at = MINUTES[-1]
  lines += ["## Seeds", "", f"FD and recall at {at} minutes over the seeds of runs with the same "
            "settings (recipes that train the same config count together): mean ± std "
            "(min-max).", "", *_seeds_table(entries, at)]
  recipes = []
  for e in entries:
    if e["seed"] == min(x["seed"] for x in entries if x["recipe"] == e["recipe"]):
      overrides = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in e["overrides"].items())
      what = RECIPES[e["recipe"]].what if e["recipe"] in RECIPES else "--config run"
      scored_in = FEATURE_SPACES[e["config"]["eval"]["feature_extractor"]]
      if e["config"]["eval"]["feature_extractor"] == "catalog":  # Its own per dataset version.
        scored_in += f" (`{e.get('feature_extractor') or 'an earlier version'}`)"
      recipes.append([e["recipe"], what, f"`{e['config_file']}`",
                      overrides or reporting.MISSING, scored_in])
  lines += ["", "## Recipes", "",
            "FDs compare only between runs scored in the same features (the last column).", "",
            *reporting.markdown_table(["recipe", "what", "config", "overrides", "scored in"],
                                      recipes)]
  return "\n".join(lines) + "\n"


def _plot(entries, path: str) -> None:
  """FD against training minutes and against images seen, a line a run (of one dataset)."""
  by_time, by_images = [], []
  for e in entries:
    points = sorted(e["points"], key=lambda p: p["images"])
    fds = [p["fd"] for p in points]
    by_time.append(reporting.Curve(f"{e['recipe']} (seed {e['seed']})",
                                   [p["minutes"] for p in points], fds))
    by_images.append(reporting.Curve(f"{e['recipe']} (seed {e['seed']})",
                                     [p["images"] / 1000 for p in points], fds))
  reporting.plot_curves(path, [("training minutes", by_time),
                               ("thousands of images seen", by_images)],
                        f"FD ({FEATURE_SPACES[entries[0]['config']['eval']['feature_extractor']]}, "
                        "10k samples)", log_y=True, colour_map="tab20")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--recipe", action="append", default=[], choices=list(RECIPES))
  parser.add_argument("--all", action="store_true", help="Every recipe at its seeds.")
  parser.add_argument("--report", action="store_true", help="Only write QUALITY.md and the plot.")
  parser.add_argument("--config", help="A config file (with --name and --set) instead of a recipe.")
  parser.add_argument("--set", action="append", default=[], help="KEY=VALUE (JSON values).")
  parser.add_argument("--name", help="The recipe name of --config runs.")
  parser.add_argument("--seeds", help="Comma-separated seeds (default: the recipe's).")
  parser.add_argument("--minutes", help="Comma-separated minute points (default: the "
                      "recipe's, e.g. 5,10,15).")
  parser.add_argument("--workdir", help="Leave each run's final state in WORKDIR/<recipe>_seed<s> "
                      "(a run that generate and export read).")
  parser.add_argument("--results", default=RESULTS,
                      help="The results file runs append to (e.g. another checkout's).")
  args = parser.parse_args()
  minutes = tuple(json.loads(m) for m in args.minutes.split(",")) if args.minutes else None
  seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
  runs = []
  if args.config:
    overrides = dict((k, _parse_value(v)) for k, v in (s.split("=", 1) for s in args.set))
    runs += [(args.name or os.path.basename(args.config), args.config, overrides, s,
              minutes or MINUTES) for s in seeds or (0,)]
  for name in (list(RECIPES) if args.all else args.recipe):
    recipe = RECIPES[name]
    runs += [(name, recipe.config_file, recipe.overrides, s,
              minutes or recipe.minutes_for(s)) for s in seeds or recipe.seeds]
  for name, path, overrides, seed, run_minutes in runs:
    run(name, path, overrides, seed, run_minutes, KIMG, args.results, args.workdir)
  if runs or args.report:
    with open(REPORT, "w") as f:
      f.write(report(args.results))
    print(f"Wrote {REPORT} and {PLOT}.")


if __name__ == "__main__":
  main()
