"""Schedules over training images (pgen/gan/schedules.py): the cosine, and what a train step at
a given step sets from it: Adam's learning rate and beta2, R1/R2's gamma, the EMA decay and
the augmentation probability."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.errors import ConfigError
from pgen.gan import objectives
from pgen.gan.state import build
from pgen.gan.step_spec import LazyPhases, StepSpec

pytestmark = pytest.mark.usefixtures("fast_compile")

B = 8
IMAGES = 80  # The schedules span 10 steps of 8 images.


def _config(**schedule):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.batch_size = B
  config.optim.g_betas = config.optim.d_betas = (0.0, 0.9)
  config.loss.name = "relativistic_pairing"
  # Large enough that the penalties (D's input gradients are small at init) weigh as much
  # as the adversarial loss.
  config.loss.r1_weight = config.loss.r2_weight = 1e6
  config.loss.r1_every = 1
  config.augment.policy = "translation"
  config.augment.probability = 0.4
  config.schedule.images = IMAGES
  for key, value in schedule.items():
    config.schedule[key] = value
  return config_lib.resolve(config)


def _cosine(step):
  return 0.5 * (1 - np.cos(np.pi * min(step * B / IMAGES, 1.0)))


@pytest.fixture(scope="module")
def scheduled():
  config = _config(learning_rate_end=0.25, gamma_end=0.1, beta2_end=0.99, ema_from_zero=True,
                   augment_from_zero=True)
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  return config, StepSpec.create(config, setup, mesh), setup.init()


def test_progress_follows_half_a_cosine_then_stays(scheduled):
  _, spec, _ = scheduled
  schedule = spec.options.schedule
  for step in (0, 3, 5, 10, 25):
    assert float(schedule.progress(step)) == pytest.approx(_cosine(step), abs=1e-6)
  assert float(schedule.progress(5)) == pytest.approx(0.5, abs=1e-6)


def test_a_step_sets_adam_s_learning_rate_and_beta2_and_the_augment_probability(scheduled):
  config, spec, state = scheduled
  step = jax.jit(functools.partial(objectives.train_step, spec=spec), static_argnums=2)
  batch = {"image": jnp.full((B, 32, 32, 1), 128, jnp.uint8),
           "label": jnp.zeros((B,), jnp.int32)}
  for at in (0, 4, 12):
    new, metrics = step(state.replace(step=jnp.asarray(at, jnp.int32)), batch, LazyPhases(r1=True))
    progress = _cosine(at)
    for opt_state, lr in ((new.g_opt_state, config.optim.g_learning_rate),
                          (new.d_opt_state, config.optim.d_learning_rate)):
      assert float(opt_state.hyperparams["learning_rate"]) == pytest.approx(
          lr * (1 - 0.75 * progress), rel=1e-5)
      assert float(opt_state.hyperparams["b2"]) == pytest.approx(0.9 + 0.09 * progress,
                                                                 rel=1e-6)
    assert float(metrics["augment_probability"]) == pytest.approx(0.4 * progress, abs=1e-6)
    half_life = config.ema.half_life_images * progress  # ema.rampup caps it early on.
    half_life = min(half_life, (at + 1) * B * config.ema.rampup)
    assert float(metrics["ema_beta"]) == pytest.approx(0.5 ** (B / max(half_life, 1e-8)),
                                                       abs=1e-6)


def test_gamma_of_r1_and_r2_moves_to_its_end_fraction(scheduled):
  _, spec, state = scheduled
  inputs = objectives.draw_d_inputs(
      jax.random.PRNGKey(0), 0, jnp.zeros((B, 1, 32, 32, 1)), jnp.zeros((B, 1), jnp.int32), spec)
  fake = jnp.zeros((B, 32, 32, 1))
  for at, scale in ((0, 1.0), (5, 0.55), (10, 0.1)):
    _, metrics = objectives.d_update(state.replace(step=jnp.asarray(at, jnp.int32)), fake,
                                     inputs, 0, spec=spec, phases=LazyPhases(r1=True))
    penalties = 5e5 * (metrics["r1_penalty"] + metrics["r2_penalty"])  # gamma / 2 each.
    np.testing.assert_allclose(metrics["d_loss"] - metrics["d_adversarial_loss"],
                               scale * penalties, rtol=2e-3)


def test_runs_without_schedules_keep_plain_adam_states():
  config = _config()
  setup = build(config, sharding.make_mesh(), (32, 32, 1))
  assert not hasattr(setup.abstract_state.g_opt_state, "hyperparams")


@pytest.mark.parametrize("change, message", [
    ({"schedule": {"gamma_end": 0.1}}, "schedule.gamma_end=0.1 moves a value over "
                                       "schedule.images, which is 0"),
    ({"schedule": {"images": 100, "augment_from_zero": True}, "augment": {"ada_target": 0.6}},
     "schedule.augment_from_zero needs an augment.policy with a fixed probability"),
])
def test_schedules_that_cannot_act_are_refused(change, message):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.augment.policy = "bgc"
  for group, values in change.items():
    for key, value in values.items():
      config[group][key] = value
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(config)
