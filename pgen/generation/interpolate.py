r"""Interpolation between latents: a strip of frames and an animated GIF per pair.

    python -m pgen generate --workdir runs/fmnist --interpolate 16 --num 4 --out interp/
    # interp/pair_000_s0_s1.png (16 frames side by side) and .gif, ... for 4 pairs

Pair j goes from the latent of seed `seed + 2j` to that of `seed + 2j + 1` along the great
circle (spherical interpolation: Gaussian latents keep their typical norm on the way,
which a straight line would shrink). A conditional generator stays in one class: `--class`,
else class j mod the number of classes.
"""

import os

import jax.numpy as jnp
import numpy as np

from pgen.core import pixels
from pgen.errors import ArgumentError
from pgen.generation import generators, postprocess


def slerp(a: jnp.ndarray, b: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
  """Points at fractions `t` (T,) along the great circle from `a` to `b` (D,): (T, D)."""
  a_unit, b_unit = a / jnp.linalg.norm(a), b / jnp.linalg.norm(b)
  omega = jnp.arccos(jnp.clip(jnp.dot(a_unit, b_unit), -1.0, 1.0))
  t = t[:, None]
  sin = jnp.sin(omega)
  safe = jnp.where(sin > 1e-6, sin, 1.0)
  spherical = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / safe
  return jnp.where(sin > 1e-6, spherical, (1 - t) * a + t * b)  # Nearly parallel: a line.


def write_interpolations(generator: generators.TrainedGenerator, out_dir: str, pairs: int,
                         frames: int, *, seed: int = 0, label: int | None = None,
                         postprocess_spec: str | None = None) -> list[str]:
  """Writes a PNG strip and a GIF for each of `pairs` latent pairs; returns the paths."""
  if frames < 2:
    raise ArgumentError(f"interpolate={frames}: give at least 2 frames.",
                        argument="interpolate")
  steps = postprocess.parse(postprocess_spec)
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for j in range(pairs):
    seeds = (seed + 2 * j, seed + 2 * j + 1)
    z_a, z_b = generators.latents_for_seeds(generator, seeds)
    z = slerp(z_a, z_b, jnp.linspace(0.0, 1.0, frames))
    labels = None
    if generator.conditional:
      labels = np.full((frames,), j % len(generator.class_names) if label is None else label,
                       np.int32)
    pictures = [postprocess.apply(steps, pixels.to_pil(image))
                for image in generator.render(z, labels)]
    base = os.path.join(out_dir, f"pair_{j:03d}_s{seeds[0]}_s{seeds[1]}")
    strip = np.stack([pixels.from_pil(p) for p in pictures])
    pixels.save_png(pixels.image_grid(strip, columns=frames), base + ".png", scale=1)
    pictures[0].save(base + ".gif", save_all=True, append_images=pictures[1:], duration=80,
                     loop=0)
    paths += [base + ".png", base + ".gif"]
  return paths
