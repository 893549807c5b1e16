"""The GAN objectives and updates of pgen/gan/objectives.py, called directly: each update moves
only its own network, by the gradient of the loss it names."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import pixels, sharding
from pgen.gan import losses, objectives
from pgen.gan.state import build
from pgen.gan.step_spec import LazyPhases, StepSpec

pytestmark = pytest.mark.usefixtures("fast_compile")

B = 8


@pytest.fixture(scope="module")
def spec_and_state():
  config = fashion_mnist_dcgan.get_config("smoke")
  config.batch_size = B
  config = config_lib.resolve(config)
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  return StepSpec.create(config, setup, mesh), setup.init()


def _inputs(spec, seed=0):
  reals = jax.random.randint(jax.random.PRNGKey(seed), (B, 1, 32, 32, 1), 0, 256)
  reals = pixels.to_model_range(reals.astype(jnp.uint8))
  return objectives.draw_d_inputs(jax.random.PRNGKey(seed + 1), 0, reals,
                                  jnp.zeros((B, 1), jnp.int32), spec)


def _fake(spec, state, inputs):
  return objectives.generate(spec, state.g_params, state.g_batch_stats, inputs.z, None,
                             inputs.g_key)[0]


def _generator_forward(spec, state, inputs):
  """(G's forward as a function of its parameters, its fakes, their pullback)."""
  def forward(g_params):
    return objectives.generate(spec, g_params, state.g_batch_stats, inputs.z, None,
                               inputs.g_key)

  fake, pullback, _ = jax.vjp(forward, state.g_params, has_aux=True)
  return forward, fake, pullback


def _d_logits(spec, d_params, state, images):
  return objectives.d_outputs(spec, d_params, state.d_batch_stats, images, None)[0]


def _changed(before, after) -> bool:
  return any(not np.array_equal(a, b)
             for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_d_update_takes_one_optimizer_step_on_the_discriminator_loss(spec_and_state):
  spec, state = spec_and_state
  inputs = _inputs(spec)
  fake = _fake(spec, state, inputs)
  update = jax.jit(functools.partial(objectives.d_update, j=0, spec=spec, phases=LazyPhases()))
  new, metrics = update(state, fake, inputs)

  def d_loss(d_params):  # The default config augments nothing: D sees the images as given.
    return spec.setup.d_loss_fn(_d_logits(spec, d_params, state, inputs.real),
                                _d_logits(spec, d_params, state, fake))

  loss, grads = jax.value_and_grad(d_loss)(state.d_params)
  np.testing.assert_allclose(metrics["d_loss"], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_grad_norm"], optax.global_norm(grads), rtol=1e-4)
  updates, _ = spec.setup.d_tx.update(grads, state.d_opt_state, state.d_params)
  expected = optax.apply_updates(state.d_params, updates)
  for got, want in zip(jax.tree.leaves(new.d_params), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert not _changed(state.g_params, new.g_params)
  assert not _changed(state.g_opt_state, new.g_opt_state)


def test_g_update_pulls_the_loss_at_the_fakes_back_to_the_generator(spec_and_state):
  spec, state = spec_and_state
  inputs = _inputs(spec, seed=2)
  forward, fake, pullback = _generator_forward(spec, state, inputs)
  new, metrics = objectives.g_update(state, fake, pullback, inputs, jax.random.PRNGKey(3),
                                     spec=spec, phases=LazyPhases())

  def g_loss(g_params):  # G's loss through D, differentiated end to end.
    return spec.setup.g_loss_fn(_d_logits(spec, state.d_params, state, forward(g_params)[0]),
                                None)

  loss, grads = jax.value_and_grad(g_loss)(state.g_params)
  np.testing.assert_allclose(metrics["g_loss"], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_grad_norm"], optax.global_norm(grads), rtol=1e-4)
  assert _changed(state.g_params, new.g_params)
  assert not _changed(state.d_params, new.d_params)
  assert not _changed(state.d_opt_state, new.d_opt_state)


def test_ema_update_moves_the_average_by_one_minus_beta(spec_and_state):
  spec, state = spec_and_state
  moved = state.replace(g_params=jax.tree.map(lambda p: p + 1.0, state.g_params))
  new, beta = objectives.ema_update(moved, spec.options)
  for ema, before in zip(jax.tree.leaves(new.ema_g_params), jax.tree.leaves(state.ema_g_params)):
    np.testing.assert_allclose(ema, before + (1.0 - beta), rtol=1e-5, atol=1e-6)


def test_a_train_step_counts_one_step_and_runs_lazy_r1_only_in_its_phase(spec_and_state):
  spec, state = spec_and_state
  with_r1 = dataclasses.replace(spec, options=dataclasses.replace(spec.options, r1_weight=1e3))
  batch = {"image": jnp.full((B, 32, 32, 1), 200, jnp.uint8),
           "label": jnp.zeros((B,), jnp.int32)}
  step = jax.jit(functools.partial(objectives.train_step, spec=with_r1), static_argnums=2)
  new, plain = step(state, batch, LazyPhases())
  _, regularized = step(state, batch, LazyPhases(r1=True))
  assert int(new.step) == int(state.step) + 1
  assert float(plain["r1_penalty"]) == 0.0 and float(regularized["r1_penalty"]) > 0.0
  np.testing.assert_allclose(  # R1 is added to D's loss with weight gamma / 2 * r1_every.
      regularized["d_loss"] - regularized["d_adversarial_loss"],
      0.5 * 1e3 * spec.options.r1_every * regularized["r1_penalty"], rtol=1e-3)


def _with_loss(spec, name: str, **options):
  d_loss_fn, g_loss_fn = losses.get_losses(name)
  setup = dataclasses.replace(spec.setup, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn)
  return dataclasses.replace(spec, setup=setup, options=dataclasses.replace(
      spec.options, g_loss_uses_reals=name in losses.RELATIVISTIC, **options))


def test_a_relativistic_g_update_compares_its_fakes_with_the_reals(spec_and_state):
  base, state = spec_and_state
  spec = _with_loss(base, "relativistic_pairing")
  inputs = _inputs(spec, seed=4)
  forward, fake, pullback = _generator_forward(spec, state, inputs)
  _, metrics = objectives.g_update(state, fake, pullback, inputs, jax.random.PRNGKey(5),
                                   spec=spec, phases=LazyPhases())
  logits_real = _d_logits(spec, state.d_params, state, inputs.real)

  def g_loss(g_params):  # softplus(D(x_i) - D(G(z_i))), the reals fixed.
    logits_fake = _d_logits(spec, state.d_params, state, forward(g_params)[0])
    return jnp.mean(jax.nn.softplus(logits_real - logits_fake))

  loss, grads = jax.value_and_grad(g_loss)(state.g_params)
  np.testing.assert_allclose(metrics["g_loss"], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_grad_norm"], optax.global_norm(grads), rtol=1e-4)


def test_r2_penalizes_d_s_gradient_at_the_fakes_on_r1_s_steps(spec_and_state):
  base, state = spec_and_state
  # Weights large enough that the penalties (D's input gradients are small at init) weigh
  # as much as the adversarial loss.
  spec = _with_loss(base, "relativistic_pairing", r1_weight=5e5, r2_weight=2e6, r1_every=1)
  inputs = _inputs(spec, seed=6)
  fake = _fake(spec, state, inputs)
  update = jax.jit(functools.partial(objectives.d_update, j=0, spec=spec,
                                     phases=LazyPhases(r1=True)))
  _, metrics = update(state, fake, inputs)

  def squared_gradient_norm(images):
    grads = jax.grad(lambda x: jnp.sum(_d_logits(spec, state.d_params, state, x)))(images)
    return jnp.mean(jnp.sum(grads ** 2, axis=(1, 2, 3)))

  np.testing.assert_allclose(metrics["r1_penalty"], squared_gradient_norm(inputs.real),
                             rtol=1e-4)
  np.testing.assert_allclose(metrics["r2_penalty"], squared_gradient_norm(fake), rtol=1e-4)
  np.testing.assert_allclose(  # gamma / 2 each (every step: r1_every = 1).
      metrics["d_loss"] - metrics["d_adversarial_loss"],
      2.5e5 * metrics["r1_penalty"] + 1e6 * metrics["r2_penalty"], rtol=1e-3)
