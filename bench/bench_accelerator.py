r"""The train step of each model family on this machine's accelerator, fp32 and bf16, at
several per-device batch sizes: images/s, step ms, TFLOP/s, MFU, memory, compile time.

    python bench/bench_accelerator.py [--out bench/accelerator] [--budget_s 420]
    python bench/bench_accelerator.py --tiny            # seconds on a CPU (CI runs it)
    python bench/bench_accelerator.py --only resnet128 --dtypes bfloat16 --batches 64 \
        --profile /tmp/trace                           # a jax.profiler trace of one entry

Batches come from `data.name="synthetic"` (made on the device: the step alone, no input
pipeline). Each entry compiles ahead of time every program of its lazy-regularization
cycle (XLA's cost and memory analyses give FLOPs and memory, averaged over the cycle),
runs `--warmup` steps, then times `--steps` (StyleGAN2's cycle is 16 steps: R1 every 16,
path length every 4). MFU is pgen.training.performance's: the step's FLOPs per second over the
device's dense peak for the dtype. An entry's config module (configs/<name>.py) is imported
when the entry runs, so `--only` needs only the modules of the entries it names. Needs jax,
flax, optax, numpy and ml_collections only (no TensorFlow, TFDS or CLU). Entries run
cheapest first and stop when `--budget_s` is spent, so a lease of the accelerator is never
overrun; the table says which were left out. Writes <out>/<device>.json and .md and prints
the table.
"""

import argparse
import importlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from pgen import config as config_lib, data  # noqa: E402
from pgen.core import sharding
from pgen.data import synthetic  # noqa: E402
from pgen.gan.state import build  # noqa: E402
from pgen.training import performance
from pgen.training.compiled_step import compile_train_step  # noqa: E402

# name: (config module under configs/, resolution, channels, per-device batch sizes)
FAMILIES = {
    "dcgan32": ("fashion_mnist_dcgan", 32, 1, (64, 256, 1024)),
    "dcgan64": ("stanford_online_products_dcgan", 64, 3, (64, 256, 512)),
    "resnet64": ("catalog_resnet64", 64, 3, (32, 128, 256)),
    "resnet128": ("catalog_resnet64", 128, 3, (16, 64, 128)),
    "r3gan32": ("fashion_mnist_r3gan", 32, 1, (32, 128, 512)),
    "r3gan64": ("catalog_r3gan", 64, 3, (32, 128, 256)),
    "r3gan128": ("catalog_r3gan", 128, 3, (16, 64, 128)),
    "stylegan2_32": ("fashion_mnist_stylegan2", 32, 1, (32, 128, 512)),
    "stylegan2_128": ("stanford_online_products_stylegan2", 128, 3, (16, 32, 64)),
    "stylegan2_256": ("catalog_stylegan2", 256, 3, (8, 16, 32)),
}
TINY = {"dcgan32": ("fashion_mnist_dcgan", 32, 1, (8,)),
        "resnet32": ("catalog_resnet64", 32, 3, (8,)),
        "stylegan2_32": ("fashion_mnist_stylegan2", 32, 1, (8,))}


def bench_config(module_name, resolution, channels, batch_size, dtype, tiny):
  module = importlib.import_module(f"pgen.configs.{module_name}")
  config = module.get_config("smoke" if tiny else "")
  config.data.name = data.SYNTHETIC
  config.data.resolution = resolution
  config.data.synthetic_channels = channels
  config.batch_size = batch_size
  config.model.dtype = dtype
  config.eval.every_steps = 0
  return config_lib.resolve(config)


def run_entry(config, steps, warmup, profile_dir=None):
  """Times the train step of `config` on synthetic batches; returns the measurements."""
  mesh = sharding.make_mesh()
  info = synthetic.input_info(config)
  setup = build(config, mesh, info.image_shape, info.num_classes)
  batches = synthetic.train_batches(config, mesh, start_step=0)
  state = setup.init()
  train_step = compile_train_step(config, setup, mesh)
  cost = train_step.compile(state, next(batches))  # Every program of the lazy cycle.
  batch = next(batches)  # The step alone: one batch, already on the devices.
  for step in range(warmup):
    state, metrics = train_step.at(step)(state, batch)
  jax.block_until_ready(metrics)
  if profile_dir:
    jax.profiler.start_trace(profile_dir)
  start = time.perf_counter()
  for step in range(warmup, warmup + steps):
    state, metrics = train_step.at(step)(state, batch)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / steps
  if profile_dir:
    jax.profiler.stop_trace()
  peak = performance.peak_tflops(jax.devices()[0].device_kind, config.model.dtype)
  tflops, mfu = performance.utilization(cost.flops_per_step, step_s, peak)
  return {"images_per_s": data.images_per_step(config) / step_s,
          "step_ms": step_s * 1e3, "tflops_per_device": tflops, "mfu": mfu,
          "memory_gib": (cost.peak_memory_bytes or 0) / 2**30, "compile_s": cost.compile_s,
          "gflop_per_step": (cost.flops_per_step or 0) / 1e9}


