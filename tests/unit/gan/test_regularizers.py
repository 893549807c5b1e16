"""R1, R2 and the WGAN gradient penalty against finite differences and closed forms; EMA
half-life."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen.configs import fashion_mnist_dcgan
from pgen.gan import regularizers
from pgen.gan.objectives import ema_beta
from pgen.gan.step_spec import StepOptions

pytestmark = pytest.mark.usefixtures("fast_compile")


def _tiny_discriminator(seed=0):
  """A small non-linear per-example function of (B, 4, 4, 2) images, in float64."""
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  w1 = jax.random.normal(k1, (32, 16), jnp.float64) * 0.3
  w2 = jax.random.normal(k2, (16,), jnp.float64)

  def logits(x):
    return jnp.tanh(x.reshape(x.shape[0], -1) @ w1) @ w2

  return logits


def _finite_difference_grads(fn, x, eps=1e-6):
  """d fn(x)_i / d x_i by central differences, one coordinate at a time."""
  x = np.asarray(x)
  grads = np.zeros_like(x)
  for index in np.ndindex(x.shape[1:]):
    delta = np.zeros_like(x)
    delta[(slice(None), *index)] = eps
    grads[(slice(None), *index)] = (np.asarray(fn(x + delta)) - np.asarray(fn(x - delta))) / (
        2 * eps)
  return grads


def test_r1_and_r2_match_finite_differences():
  """R2 is R1's squared gradient norm taken at other images (the fakes)."""
  with jax.enable_x64(True):
    logits = _tiny_discriminator()
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 4, 2), jnp.float64)
    grads = _finite_difference_grads(logits, x)
    expected = np.mean(np.sum(grads ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(float(regularizers.r1_penalty(logits, x)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(regularizers.r2_penalty(logits, x)), expected, rtol=1e-6)


def test_gradient_penalty_matches_an_independent_per_example_formulation():
  with jax.enable_x64(True):
    logits = _tiny_discriminator(2)
    real = jax.random.normal(jax.random.PRNGKey(3), (6, 4, 4, 2), jnp.float64)
    fake = jax.random.normal(jax.random.PRNGKey(4), (6, 4, 4, 2), jnp.float64)
    key = jax.random.PRNGKey(5)
    eps = jax.random.uniform(key, (6, 1, 1, 1))  # The same draw the penalty makes.
    interpolates = eps * real + (1 - eps) * fake
    per_example = jax.vmap(jax.grad(lambda x: logits(x[None])[0]))(interpolates)
    norms = np.sqrt(np.sum(np.asarray(per_example) ** 2, axis=(1, 2, 3)))
    expected = np.mean((norms - 1) ** 2)
    np.testing.assert_allclose(
        float(regularizers.gradient_penalty(logits, real, fake, key)), expected, rtol=1e-9)


def test_penalties_of_a_linear_critic_have_closed_forms():
  w = jax.random.normal(jax.random.PRNGKey(6), (4, 4, 1))
  unit = w / jnp.linalg.norm(w)

  def linear(v):
    return lambda x: jnp.sum(x * v, axis=(1, 2, 3))

  x = jax.random.normal(jax.random.PRNGKey(7), (3, 4, 4, 1))
  y = jax.random.normal(jax.random.PRNGKey(8), (3, 4, 4, 1))
  assert float(regularizers.r1_penalty(linear(w), x)) == pytest.approx(
      float(jnp.sum(w ** 2)), rel=1e-5)
  # A 1-Lipschitz linear critic has gradient norm 1 everywhere: no penalty.
  assert float(regularizers.gradient_penalty(linear(unit), x, y, jax.random.PRNGKey(9))) < 1e-8
  assert float(regularizers.gradient_penalty(linear(2 * unit), x, y,
                                             jax.random.PRNGKey(9))) == pytest.approx(1.0, 1e-5)


def test_ema_half_life_is_in_images_and_ramps_up():
  config = fashion_mnist_dcgan.get_config()
  config.batch_size = 50
  config.ema.half_life_images = 10_000
  config.ema.rampup = 0.0
  opts = StepOptions.from_config(config, num_classes=10)
  beta = float(ema_beta(jnp.asarray(1000), opts))
  # After half-life images (200 steps of 50), an old weight's share has halved.
  assert beta ** (10_000 / 50) == pytest.approx(0.5, rel=1e-4)
  config.ema.rampup = 0.05
  ramped = StepOptions.from_config(config, num_classes=10)
  early = float(ema_beta(jnp.asarray(9), ramped))  # 500 images seen: half-life 25 images.
  assert early == pytest.approx(0.5 ** (50 / 25), rel=1e-5)
  assert float(ema_beta(jnp.asarray(1_000_000), ramped)) == pytest.approx(beta, rel=1e-6)
