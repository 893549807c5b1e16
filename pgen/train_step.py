"""The train step: `d_steps` discriminator updates, one generator update, then the EMA.

    train_step = compile_train_step(config, setup, mesh)
    state, metrics = train_step(state, batch)
    # batch["image"]: (B * d_steps, H, W, C) uint8; batch["label"]: (B * d_steps,) int32

Every technique is a static choice bound from the config into `StepOptions` and
`Networks` (loss, R1 / gradient penalty, AC-GAN term, augmentation policy and ADA, EMA
half-life), so the loop stays the same and the step compiles once. The step is built from
top-level pure functions: `d_update` (one discriminator update), `g_update` (the
generator's), `ema_update`.

The generator runs forward once per discriminator update; the last of these forwards
also serves the G update through `jax.vjp` (its pullback), which back-propagates through
the freshly updated discriminator (as the reference PyTorch DCGAN does). A regularizer that
needs its own generator pass can differentiate `generator_objective(generate(params))`.
"""

import dataclasses
import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from pgen import augment, compiler, losses, pixels, regularizers, sharding
from pgen.state import GANState, Setup, state_shardings


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """The config's static choices that shape the train step."""
  batch_size: int  # Images per discriminator update (global).
  latent_dim: int
  num_classes: int  # > 0: labels go to G and D.
  acgan_weight: float  # > 0: D and G get the auxiliary classifier's cross-entropy.
  d_steps: int
  r1_weight: float  # gamma of R1; 0 = off.
  r1_every: int  # Lazy R1: applied every k steps, scaled by k.
  gp_weight: float  # lambda of the WGAN gradient penalty; 0 = off.
  augment_policy: tuple
  ada_target: float  # 0 = fixed augment probability.
  ada_interval: int
  ada_images: float  # Images over which ADA can move p from 0 to 1.
  hflip: bool
  ema_half_life_images: float
  ema_rampup: float  # > 0: half-life at most rampup * images seen (early samples track G).

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_classes: int):
    """From a resolved config (pgen.config.resolve checked every value)."""
    conditional = config.model.conditioning != "none"
    return cls(
        batch_size=config.batch_size,
        latent_dim=config.model.latent_dim,
        num_classes=num_classes if conditional else 0,
        acgan_weight=config.loss.acgan_weight if config.model.conditioning == "acgan" else 0.0,
        d_steps=config.optim.d_steps,
        r1_weight=config.loss.r1_weight,
        r1_every=config.loss.r1_every,
        gp_weight=config.loss.gp_weight,
        augment_policy=tuple(config.augment.policy),
        ada_target=config.augment.ada_target,
        ada_interval=config.augment.ada_interval,
        ada_images=config.augment.ada_kimg * 1000.0,
        hflip=config.augment.hflip,
        ema_half_life_images=config.ema.half_life_images,
        ema_rampup=config.ema.rampup)


@dataclasses.dataclass(frozen=True)
class Networks:
  """What a step applies: the models, their optimizers and the loss functions."""
  generator: Any
  discriminator: Any
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  d_loss_fn: Callable
  g_loss_fn: Callable


@flax.struct.dataclass
class DInputs:
  """What one discriminator update draws: its reals, the generator's inputs, its keys."""
  real: jax.Array
  real_labels: jax.Array | None
  z: jax.Array
  fake_labels: jax.Array | None
  real_aug_key: jax.Array
  fake_aug_key: jax.Array
  gp_key: jax.Array


def ema_beta(step, opts: StepOptions):
  """Per-step EMA decay for a half-life in images (StyleGAN2's ema_kimg, with ramp-up)."""
  half_life = jnp.asarray(opts.ema_half_life_images, jnp.float32)
  if opts.ema_rampup > 0:
    images_seen = (step + 1).astype(jnp.float32) * opts.batch_size
    half_life = jnp.minimum(half_life, images_seen * opts.ema_rampup)
  return 0.5 ** (opts.batch_size / jnp.maximum(half_life, 1e-8))


def _cross_entropy(class_logits, labels):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def _augmented(images, key, probability, opts: StepOptions):
  return augment.augment(images, key, policy=opts.augment_policy, probability=probability)


def d_outputs(nets: Networks, d_params, d_batch_stats, images, labels, train: bool = False):
  """D's (logits, class_logits, batch stats after the call) of `images`."""
  variables = {"params": d_params, "batch_stats": d_batch_stats}
  if train:
    (logits, class_logits), updates = nets.discriminator.apply(
        variables, images, labels, train=True, mutable=["batch_stats"])
    return logits, class_logits, updates.get("batch_stats", {})
  logits, class_logits = nets.discriminator.apply(variables, images, labels, train=False)
  return logits, class_logits, d_batch_stats


