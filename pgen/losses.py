"""GAN losses on discriminator logits, selected by `loss.name` in the config.

    d_loss_fn, g_loss_fn = get_losses("hinge")
    d_loss = d_loss_fn(logits_real, logits_fake)     # scalar to minimize
    g_loss = g_loss_fn(logits_fake)

| name | D minimizes | G minimizes |
|---|---|---|
| nonsaturating | softplus(-r) + softplus(f) | softplus(-f) |
| hinge | relu(1 - r) + relu(1 + f) | -f |
| wasserstein | f - r (needs a Lipschitz D: gradient penalty or spectral norm) | -f |
| least_squares | (r - 1)^2 / 2 + f^2 / 2 | (f - 1)^2 / 2 |

(r, f: logits of real and fake images, each term a batch mean.)
"""

import jax
import jax.numpy as jnp


def nonsaturating_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """-log D(x) - log(1 - D(G(z))), with D = sigmoid(logits)."""
  return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))


def nonsaturating_g_loss(logits_fake: jax.Array) -> jax.Array:
  """-log D(G(z)): the generator's loss that does not saturate when D wins."""
  return jnp.mean(jax.nn.softplus(-logits_fake))


def hinge_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake))


def wasserstein_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return jnp.mean(logits_fake) - jnp.mean(logits_real)


def critic_g_loss(logits_fake: jax.Array) -> jax.Array:
  """-E[D(G(z))]: the generator loss of hinge and Wasserstein GANs."""
  return -jnp.mean(logits_fake)


def least_squares_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return 0.5 * jnp.mean((logits_real - 1.0) ** 2) + 0.5 * jnp.mean(logits_fake ** 2)


def least_squares_g_loss(logits_fake: jax.Array) -> jax.Array:
  return 0.5 * jnp.mean((logits_fake - 1.0) ** 2)


LOSSES = {
    "nonsaturating": (nonsaturating_d_loss, nonsaturating_g_loss),
    "hinge": (hinge_d_loss, critic_g_loss),
    "wasserstein": (wasserstein_d_loss, critic_g_loss),
    "least_squares": (least_squares_d_loss, least_squares_g_loss),
}


def get_losses(name: str):
  """(d_loss_fn, g_loss_fn) for `loss.name` (one of LOSSES: pgen.config checks)."""
  return LOSSES[name]
