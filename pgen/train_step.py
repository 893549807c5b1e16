"""The train step: one discriminator update, then one generator update, then the EMA.

    step = make_train_step(config, generator, discriminator, g_tx, d_tx, mesh)
    train_step = jit_train_step(step, abstract_state, mesh)
    state, metrics = train_step(state, batch)      # batch["image"]: (B, H, W, C) in [-1, 1]

The generator runs forward once per step, as in the reference PyTorch DCGAN: its output
feeds the D update (as a constant) and, through `jax.vjp`, the G update, which
back-propagates through the freshly updated discriminator.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from pgen import losses
from pgen import sharding
from pgen.state import GANState, state_shardings


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """Ramps the EMA in, so early samples are not dominated by the random init."""
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def train_step(state: GANState, batch, *, generator, discriminator, g_tx, d_tx, d_loss_fn,
               g_loss_fn, latent_dim, ema_decay, batch_sharding):
  rng = jax.random.fold_in(state.rng, state.step)
  real = batch["image"]
  z = jax.random.normal(rng, (real.shape[0], latent_dim))
  z = jax.lax.with_sharding_constraint(z, batch_sharding)

  def generate(g_params):
    fake, updates = generator.apply(
        {"params": g_params, "batch_stats": state.g_batch_stats}, z, train=True,
        mutable=["batch_stats"])
    return fake, updates["batch_stats"]

  fake, generator_vjp, g_batch_stats = jax.vjp(generate, state.g_params, has_aux=True)

  def discriminator_objective(d_params):
    logits = discriminator.apply({"params": d_params}, jnp.concatenate([real, fake]))
    logits_real, logits_fake = jnp.split(logits, 2)
    return d_loss_fn(logits_real, logits_fake), (logits_real, logits_fake)

  (d_loss, (logits_real, logits_fake)), d_grads = jax.value_and_grad(
      discriminator_objective, has_aux=True)(state.d_params)
  d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  def generator_objective(fake_images):
    return g_loss_fn(discriminator.apply({"params": d_params}, fake_images))

  g_loss, g_loss_wrt_fake = jax.value_and_grad(generator_objective)(fake)
  (g_grads,) = generator_vjp(g_loss_wrt_fake)
  g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)

  decay = ema_decay_at(state.step, ema_decay)
  ema_g_params = optax.incremental_update(g_params, state.ema_g_params, 1.0 - decay)

  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats, d_params=d_params,
      g_opt_state=g_opt_state, d_opt_state=d_opt_state, ema_g_params=ema_g_params)
  metrics = {
      "d_loss": d_loss,
      "g_loss": g_loss,
      "d_real_logit": jnp.mean(logits_real),
      "d_fake_logit": jnp.mean(logits_fake),
      "d_grad_norm": optax.global_norm(d_grads),
      "g_grad_norm": optax.global_norm(g_grads),
  }
  return new_state, metrics


def make_train_step(config, generator, discriminator, g_tx, d_tx, mesh):
  """Binds the static choices of `config` into a pure (state, batch) -> (state, metrics)."""
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss.name)
  return functools.partial(
      train_step, generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
      d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
      latent_dim=config.model.latent_dim, ema_decay=config.ema_decay,
      batch_sharding=sharding.batch_split(mesh))


def jit_train_step(step_fn, abstract_state, mesh):
  """Compiles with explicit shardings; the input state's buffers are donated."""
  shardings = state_shardings(abstract_state)
  batch = sharding.batch_split(mesh)
  return jax.jit(step_fn, in_shardings=(shardings, batch),
                 out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))
