r"""Speed of the Inception-v3 feature path (preprocess + network, as evaluation runs it).

    python bench/bench_inception.py [--batch_sizes 25,50,100] [--num_images 200] \
        [--image_shape 32,32,1] [--jaxlib_default_kernels]

Random weights (speed does not depend on their values); uint8 inputs of --image_shape,
resized to 299x299 like Fashion-MNIST samples are. Prints, per batch size, the first call
(compile + one batch) and the steady-state time per 1000 images.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from pgen.core import compiler
from pgen.evaluation import inception


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", default="25,50,100")
  parser.add_argument("--num_images", type=int, default=200, help="Timed images per batch size.")
  parser.add_argument("--image_shape", default="32,32,1")
  parser.add_argument("--jaxlib_default_kernels", action="store_true",
                      help="Compile without pgen's compiler options: XLA:CPU's YNNPACK fusions on.")
  args = parser.parse_args()
  if args.jaxlib_default_kernels:
    compiler.compiler_options = lambda deterministic=False: None
  shape = tuple(int(n) for n in args.image_shape.split(","))
  variables = jax.jit(inception.InceptionV3().init)(
      jax.random.PRNGKey(0), jnp.zeros((1, inception.INPUT_SIZE, inception.INPUT_SIZE, 3)))
  images = np.random.default_rng(0).integers(0, 256, (args.num_images, *shape), np.uint8)
  print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, {jax.device_count()} device(s); "
        f"input {shape} uint8 -> 299x299x3; compiler options {compiler.compiler_options()}")
  print("| batch | first call (compile + 1 batch) | steady state | s per 1000 images |")
  print("|---|---|---|---|")
  for batch_size in (int(n) for n in args.batch_sizes.split(",")):
    start = time.perf_counter()
    inception.extract(variables, images[:batch_size], batch_size)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    features, _ = inception.extract(variables, images, batch_size)
    elapsed_s = time.perf_counter() - start
    assert features.shape == (len(images), inception.FEATURE_DIM)
    print(f"| {batch_size} | {first_s:.1f} s | {len(images) / elapsed_s:.2f} images/s | "
          f"{1000 * elapsed_s / len(images):.0f} s |", flush=True)


if __name__ == "__main__":
  main()