def generate(nets: Networks, g_params, g_batch_stats, z, labels):
  """(fake images, G's batch statistics after the call) in training mode."""
  fake, updates = nets.generator.apply({"params": g_params, "batch_stats": g_batch_stats}, z,
                                       labels, train=True, mutable=["batch_stats"])
  return fake, updates["batch_stats"]


def draw_d_inputs(rng, j: int, reals, real_labels, opts: StepOptions, batch_sharding) -> DInputs:
  """D update `j`'s reals (column j of the step's batch) and random draws."""
  z_key, label_key, real_aug_key, fake_aug_key, flip_key, gp_key = jax.random.split(
      jax.random.fold_in(rng, j), 6)
  conditional = opts.num_classes > 0
  z = jax.lax.with_sharding_constraint(
      jax.random.normal(z_key, (opts.batch_size, opts.latent_dim)), batch_sharding)
  real = reals[:, j]
  if opts.hflip:
    real = augment.random_hflip(real, flip_key)
  return DInputs(
      real=real,
      real_labels=real_labels[:, j] if conditional else None,
      z=z,
      fake_labels=(jax.random.randint(label_key, (opts.batch_size,), 0, opts.num_classes)
                   if conditional else None),
      real_aug_key=real_aug_key, fake_aug_key=fake_aug_key, gp_key=gp_key)


def discriminator_objective(d_params, d_batch_stats, fake, inputs: DInputs, probability, step,
                            *, nets: Networks, opts: StepOptions):
  """(D's loss, (logits_real, logits_fake, batch stats, loss terms)) for one update."""
  real_augmented = _augmented(inputs.real, inputs.real_aug_key, probability, opts)
  fake_augmented = _augmented(fake, inputs.fake_aug_key, probability, opts)
  logits_real, class_logits_real, new_stats = d_outputs(
      nets, d_params, d_batch_stats, real_augmented, inputs.real_labels, train=True)
  logits_fake, _, _ = d_outputs(nets, d_params, d_batch_stats, fake_augmented,
                                inputs.fake_labels)
  adversarial = nets.d_loss_fn(logits_real, logits_fake)
  terms = {"d_adversarial_loss": adversarial}
  loss = adversarial

  def logits_of(images):
    return d_outputs(nets, d_params, d_batch_stats, images, inputs.real_labels)[0]

  if opts.acgan_weight > 0:
    terms["d_class_loss"] = _cross_entropy(class_logits_real, inputs.real_labels)
    terms["d_class_accuracy_real"] = jnp.mean(
        jnp.argmax(class_logits_real, -1) == inputs.real_labels)
    loss += opts.acgan_weight * terms["d_class_loss"]
  if opts.r1_weight > 0:
    # Lazy R1 (StyleGAN2): every r1_every steps, with the weight scaled to match.
    terms["r1_penalty"] = jax.lax.cond(
        step % opts.r1_every == 0,
        # With respect to the un-augmented reals, through the augmentation (as ADA).
        lambda: regularizers.r1_penalty(
            lambda x: logits_of(_augmented(x, inputs.real_aug_key, probability, opts)),
            inputs.real),
        lambda: jnp.zeros((), jnp.float32))
    loss += 0.5 * opts.r1_weight * opts.r1_every * terms["r1_penalty"]
  if opts.gp_weight > 0:
    terms["gradient_penalty"] = regularizers.gradient_penalty(
        logits_of, real_augmented, fake_augmented, inputs.gp_key)
    loss += opts.gp_weight * terms["gradient_penalty"]
  return loss, (logits_real, logits_fake, new_stats, terms)


def d_update(state: GANState, fake, inputs: DInputs, j: int, *, nets: Networks,
             opts: StepOptions):
  """One discriminator update (the j-th of the step) on `fake` and `inputs.real`; ADA's
  probability follows D's logits on the reals."""
  objective = functools.partial(discriminator_objective, nets=nets, opts=opts)
  (d_loss, (logits_real, logits_fake, d_batch_stats, terms)), d_grads = jax.value_and_grad(
      objective, has_aux=True)(state.d_params, state.d_batch_stats, fake, inputs,
                               state.augment.probability, state.step)
  d_updates, d_opt_state = nets.d_tx.update(d_grads, state.d_opt_state, state.d_params)
  augment_state = state.augment
  if opts.ada_target > 0:
    augment_state = augment.ada_update(
        augment_state, logits_real, target=opts.ada_target, interval=opts.ada_interval,
        images_per_adjustment=opts.ada_images, step=state.step * opts.d_steps + j)
  metrics = {"d_loss": d_loss, "d_real_logit": jnp.mean(logits_real),
             "d_fake_logit": jnp.mean(logits_fake), "d_grad_norm": optax.global_norm(d_grads),
             **terms}
  return state.replace(d_params=optax.apply_updates(state.d_params, d_updates),
                       d_batch_stats=d_batch_stats, d_opt_state=d_opt_state,
                       augment=augment_state), metrics