def _figure(value: float) -> str:
  """Three or more significant digits, no exponent (a 256 px StyleGAN2 step here: 24,164 ms)."""
  return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def markdown(results, device, skipped) -> str:
  lines = [f"### {device}", "",
           "| entry | dtype | batch/device | images/s | step ms | TFLOP/s | MFU | memory GiB "
           "| compile s |", "|---|---|---|---|---|---|---|---|---|"]
  for r in results:
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
    tflops = f"{r['tflops_per_device']:.3g}" if r["tflops_per_device"] is not None else "n/a"
    lines.append(f"| {r['entry']} | {r['dtype']} | {r['batch_per_device']} | "
                 f"{_figure(r['images_per_s'])} | {_figure(r['step_ms'])} | {tflops} | {mfu} | "
                 f"{r['memory_gib']:.3g} | {r['compile_s']:.1f} |")
  if skipped:
    lines += ["", f"Left out (time budget): {', '.join(skipped)}."]
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "accelerator"))
  parser.add_argument("--tiny", action="store_true", help="Narrow models, batch 8: a CPU check.")
  parser.add_argument("--only", nargs="*", help="Entries to run (default: all).")
  parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
  parser.add_argument("--batches", nargs="*", type=int, help="Per-device batch sizes.")
  parser.add_argument("--steps", type=int, default=None, help="Timed steps (default 50; 3 tiny).")
  parser.add_argument("--warmup", type=int, default=None, help="Untimed steps (default 5; 1).")
  parser.add_argument("--budget_s", type=float, default=420.0,
                      help="Start no entry after this many seconds.")
  parser.add_argument("--profile", help="Write a jax.profiler trace of the timed steps here.")
  args = parser.parse_args()
  steps = args.steps or (3 if args.tiny else 50)
  warmup = args.warmup or (1 if args.tiny else 5)
  families = TINY if args.tiny else FAMILIES
  entries = [(name, dtype, per_device)
             for name, (_, _, _, batches) in families.items() if not args.only or name in args.only
             for per_device in (args.batches or batches) for dtype in args.dtypes]
  device = jax.devices()[0].device_kind
  print(f"{jax.device_count()} x {device}, jax {jax.__version__}; {steps} timed steps",
        flush=True)
  start, results, skipped = time.perf_counter(), [], []
  for name, dtype, per_device in entries:
    if time.perf_counter() - start > args.budget_s:
      skipped.append(f"{name}/{dtype}/{per_device}")
      continue
    module_name, resolution, channels, _ = families[name]
    config = bench_config(module_name, resolution, channels, per_device * jax.device_count(), dtype,
                          args.tiny)
    try:
      measured = run_entry(config, steps, warmup, args.profile)
    except Exception as e:  # noqa: BLE001  Out of memory at a large batch: say so, go on.
      print(f"{name} {dtype} batch {per_device}: failed: {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}", flush=True)
      continue
    results.append({"entry": name, "dtype": dtype, "batch_per_device": per_device, **measured})
    print(json.dumps(results[-1]), flush=True)
  table = markdown(results, f"{jax.device_count()} x {device}", skipped)
  print("\n" + table)
  os.makedirs(args.out, exist_ok=True)
  slug = re.sub(r"[^A-Za-z0-9]+", "_", device).strip("_").lower() + ("_tiny" if args.tiny else "")
  with open(os.path.join(args.out, f"{slug}.json"), "w") as f:
    json.dump({"device": device, "device_count": jax.device_count(), "jax": jax.__version__,
               "steps": steps, "results": results, "skipped": skipped}, f, indent=1)
  with open(os.path.join(args.out, f"{slug}.md"), "w") as f:
    f.write(table)


if __name__ == "__main__":
  main()
