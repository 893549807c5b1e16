"""Each loss's value and gradient signs on hand-made logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config, losses

pytestmark = pytest.mark.usefixtures("fast_compile")

REAL = jnp.array([2.0, -0.5])
FAKE = jnp.array([-1.0, 0.5])
EXPECTED_D = {
    "nonsaturating": np.mean(np.log1p(np.exp([-2.0, 0.5]))) + np.mean(np.log1p(np.exp([-1.0, 0.5]))),
    "hinge": np.mean([0.0, 1.5]) + np.mean([0.0, 1.5]),
    "wasserstein": np.mean([-1.0, 0.5]) - np.mean([2.0, -0.5]),
    "least_squares": 0.5 * np.mean([1.0, 2.25]) + 0.5 * np.mean([1.0, 0.25]),
}
EXPECTED_G = {
    "nonsaturating": np.mean(np.log1p(np.exp([1.0, -0.5]))),
    "hinge": -np.mean([-1.0, 0.5]),
    "wasserstein": -np.mean([-1.0, 0.5]),
    "least_squares": 0.5 * np.mean([4.0, 0.25]),
}


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_values_and_gradient_signs(name):
  d_loss_fn, g_loss_fn = losses.get_losses(name)
  assert float(d_loss_fn(REAL, FAKE)) == pytest.approx(EXPECTED_D[name], rel=1e-6)
  assert float(g_loss_fn(FAKE)) == pytest.approx(EXPECTED_G[name], rel=1e-6)
  # Below its margins, D lowers its loss by raising real logits and lowering fake ones.
  low_real, high_fake = jnp.array([-0.5]), jnp.array([0.5])
  grad_real, grad_fake = jax.grad(d_loss_fn, argnums=(0, 1))(low_real, high_fake)
  assert grad_real[0] < 0 and grad_fake[0] > 0
  # G lowers its loss by raising the logits of its images.
  assert jax.grad(g_loss_fn)(jnp.array([-0.5]))[0] < 0


def test_unknown_loss_names_the_choices():
  """The config refuses it when it loads, so get_losses only sees names of LOSSES."""
  with pytest.raises(ValueError, match="loss.name='hinj' is unknown; choose one of"):
    config.resolve({"loss": {"name": "hinj"}})
