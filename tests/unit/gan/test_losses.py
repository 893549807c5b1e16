"""Each loss's value, gradient signs and gradients (against finite differences) on
hand-made logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config
from pgen.gan import losses

pytestmark = pytest.mark.usefixtures("fast_compile")

REAL = jnp.array([2.0, -0.5])
FAKE = jnp.array([-1.0, 0.5])
EXPECTED_D = {
    "nonsaturating": np.mean(np.log1p(np.exp([-2.0, 0.5]))) + np.mean(np.log1p(np.exp([-1.0, 0.5]))),
    "hinge": np.mean([0.0, 1.5]) + np.mean([0.0, 1.5]),
    "wasserstein": np.mean([-1.0, 0.5]) - np.mean([2.0, -0.5]),
    "least_squares": 0.5 * np.mean([1.0, 2.25]) + 0.5 * np.mean([1.0, 0.25]),
    # softplus(f_i - r_i): pairs (2, -1) and (-0.5, 0.5).
    "relativistic_pairing": np.mean(np.log1p(np.exp([-3.0, 1.0]))),
    # mean f = -0.25, mean r = 0.75: softplus(-0.25 - r) + softplus(f - 0.75).
    "relativistic_average": (np.mean(np.log1p(np.exp([-2.25, 0.25])))
                             + np.mean(np.log1p(np.exp([-1.75, -0.25])))),
}
EXPECTED_G = {
    "nonsaturating": np.mean(np.log1p(np.exp([1.0, -0.5]))),
    "hinge": -np.mean([-1.0, 0.5]),
    "wasserstein": -np.mean([-1.0, 0.5]),
    "least_squares": 0.5 * np.mean([4.0, 0.25]),
    "relativistic_pairing": np.mean(np.log1p(np.exp([3.0, -1.0]))),
    # softplus(0.75 - f) + softplus(r + 0.25).
    "relativistic_average": (np.mean(np.log1p(np.exp([1.75, 0.25])))
                             + np.mean(np.log1p(np.exp([2.25, -0.25])))),
}


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_values_and_gradient_signs(name):
  d_loss_fn, g_loss_fn = losses.get_losses(name)
  assert float(d_loss_fn(REAL, FAKE)) == pytest.approx(EXPECTED_D[name], rel=1e-6)
  assert float(g_loss_fn(FAKE, REAL)) == pytest.approx(EXPECTED_G[name], rel=1e-6)
  # Below its margins, D lowers its loss by raising real logits and lowering fake ones.
  low_real, high_fake = jnp.array([-0.5]), jnp.array([0.5])
  grad_real, grad_fake = jax.grad(d_loss_fn, argnums=(0, 1))(low_real, high_fake)
  assert grad_real[0] < 0 and grad_fake[0] > 0
  # G lowers its loss by raising the logits of its images.
  assert jax.grad(g_loss_fn)(jnp.array([-0.5]), jnp.array([0.5]))[0] < 0


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_gradients_match_finite_differences(name):
  d_loss_fn, g_loss_fn = losses.get_losses(name)
  real, fake = np.array([0.7, -1.2, 0.3]), np.array([-0.4, 0.9, 1.5])
  with jax.enable_x64(True):
    for loss_fn in (d_loss_fn, lambda r, f: g_loss_fn(f, r)):
      grads = jax.grad(loss_fn, argnums=(0, 1))(jnp.asarray(real), jnp.asarray(fake))
      for argnum, grad in enumerate(grads):
        for i in range(3):
          step = np.zeros(3)
          step[i] = 1e-6
          args_up, args_down = [real, fake], [real, fake]
          args_up[argnum], args_down[argnum] = args_up[argnum] + step, args_down[argnum] - step
          numeric = (float(loss_fn(*map(jnp.asarray, args_up)))
                     - float(loss_fn(*map(jnp.asarray, args_down)))) / 2e-6
          assert float(grad[i]) == pytest.approx(numeric, rel=1e-5, abs=1e-8), (argnum, i)


def test_relativistic_losses_see_only_differences_of_real_and_fake():
  """Shifting every logit by the same amount changes nothing (what makes them relativistic)."""
  for name in losses.RELATIVISTIC:
    d_loss_fn, g_loss_fn = losses.get_losses(name)
    assert float(d_loss_fn(REAL + 3.0, FAKE + 3.0)) == pytest.approx(float(d_loss_fn(REAL, FAKE)))
    assert float(g_loss_fn(FAKE - 2.0, REAL - 2.0)) == pytest.approx(float(g_loss_fn(FAKE, REAL)))


def test_unknown_loss_names_the_choices():
  """The config refuses it when it loads, so get_losses only sees names of LOSSES."""
  with pytest.raises(ValueError, match="loss.name='hinj' is unknown; choose one of"):
    config.resolve({"loss": {"name": "hinj"}})
