r"""Input pipeline throughput on a folder-built TFDS dataset, next to the train step's.

    python bench/bench_pipeline.py [--images 600] [--encoding png] [--batches 100]

Draws a catalog of product-like photos (shapes on white, 240 to 800 px, several aspects)
as JPEGs into --workdir, runs `prepare` on it, then prints, at 32, 64 and 128 pixels and
the global batch of the folder config (64): the pipeline's images/s when every image is
decoded and resized on each epoch (data.cache="encoded", what a large catalog gets), when
the resized images are cached (cache="decoded", what a small one gets), and the DCGAN
train step's images/s on a synthetic batch. Pipeline/step > 1 means the step, not the
input, bounds training.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pgen.configs import folder_dcgan  # noqa: E402
from pgen.core import sharding  # noqa: E402
from pgen.data import folder, images, pipeline, sources  # noqa: E402
from pgen.gan.state import build  # noqa: E402
from pgen.training.compiled_step import compile_train_step  # noqa: E402

flags.DEFINE_string("workdir", "/tmp/pgen_bench_pipeline", "Where the catalog and dataset go.")
flags.DEFINE_integer("images", 600, "Photos in the generated catalog.")
flags.DEFINE_enum("encoding", "png", ["png", "jpeg"], "How `prepare` stores the images.")
flags.DEFINE_integer("batches", 100, "Timed batches per pipeline measurement.")
flags.DEFINE_integer("steps", 10, "Timed train steps per resolution.")
FLAGS = flags.FLAGS

SIZES = ((320, 240), (480, 640), (600, 800), (800, 600), (500, 500), (400, 300))  # (W, H)


def make_photos(root: str, count: int) -> None:
  rng = np.random.default_rng(0)
  for i in range(count):
    width, height = SIZES[i % len(SIZES)]
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
      x0, y0 = rng.integers(width // 10, width // 2), rng.integers(height // 10, height // 2)
      x1, y1 = rng.integers(x0 + 10, width * 9 // 10), rng.integers(y0 + 10, height * 9 // 10)
      fill = tuple(int(v) for v in rng.integers(0, 230, 3))
      (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    path = os.path.join(root, f"class_{i % 4}", f"{i:05d}.jpg")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, quality=90)


def pipeline_images_per_s(builder, config, mesh) -> float:
  batches = pipeline.train_batches(builder, config, mesh, start_step=0)
  steps_per_epoch = pipeline.input_info(builder, config).steps_per_epoch
  for _ in range(steps_per_epoch + 2):  # A full epoch first: the decoded cache is filled.
    jax.block_until_ready(next(batches))
  start = time.perf_counter()
  for _ in range(FLAGS.batches):
    jax.block_until_ready(next(batches))
  return FLAGS.batches * config.batch_size / (time.perf_counter() - start)


def step_images_per_s(config, mesh, shape) -> float:
  setup = build(config, mesh, shape)
  step = compile_train_step(config, setup, mesh)
  batch = {"image": jnp.zeros((config.batch_size, *shape), jnp.uint8),
           "label": jnp.zeros((config.batch_size,), jnp.int32)}
  state, metrics = step(setup.init(), batch)
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return FLAGS.steps * config.batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  src, out = os.path.join(FLAGS.workdir, "photos"), os.path.join(FLAGS.workdir, "tfds")
  shutil.rmtree(FLAGS.workdir, ignore_errors=True)
  make_photos(src, FLAGS.images)
  start = time.perf_counter()
  report = folder.prepare(src, "bench_catalog", out=out,
                          options=images.CleanOptions(encoding=FLAGS.encoding))
  prepare_s = time.perf_counter() - start
  mesh = sharding.make_mesh()
  print(f"\nprepare: {report['counts']['kept']} photos ({FLAGS.encoding}) in {prepare_s:.1f} s "
        f"({report['counts']['kept'] / prepare_s:.0f} images/s); devices: {jax.device_count()} "
        f"x {jax.devices()[0].device_kind}; {os.cpu_count()} CPU cores\n")
  print("| pixels | pipeline, decode + resize each epoch | pipeline, decoded cache "
        "| train step (DCGAN, synthetic batch) | pipeline / step |")
  print("|---|---|---|---|---|")
  for side in (32, 64, 128):
    config = folder_dcgan.get_config()
    config.data.name, config.data.data_dir = "bench_catalog", out
    config.data.resolution = side
    builder = sources.get_builder(config.data)
    rates = {}
    for cache in ("encoded", "decoded"):
      config.data.cache = cache
      rates[cache] = pipeline_images_per_s(builder, config, mesh)
    step = step_images_per_s(config, mesh, (side, side, 3))
    print(f"| {side} | {rates['encoded']:,.0f} images/s | {rates['decoded']:,.0f} images/s "
          f"| {step:,.0f} images/s | {rates['encoded'] / step:.1f}x |", flush=True)


if __name__ == "__main__":
  app.run(main)
