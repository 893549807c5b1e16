"""The Setup a config builds: its optimizers, losses and abstract state."""

import jax
import jax.numpy as jnp
import numpy as np

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.gan import losses
from pgen.gan.state import build
from pgen.training import recovery


def _setup(config):
  return build(config_lib.resolve(config), sharding.make_mesh(), (32, 32, 1))


def test_the_setup_carries_the_config_s_losses_and_a_state_of_its_abstract_layout():
  config = fashion_mnist_dcgan.get_config("smoke")
  config.loss.name = "hinge"
  setup = _setup(config)
  assert (setup.d_loss_fn, setup.g_loss_fn) == losses.LOSSES["hinge"]
  state = setup.init()
  for leaf, abstract in zip(jax.tree.leaves(state), jax.tree.leaves(setup.abstract_state)):
    assert (leaf.shape, leaf.dtype, leaf.sharding) == (abstract.shape, abstract.dtype,
                                                       abstract.sharding)


def test_a_rollback_s_learning_rates_reach_the_optimizers_and_keep_the_state_layout():
  config = config_lib.resolve(fashion_mnist_dcgan.get_config("smoke"))
  setup = _setup(config)
  scaled_config = recovery.scaled_config(
      config_lib.resolve({**config.to_dict(), "train": {**config.train.to_dict(),
                                                        "rollback_lr_scale": 0.5}}),
      rollbacks=[{}])
  scaled = setup.with_optimizers_of(scaled_config)
  assert scaled.abstract_state is setup.abstract_state
  params = {"w": jnp.ones((3,))}
  grads = {"w": jnp.array([1.0, -2.0, 0.5])}

  def first_update(tx):
    return tx.update(grads, tx.init(params), params)[0]["w"]

  np.testing.assert_allclose(first_update(scaled.g_tx), 0.5 * first_update(setup.g_tx),
                             rtol=1e-6)
  np.testing.assert_allclose(first_update(scaled.d_tx), 0.5 * first_update(setup.d_tx),
                             rtol=1e-6)
