"""Sampling from the EMA generator of a live training state.

    sample = make_sampler(generator, latent_dim, mesh)
    images = sample(state.ema_g_params, state.g_batch_stats, key, 64)   # uint8 (64, H, W, C)
    images = sample(..., key, 100, balanced_labels(100, 10))  # conditional: 10 per class
    pixels.save_png(pixels.image_grid(images), "grid.png")  # pgen.core.pixels

A trained run's generator, from its checkpoint or an export, is pgen.generation.generators'.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pgen.core import compiler, pixels, sharding

# The fold_in constant that separates the fixed sample-grid latents from training latents.
SAMPLE_GRID_STREAM = 0x5A3F


def render_images(generator, variables, z, labels, **options):
  """uint8 images of the generator in inference mode (BatchNorm's running statistics: an
  image depends on its latent and label only, not on the rest of the batch). `options`
  go to the generator (StyleGAN2's truncation_psi, noise_mode; `rngs` for random noise)."""
  return pixels.to_uint8(generator.apply(variables, z, labels, train=False, **options))


def make_sampler(generator, latent_dim: int, mesh):
  """Returns sample(params, batch_stats, key, num, labels=None) -> uint8 images on the host.

  `labels` (num,) ints are the classes of a conditional generator. The generator runs in
  inference mode (BatchNorm uses its running statistics), so an image depends only on its
  latent (and label), not on the batch it was generated in.
  """
  replicated = sharding.replicated(mesh)

  def sample(params, batch_stats, key, num, labels):
    z = jax.random.normal(key, (num, latent_dim))
    return render_images(generator, {"params": params, "batch_stats": batch_stats}, z, labels)

  jitted = compiler.jit(sample, static_argnums=(3,), out_shardings=replicated)

  def run(params, batch_stats, key, num, labels=None):
    if labels is not None:
      labels = jnp.asarray(labels, jnp.int32)
    return sharding.to_host(jitted(params, batch_stats, key, num, labels))

  return run


def balanced_labels(num: int, num_classes: int) -> np.ndarray | None:
  """`num` labels in contiguous equal blocks per class (so a square grid of 10 x 10 has one
  class per row), or None for an unconditional model (num_classes == 0)."""
  if num_classes == 0:
    return None
  return (np.arange(num) * num_classes // num).astype(np.int32)


def grid_key(seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLE_GRID_STREAM)
