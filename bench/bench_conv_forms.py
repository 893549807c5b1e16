r"""Three forms of R3GAN's convolutions: XLA's (grouped) convolution, patches times kernel,
and one ungrouped convolution with the block-diagonal kernel (R3GAN's
`model.grouped_conv_dense`): the time of a forward and backward pass (both gradients) of
the layers R3GAN is made of, on this machine's default device.

    python bench/bench_conv_forms.py [--batch 64] [--repeats 5]

Prints a markdown table; bench/RESULTS.md keeps this machine's.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pgen.models import r3gan  # noqa: E402

# (height, channels, groups, kernel side): R3GAN's grouped 3x3 and its 1x1 layers at 32 px.
SHAPES = ((32, 64, 4, 3), (16, 128, 8, 3), (8, 256, 16, 3), (32, 64, 1, 1), (16, 128, 1, 1))


def xla_conv(kernel, x, groups):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=groups)


def patches_3x3(x):
  """(B, H, W, C) -> (B, H, W, 9, C): each pixel's 3x3 neighbourhood (zeros outside)."""
  height, width = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.stack([padded[:, i:i + height, j:j + width] for i in range(3) for j in range(3)],
                   axis=3)


def matmul_conv(kernel, x, groups):
  side, _, per_group, features = kernel.shape
  if side == 1:
    return jnp.einsum("bhwc,co->bhwo", x, kernel[0, 0])
  patches = patches_3x3(x).reshape(*x.shape[:3], 9, groups, per_group)
  kernel = kernel.reshape(9, per_group, groups, features // groups)
  return jnp.einsum("bhwkgi,kigo->bhwgo", patches, kernel).reshape(*x.shape[:3], features)


def block_diagonal_conv(kernel, x, groups):
  return xla_conv(r3gan.block_diagonal(kernel, groups), x, 1)


def time_ms(fn, args, repeats: int) -> float:
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    result = fn(*args)
  jax.block_until_ready(result)
  return (time.perf_counter() - start) / repeats * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  print(f"{jax.devices()[0].device_kind}, batch {args.batch}, forward + both gradients\n")
  print("| layer | XLA convolution ms | patches x kernel ms | block-diagonal ms |\n"
        "|---|---|---|---|")
  for height, channels, groups, side in SHAPES:
    keys = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(keys[0], (args.batch, height, height, channels))
    kernel = 0.01 * jax.random.normal(keys[1], (side, side, channels // groups, channels))
    times = []
    for conv in (xla_conv, matmul_conv, block_diagonal_conv):
      loss = lambda k, v, conv=conv: jnp.sum(conv(k, v, groups) ** 2)  # noqa: E731
      times.append(time_ms(jax.grad(loss, argnums=(0, 1)), (kernel, x), args.repeats))
    print(f"| {side}x{side}, {height}x{height}x{channels}, {groups} groups | {times[0]:.1f} | "
          f"{times[1]:.1f} | {times[2]:.1f} |")


if __name__ == "__main__":
  main()
