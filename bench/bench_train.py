r"""Training throughput of a config on this machine: prints a Markdown table.

    python bench/bench_train.py --config configs/fashion_mnist_dcgan.py [--steps 200]
        [--variants]   # also time each model.upsample/model.downsample pair (step only)
        [--jaxlib_default_kernels]   # without pgen's compiler options (pgen/core/compiler.py)

Measures, for the config as given: time from start (dataset, state, compile) to the first
finished step; steady-state training images/s with the real input pipeline (after
`--warmup` steps); the input pipeline's images/s alone.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pgen import config as config_lib, data
from pgen.core import compiler, sharding  # noqa: E402
from pgen.data import pipeline, sources  # noqa: E402
from pgen.gan.state import build  # noqa: E402
from pgen.training.compiled_step import compile_train_step  # noqa: E402

config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
flags.DEFINE_integer("steps", 200, "Timed training steps.")
flags.DEFINE_integer("warmup", 20, "Untimed steps after the first.")
flags.DEFINE_integer("pipeline_batches", 3000, "Batches timed for the pipeline alone.")
flags.DEFINE_bool("variants", False, "Also time each upsample/downsample pair.")
flags.DEFINE_bool("jaxlib_default_kernels", False,
                  "Compile without pgen's compiler options: XLA:CPU's YNNPACK fusions on.")
FLAGS = flags.FLAGS

VARIANTS = [("subpixel", "space_to_depth"), ("subpixel", "strided"), ("nearest", "space_to_depth"),
            ("transpose", "strided")]


def _compiled_step(config, mesh, image_shape, num_classes=0):
  setup = build(config, mesh, image_shape, num_classes)
  step = compile_train_step(config, setup, mesh)
  return setup, step


def _time_steps(step, state, batches, steps):
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, next(batches))
  jax.block_until_ready(metrics)
  return state, time.perf_counter() - start


def train_throughput(config, mesh):
  start = time.perf_counter()
  builder = sources.get_builder(config.data)
  info = pipeline.input_info(builder, config)
  setup, step = _compiled_step(config, mesh, info.image_shape, info.num_classes)
  state = setup.init()
  batches = pipeline.train_batches(builder, config, mesh, start_step=0)
  state, _ = _time_steps(step, state, batches, 1)
  first_step_s = time.perf_counter() - start
  state, _ = _time_steps(step, state, batches, FLAGS.warmup)
  _, elapsed = _time_steps(step, state, batches, FLAGS.steps)
  images = FLAGS.steps * data.images_per_step(config)  # Real images seen.
  return first_step_s, images / elapsed, builder


def pipeline_throughput(config, mesh, builder):
  batches = pipeline.train_batches(builder, config, mesh, start_step=0)
  next(batches)
  start = time.perf_counter()
  for _ in range(FLAGS.pipeline_batches):
    jax.block_until_ready(next(batches))
  return FLAGS.pipeline_batches * config.batch_size / (time.perf_counter() - start)


def variant_throughput(config, mesh, upsample, downsample):
  config = config.copy_and_resolve_references()
  config.model.upsample, config.model.downsample = upsample, downsample
  shape = (config.data.resolution, config.data.resolution, 1)
  setup, step = _compiled_step(config, mesh, shape)
  batch = {"image": jnp.zeros((config.batch_size, *shape), jnp.uint8),
           "label": jnp.zeros((config.batch_size,), jnp.int32)}
  batches = iter(lambda: batch, None)
  state, _ = _time_steps(step, setup.init(), batches, 1 + FLAGS.warmup)
  _, elapsed = _time_steps(step, state, batches, FLAGS.steps)
  return FLAGS.steps * config.batch_size / elapsed


def main(argv):
  del argv
  config = config_lib.resolve(FLAGS.config)
  if FLAGS.jaxlib_default_kernels:
    compiler.compiler_options = lambda deterministic=False: None
  mesh = sharding.make_mesh()
  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; "
        f"batch {config.batch_size}; model {config.model.name} "
        f"({config.model.upsample}/{config.model.downsample}, widths "
        f"{config.model.g_width}/{config.model.d_width}); {FLAGS.steps} timed steps; "
        f"compiler options {compiler.compiler_options()}")
  first_step_s, train_ips, builder = train_throughput(config, mesh)
  pipeline_ips = pipeline_throughput(config, mesh, builder)
  print("\n| measure | value |\n|---|---|")
  print(f"| time to first step (dataset, init, compile) | {first_step_s:.1f} s |")
  print(f"| training, steady state | {train_ips:.0f} images/s |")
  print(f"| input pipeline alone | {pipeline_ips:.0f} images/s |")
  if FLAGS.variants:
    print("\n| G upsample | D downsample | train step images/s (synthetic batch) |\n|---|---|---|")
    for upsample, downsample in VARIANTS:
      ips = variant_throughput(config, mesh, upsample, downsample)
      print(f"| {upsample} | {downsample} | {ips:.0f} |", flush=True)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
