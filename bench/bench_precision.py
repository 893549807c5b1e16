r"""bf16 against float32 on real data: the Frechet distance a DCGAN reaches in each
precision after a short run, over seeds. Prints a Markdown table.

    python bench/bench_precision.py [--steps 400] [--seeds 0 1] [--width 32] \
        [--data_dir ~/tensorflow_datasets] [--networks both|generator|discriminator]

Each run trains `configs/fashion_mnist_dcgan.py:smoke` widened to `--width`, batch 64,
for `--steps`, then scores 2000 EMA samples against 2000 test images in pgen's classifier
features. `--networks` puts only one network in bf16 (the other float32), to see where a
gap comes from. tests/integration/test_precision.py's slow test is this at seed 0.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax.numpy as jnp  # noqa: E402

from pgen import config as config_lib  # noqa: E402
from pgen.configs import fashion_mnist_dcgan  # noqa: E402
from pgen.data import sources  # noqa: E402
from pgen.evaluation import scoring  # noqa: E402
from pgen.gan import state as state_lib
from pgen.generation import generators
from pgen.training.loop import train_and_evaluate  # noqa: E402


def bf16_in(networks: str):
  """build_models with only `networks` ("generator" or "discriminator") in bf16."""
  build_models = state_lib.build_models

  def build(config, image_shape, num_classes=0):
    generator, discriminator = build_models(config, image_shape, num_classes)
    to_bf16 = lambda m: m.clone(kit=m.kit.replace(dtype=jnp.bfloat16))  # noqa: E731
    if networks == "generator":
      return to_bf16(generator), discriminator
    return generator, to_bf16(discriminator)

  return build


def frechet_distance(dtype, seed, args, workdir) -> float:
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.data_dir = args.data_dir
  config.seed = seed
  config.batch_size, config.total_steps = 64, args.steps
  config.model.g_width = config.model.d_width = args.width
  config.model.latent_dim = 100
  config.model.dtype = dtype
  config.checkpoint_every_steps = config.sample_every_steps = args.steps
  config.log_every_steps = 100
  config.eval.reference_split, config.eval.num_reference = "test", 2000
  train_and_evaluate(config, workdir)
  images = generators.sample(generators.from_checkpoint(workdir), 2000)
  config = config_lib.resolve(config)
  return scoring.Evaluator(config, sources.get_builder(config.data))(images)["fd"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
  parser.add_argument("--width", type=int, default=32)
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: TFDS's).")
  parser.add_argument("--networks", default="both",
                      choices=("both", "generator", "discriminator"))
  args = parser.parse_args()
  dtypes = ["float32", "bfloat16"]
  if args.networks != "both":
    state_lib.build_models = bf16_in(args.networks)
    dtypes = ["float32"]  # The patched build puts the chosen network in bf16.
  rows = []
  with tempfile.TemporaryDirectory() as root:
    for seed in args.seeds:
      for dtype in dtypes:
        fd = frechet_distance(dtype, seed, args, os.path.join(root, f"{dtype}_{seed}"))
        label = dtype if args.networks == "both" else f"bf16 {args.networks} only"
        rows.append(f"| {label} | {seed} | {args.steps} | {fd:.1f} |")
        print(rows[-1], flush=True)
  print("\n| precision | seed | steps | FD (classifier, 2000 samples) |\n|---|---|---|---|")
  print("\n".join(rows))


if __name__ == "__main__":
  main()
