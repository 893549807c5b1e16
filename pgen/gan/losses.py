"""GAN losses on discriminator logits, selected by `loss.name` in the config.

    d_loss_fn, g_loss_fn = get_losses("hinge")
    d_loss = d_loss_fn(logits_real, logits_fake)     # scalar to minimize
    g_loss = g_loss_fn(logits_fake, logits_real)     # logits_real: None unless RELATIVISTIC

| name | D minimizes | G minimizes |
|---|---|---|
| nonsaturating | softplus(-r) + softplus(f) | softplus(-f) |
| hinge | relu(1 - r) + relu(1 + f) | -f |
| wasserstein | f - r (needs a Lipschitz D: gradient penalty or spectral norm) | -f |
| least_squares | (r - 1)^2 / 2 + f^2 / 2 | (f - 1)^2 / 2 |
| relativistic_pairing | softplus(f_i - r_i) | softplus(r_i - f_i) |
| relativistic_average | sp(mean f - r) + sp(f - mean r) | sp(mean r - f) + sp(r - mean f) |

(r, f: logits of real and fake images, each term a batch mean; r_i, f_i: the i-th real
and fake of the batch, paired; sp: softplus.) The relativistic losses judge a fake against
reals: RpGAN (Jolicoeur-Martineau 2019; with R1 and R2 the well-posed loss of R3GAN, Huang
et al. 2024) pairs each fake with a real, RaGAN (Jolicoeur-Martineau 2018) with the
batch's mean. Their generator loss needs D's logits of reals too: the train step computes
them only for the names in RELATIVISTIC.
"""

import jax
import jax.numpy as jnp


def nonsaturating_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """-log D(x) - log(1 - D(G(z))), with D = sigmoid(logits)."""
  return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))


def nonsaturating_g_loss(logits_fake: jax.Array, logits_real=None) -> jax.Array:
  """-log D(G(z)): the generator's loss that does not saturate when D wins."""
  return jnp.mean(jax.nn.softplus(-logits_fake))


def hinge_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake))


def wasserstein_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return jnp.mean(logits_fake) - jnp.mean(logits_real)


def critic_g_loss(logits_fake: jax.Array, logits_real=None) -> jax.Array:
  """-E[D(G(z))]: the generator loss of hinge and Wasserstein GANs."""
  return -jnp.mean(logits_fake)


def least_squares_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  return 0.5 * jnp.mean((logits_real - 1.0) ** 2) + 0.5 * jnp.mean(logits_fake ** 2)


def least_squares_g_loss(logits_fake: jax.Array, logits_real=None) -> jax.Array:
  return 0.5 * jnp.mean((logits_fake - 1.0) ** 2)


def relativistic_pairing_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """-log sigmoid(D(x_i) - D(G(z_i))): each real should score above the fake it is paired
  with (the i-th of the batch)."""
  return jnp.mean(jax.nn.softplus(logits_fake - logits_real))


def relativistic_pairing_g_loss(logits_fake: jax.Array, logits_real: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(logits_real - logits_fake))


def relativistic_average_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """Reals should score above the average fake, fakes below the average real."""
  return (jnp.mean(jax.nn.softplus(jnp.mean(logits_fake) - logits_real))
          + jnp.mean(jax.nn.softplus(logits_fake - jnp.mean(logits_real))))


def relativistic_average_g_loss(logits_fake: jax.Array, logits_real: jax.Array) -> jax.Array:
  return relativistic_average_d_loss(logits_fake, logits_real)


LOSSES = {
    "nonsaturating": (nonsaturating_d_loss, nonsaturating_g_loss),
    "hinge": (hinge_d_loss, critic_g_loss),
    "wasserstein": (wasserstein_d_loss, critic_g_loss),
    "least_squares": (least_squares_d_loss, least_squares_g_loss),
    "relativistic_pairing": (relativistic_pairing_d_loss, relativistic_pairing_g_loss),
    "relativistic_average": (relativistic_average_d_loss, relativistic_average_g_loss),
}
RELATIVISTIC = ("relativistic_pairing", "relativistic_average")


def get_losses(name: str):
  """(d_loss_fn, g_loss_fn) for `loss.name` (one of LOSSES: pgen.config checks)."""
  return LOSSES[name]
