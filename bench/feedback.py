r"""The feedback loop measured: a simulated reviewer rates a trained generator's samples,
`feedback fit` learns from the ratings, and the share of samples the reviewer accepts is
measured before, with rejection sampling (`generate --accept`) and after fine-tuning
(`train --config.feedback.*`), with FD and recall beside each (pgen's classifier features,
against the training split). The first row is real images of the test split: the share
this reviewer accepts of the data itself, and the FD of real images.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist
    python bench/feedback.py --workdir runs/fmnist --config configs/fashion_mnist_dcgan.py \
        [--ratings 300] [--threshold 0.9] [--samples 5000] [--min_accept 0.8] \
        [--finetune_steps 1500] [--weight 1.0] [--out bench/feedback] \
        [--scratch runs/feedback_bench]

The reviewer (pgen.feedback.simulated_reviewer.confident_garment) accepts a sample when pgen's
Fashion-MNIST classifier gives its most likely class at least --threshold. It rates seeds
0 .. ratings-1 through the same database as the review page; every measurement uses other
seeds (from 1,000,000). Fine-tuning continues a copy of the workdir for --finetune_steps
with the same config file. Writes OUT/results.md (the table), OUT/results.json and sample
grids before, rejection-sampled and after; prints the table. The ratings database, the
acceptance model and the fine-tuned run go to SCRATCH.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pgen import config as config_lib
from pgen.core import pixels
from pgen.data import pipeline, sources  # noqa: E402
from pgen.evaluation import evaluate  # noqa: E402
from pgen.feedback import acceptance, reviews, simulated_reviewer  # noqa: E402
from pgen.generation import catalog, generators

MEASURE_SEED = 1_000_000


def measured(name, images, judge, config) -> dict:
  metrics = evaluate.evaluate_images(images, config)
  return {"generator": name, "samples": len(images),
          "accepted": float(judge(images, None).mean()), "fd": metrics["fd"],
          "recall": metrics["recall"], "precision": metrics["precision"]}


def seeded_images(generator, num: int) -> np.ndarray:
  seeds = np.arange(MEASURE_SEED, MEASURE_SEED + num)
  return np.concatenate([generator.render(generators.latents_for_seeds(generator, chunk), None)
                         for chunk in np.array_split(seeds, max(num // 500, 1))])


def rejection_sampled(generator, model, num: int, min_accept: float):
  """The first `num` samples from MEASURE_SEED up with P(accept) >= min_accept, and how many
  candidates that took."""
  rule = catalog.Acceptance(model, min_accept, max_candidates=50 * num)
  kept, seeds = [], []
  for chunk_seeds, images, _ in catalog.candidates(generator, None, MEASURE_SEED, num, rule):
    kept.append(images)
    seeds.append(chunk_seeds)
  last_seed = np.concatenate(seeds)[-1]
  return np.concatenate(kept), int(last_seed - MEASURE_SEED + 1)


def fine_tune(args, workdir: str, model_dir: str, base_step: int) -> str:
  tuned = os.path.join(args.scratch, "finetuned_run")
  shutil.rmtree(tuned, ignore_errors=True)
  shutil.copytree(workdir, tuned, ignore=shutil.ignore_patterns("*.lock", "events.out.*"))
  command = [sys.executable, "-m", "pgen", "train", "--config", args.config, "--workdir", tuned,
             f"--config.total_steps={base_step + args.finetune_steps}",
             f"--config.feedback.acceptance={model_dir}", f"--config.feedback.weight={args.weight}",
             "--config.eval.every_steps=0", *args.override]
  print("$", " ".join(command), flush=True)
  start = time.time()
  subprocess.run(command, check=True)
  print(f"fine-tuned {args.finetune_steps} steps in {time.time() - start:.0f} s", flush=True)
  return tuned


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="A trained unconditional run.")
  parser.add_argument("--config", default="configs/fashion_mnist_dcgan.py",
                      help="The config file it was trained with (fine-tuning continues it).")
  parser.add_argument("--override", action="append", default=[],
                      help="A --config.KEY=VALUE the run was trained with (repeatable).")
  parser.add_argument("--ratings", type=int, default=300)
  parser.add_argument("--threshold", type=float, default=0.9)
  parser.add_argument("--samples", type=int, default=5000)
  parser.add_argument("--min_accept", type=float, default=0.8)
  parser.add_argument("--finetune_steps", type=int, default=1500)
  parser.add_argument("--weight", type=float, default=1.0)
  parser.add_argument("--out", default="bench/feedback")
  parser.add_argument("--scratch", default="runs/feedback_bench")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  os.makedirs(args.scratch, exist_ok=True)
  judge = simulated_reviewer.confident_garment(args.threshold)
  config = config_lib.from_workdir(args.workdir)
  base = generators.load(args.workdir)

  db = os.path.join(args.scratch, reviews.FILE_NAME)
  for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
      os.remove(db + suffix)
  store = reviews.ReviewStore.open(db, base)
  simulated_reviewer.rate_seeds(store, base, range(args.ratings), judge)
  model, report = acceptance.fit(store, base)
  model_dir = os.path.join(args.scratch, "acceptance")
  model.save(model_dir)
  print(acceptance.format_report(report), flush=True)

  real, _ = pipeline.load_split(sources.get_builder(config.data), config, "test")
  rows = [measured("real images (test split)", real[:args.samples], judge, config),
          measured(f"trained (step {base.step})", seeded_images(base, args.samples), judge,
                   config)]
  kept, drawn = rejection_sampled(base, model, args.samples, args.min_accept)
  rows.append({**measured(f"rejection sampling, P(accept) >= {args.min_accept}", kept, judge,
                          config), "candidates": drawn})
  tuned = generators.load(fine_tune(args, args.workdir, model_dir, base.step))
  tuned_images = seeded_images(tuned, args.samples)
  rows.append(measured(f"fine-tuned {args.finetune_steps} steps, weight {args.weight}",
                       tuned_images, judge, config))
  for name, images in (("before", seeded_images(base, 100)), ("rejection", kept[:100]),
                       ("finetuned", tuned_images[:100])):
    pixels.save_png(pixels.image_grid(images), os.path.join(args.out, f"{name}.png"))

  lines = [f"Simulated reviewer: pgen's classifier >= {args.threshold} on one class; "
           f"{report['ratings']} ratings ({report['accepted']} accepted) of seeds 0-"
           f"{args.ratings - 1}; acceptance model CV AUC {report['cv_auc']:.3f}.", "",
           "| samples of | images | accepted by the reviewer | FD | recall | precision |",
           "|---|---|---|---|---|---|"]
  for row in rows:
    drawn_note = f" (of {row['candidates']} drawn)" if "candidates" in row else ""
    lines.append(f"| {row['generator']} | {row['samples']}{drawn_note} | "
                 f"{100 * row['accepted']:.1f}% | {row['fd']:.2f} | {row['recall']:.3f} | "
                 f"{row['precision']:.3f} |")
  table = "\n".join(lines) + "\n"
  command = " ".join(["python", "bench/feedback.py", *sys.argv[1:]])
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(f"`{command}`\n\n{table}")
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"command": command, "fit": report, "rows": rows}, f, indent=2)
  print(table)


if __name__ == "__main__":
  main()