def generator_objective(fake, d_params, d_batch_stats, fake_labels, key, probability, *,
                        nets: Networks, opts: StepOptions):
  """(G's loss, loss terms) as a function of its images, through the current D."""
  logits, class_logits, _ = d_outputs(nets, d_params, d_batch_stats,
                                      _augmented(fake, key, probability, opts), fake_labels)
  loss = nets.g_loss_fn(logits)
  terms = {}
  if opts.acgan_weight > 0:
    terms["g_class_loss"] = _cross_entropy(class_logits, fake_labels)
    loss += opts.acgan_weight * terms["g_class_loss"]
  return loss, terms


def g_update(state: GANState, fake, pullback, fake_labels, key, *, nets: Networks,
             opts: StepOptions):
  """The generator update: the loss's gradient at `fake`, pulled back to G's parameters by
  `pullback` (the vjp of the forward pass that made `fake`)."""
  objective = functools.partial(generator_objective, nets=nets, opts=opts)
  (g_loss, g_terms), g_loss_wrt_fake = jax.value_and_grad(objective, has_aux=True)(
      fake, state.d_params, state.d_batch_stats, fake_labels, key, state.augment.probability)
  (g_grads,) = pullback(g_loss_wrt_fake)
  g_updates, g_opt_state = nets.g_tx.update(g_grads, state.g_opt_state, state.g_params)
  metrics = {**g_terms, "g_loss": g_loss, "g_grad_norm": optax.global_norm(g_grads)}
  return state.replace(g_params=optax.apply_updates(state.g_params, g_updates),
                       g_opt_state=g_opt_state), metrics


def ema_update(state: GANState, opts: StepOptions):
  """(state with the EMA generator moved towards G, the decay used)."""
  beta = ema_beta(state.step, opts)
  ema_g_params = optax.incremental_update(state.g_params, state.ema_g_params, 1.0 - beta)
  return state.replace(ema_g_params=ema_g_params), beta


def train_step(state: GANState, batch, *, nets: Networks, opts: StepOptions, batch_sharding):
  rng = jax.random.fold_in(state.rng, state.step)
  b, d_steps = opts.batch_size, opts.d_steps
  # Rows i * d_steps + j are real example i of D update j: each device keeps its rows.
  reals = pixels.to_model_range(batch["image"]).reshape(b, d_steps, *batch["image"].shape[1:])
  real_labels = batch["label"].reshape(b, d_steps)
  d_metrics = {}
  for j in range(d_steps):
    inputs = draw_d_inputs(rng, j, reals, real_labels, opts, batch_sharding)
    forward = functools.partial(generate, nets, g_batch_stats=state.g_batch_stats, z=inputs.z,
                                labels=inputs.fake_labels)
    if j == d_steps - 1:
      fake, pullback, g_batch_stats = jax.vjp(forward, state.g_params, has_aux=True)
    else:
      fake, g_batch_stats = forward(state.g_params)
    state = state.replace(g_batch_stats=g_batch_stats)
    state, d_metrics = d_update(state, fake, inputs, j, nets=nets, opts=opts)
  state, g_metrics = g_update(state, fake, pullback, inputs.fake_labels,
                              jax.random.fold_in(rng, d_steps), nets=nets, opts=opts)
  state, beta = ema_update(state, opts)
  metrics = {**d_metrics, **g_metrics, "ema_beta": beta}
  if opts.augment_policy:
    metrics["augment_probability"] = state.augment.probability
  return state.replace(step=state.step + 1), metrics


def input_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config the input pipeline reads: one step consumes `optim.d_steps` real batches."""
  if config.optim.d_steps == 1:
    return config
  data_config = ml_collections.ConfigDict(config.to_dict())
  data_config.batch_size = config.batch_size * config.optim.d_steps
  return data_config


def make_train_step(config: ml_collections.ConfigDict, setup: Setup, mesh):
  """Binds the static choices of `config` into a pure (state, batch) -> (state, metrics)."""
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss.name)
  nets = Networks(setup.generator, setup.discriminator, setup.g_tx, setup.d_tx, d_loss_fn,
                  g_loss_fn)
  return functools.partial(train_step, nets=nets,
                           opts=StepOptions.from_config(config, setup.num_classes),
                           batch_sharding=sharding.batch_split(mesh))


def jit_train_step(step_fn, abstract_state, mesh, deterministic: bool = False):
  """Compiles with explicit shardings; the input state's buffers are donated."""
  shardings = state_shardings(abstract_state)
  batch = sharding.batch_split(mesh)
  return compiler.jit(step_fn, deterministic=deterministic, in_shardings=(shardings, batch),
                      out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))


def compile_train_step(config: ml_collections.ConfigDict, setup: Setup, mesh):
  """The jitted train step for `setup` (XLA compiles it on the first call)."""
  return jit_train_step(make_train_step(config, setup, mesh), setup.abstract_state, mesh,
                        config.deterministic)
