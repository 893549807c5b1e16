"""GAN losses on discriminator logits. Each returns a scalar to minimize."""

import jax
import jax.numpy as jnp


def nonsaturating_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """-log D(x) - log(1 - D(G(z))), with D = sigmoid(logits)."""
  return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))


def nonsaturating_g_loss(logits_fake: jax.Array) -> jax.Array:
  """-log D(G(z)): the generator's loss that does not saturate when D wins."""
  return jnp.mean(jax.nn.softplus(-logits_fake))
