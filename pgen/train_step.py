"""The train step: `d_steps` discriminator updates, one generator update, then the EMA.

    step = make_train_step(config, generator, discriminator, g_tx, d_tx, mesh, num_classes)
    train_step = jit_train_step(step, abstract_state, mesh)
    state, metrics = train_step(state, batch)
    # batch["image"]: (B * d_steps, H, W, C) in [-1, 1]; batch["label"]: (B * d_steps,) int32

Every technique is a static choice bound by `make_train_step` from the config (loss,
R1 / gradient penalty, AC-GAN term, augmentation policy and ADA, EMA half-life), so the
loop stays the same and the step compiles once.

The generator runs forward once per discriminator update; the last of these forwards
also serves the G update through `jax.vjp`, which back-propagates through the freshly
updated discriminator (as the reference PyTorch DCGAN does).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax

from pgen import augment, compiler, losses, regularizers, sharding
from pgen.state import GANState, state_shardings


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
    conditional = config.model.conditioning != "none"
    if config.optim.d_steps < 1 or config.loss.r1_every < 1 or config.augment.ada_interval < 1:
      raise ValueError("optim.d_steps, loss.r1_every and augment.ada_interval must be >= 1.")
    return cls(
        batch_size=config.batch_size,
        latent_dim=config.model.latent_dim,
        num_classes=num_classes if conditional else 0,
        acgan_weight=config.loss.acgan_weight if config.model.conditioning == "acgan" else 0.0,
        d_steps=config.optim.d_steps,
        r1_weight=config.loss.r1_weight,
        r1_every=config.loss.r1_every,
        gp_weight=config.loss.gp_weight,
        augment_policy=augment.check_policy(config.augment.policy),
        ada_target=config.augment.ada_target,
        ada_interval=config.augment.ada_interval,
        ada_images=config.augment.ada_kimg * 1000.0,
        hflip=config.augment.hflip,
        ema_half_life_images=config.ema.half_life_images,
        ema_rampup=config.ema.rampup)


def ema_beta(step, opts: StepOptions):
  """Per-step EMA decay for a half-life in images (StyleGAN2's ema_kimg, with ramp-up)."""
  half_life = jnp.asarray(opts.ema_half_life_images, jnp.float32)
  if opts.ema_rampup > 0:
    images_seen = (step + 1).astype(jnp.float32) * opts.batch_size
    half_life = jnp.minimum(half_life, images_seen * opts.ema_rampup)
  return 0.5 ** (opts.batch_size / jnp.maximum(half_life, 1e-8))


def _cross_entropy(class_logits, labels):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def train_step(state: GANState, batch, *, generator, discriminator, g_tx, d_tx, d_loss_fn,
               g_loss_fn, opts: StepOptions, batch_sharding):
  rng = jax.random.fold_in(state.rng, state.step)
  b, d_steps = opts.batch_size, opts.d_steps
  # Rows i * d_steps + j are real example i of D update j: each device keeps its rows.
  reals = batch["image"].reshape(b, d_steps, *batch["image"].shape[1:])
  real_labels_all = batch["label"].reshape(b, d_steps)
  conditional = opts.num_classes > 0

  def d_logits(d_params, d_batch_stats, images, labels, train=False):
    """D's (logits, class_logits, updated batch stats) of augmented images."""
    variables = {"params": d_params, "batch_stats": d_batch_stats}
    if train:
      (logits, class_logits), updates = discriminator.apply(
          variables, images, labels, train=True, mutable=["batch_stats"])
      return logits, class_logits, updates.get("batch_stats", {})
    logits, class_logits = discriminator.apply(variables, images, labels, train=False)
    return logits, class_logits, d_batch_stats

  def augmented(images, key, probability):
    return augment.augment(images, key, policy=opts.augment_policy, probability=probability)

  g_params, g_batch_stats = state.g_params, state.g_batch_stats
  d_params, d_batch_stats, d_opt_state = state.d_params, state.d_batch_stats, state.d_opt_state
  augment_state = state.augment
  d_metrics = {}
  for j in range(d_steps):
    key = jax.random.fold_in(rng, j)
    z_key, label_key, real_aug_key, fake_aug_key, flip_key, gp_key = jax.random.split(key, 6)
    z = jax.lax.with_sharding_constraint(jax.random.normal(z_key, (b, opts.latent_dim)),
                                         batch_sharding)
    fake_labels = (jax.random.randint(label_key, (b,), 0, opts.num_classes)
                   if conditional else None)
    real = reals[:, j]
    real_labels = real_labels_all[:, j] if conditional else None
    if opts.hflip:
      real = augment.random_hflip(real, flip_key)

    def generate(params, stats=g_batch_stats, z=z, fake_labels=fake_labels):
      fake, updates = generator.apply({"params": params, "batch_stats": stats}, z, fake_labels,
                                      train=True, mutable=["batch_stats"])
      return fake, updates["batch_stats"]

    if j == d_steps - 1:
      fake, generator_vjp, g_batch_stats = jax.vjp(generate, g_params, has_aux=True)
    else:
      fake, g_batch_stats = generate(g_params)
    probability = augment_state.probability

    def discriminator_objective(d_params, real=real, real_labels=real_labels, fake=fake,
                                fake_labels=fake_labels, real_aug_key=real_aug_key,
                                fake_aug_key=fake_aug_key, gp_key=gp_key):
      real_augmented = augmented(real, real_aug_key, probability)
      fake_augmented = augmented(fake, fake_aug_key, probability)
      logits_real, class_logits_real, new_stats = d_logits(
          d_params, d_batch_stats, real_augmented, real_labels, train=True)
      logits_fake, _, _ = d_logits(d_params, d_batch_stats, fake_augmented, fake_labels)
      adversarial = d_loss_fn(logits_real, logits_fake)
      terms = {"d_adversarial_loss": adversarial}
      loss = adversarial

      def logits_of(images):
        return d_logits(d_params, d_batch_stats, images, real_labels)[0]

      if opts.acgan_weight > 0:
        terms["d_class_loss"] = _cross_entropy(class_logits_real, real_labels)
        terms["d_class_accuracy_real"] = jnp.mean(
            jnp.argmax(class_logits_real, -1) == real_labels)
        loss += opts.acgan_weight * terms["d_class_loss"]
      if opts.r1_weight > 0:
        # Lazy R1 (StyleGAN2): every r1_every steps, with the weight scaled to match.
        terms["r1_penalty"] = jax.lax.cond(
            state.step % opts.r1_every == 0,
            # With respect to the un-augmented reals, through the augmentation (as ADA).
            lambda: regularizers.r1_penalty(
                lambda x: logits_of(augmented(x, real_aug_key, probability)), real),
            lambda: jnp.zeros((), jnp.float32))
        loss += 0.5 * opts.r1_weight * opts.r1_every * terms["r1_penalty"]
      if opts.gp_weight > 0:
        terms["gradient_penalty"] = regularizers.gradient_penalty(
            logits_of, real_augmented, fake_augmented, gp_key)
        loss += opts.gp_weight * terms["gradient_penalty"]
      return loss, (logits_real, logits_fake, new_stats, terms)

    (d_loss, (logits_real, logits_fake, d_batch_stats, terms)), d_grads = jax.value_and_grad(
        discriminator_objective, has_aux=True)(d_params)
    d_updates, d_opt_state = d_tx.update(d_grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, d_updates)
    if opts.ada_target > 0:
      augment_state = augment.ada_update(
          augment_state, logits_real, target=opts.ada_target, interval=opts.ada_interval,
          images_per_adjustment=opts.ada_images, step=state.step * d_steps + j)
    d_metrics = {"d_loss": d_loss, "d_real_logit": jnp.mean(logits_real),
                 "d_fake_logit": jnp.mean(logits_fake), "d_grad_norm": optax.global_norm(d_grads),
                 **terms}

  g_aug_key = jax.random.fold_in(rng, d_steps)

  def generator_objective(fake_images):
    logits, class_logits, _ = d_logits(
        d_params, d_batch_stats,
        augmented(fake_images, g_aug_key, augment_state.probability), fake_labels)
    loss = g_loss_fn(logits)
    terms = {}
    if opts.acgan_weight > 0:
      terms["g_class_loss"] = _cross_entropy(class_logits, fake_labels)
      loss += opts.acgan_weight * terms["g_class_loss"]
    return loss, terms

  (g_loss, g_terms), g_loss_wrt_fake = jax.value_and_grad(generator_objective, has_aux=True)(fake)
  (g_grads,) = generator_vjp(g_loss_wrt_fake)
  g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, g_params)
  g_params = optax.apply_updates(g_params, g_updates)

  beta = ema_beta(state.step, opts)
  ema_g_params = optax.incremental_update(g_params, state.ema_g_params, 1.0 - beta)

  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats, d_params=d_params,
      d_batch_stats=d_batch_stats, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
      ema_g_params=ema_g_params, augment=augment_state)
  metrics = {
      **d_metrics,
      **g_terms,
      "g_loss": g_loss,
      "g_grad_norm": optax.global_norm(g_grads),
      "ema_beta": beta,
  }
  if opts.augment_policy:
    metrics["augment_probability"] = augment_state.probability
  return new_state, metrics


def make_train_step(config, generator, discriminator, g_tx, d_tx, mesh, num_classes: int):
  """Binds the static choices of `config` into a pure (state, batch) -> (state, metrics)."""
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss.name)
  return functools.partial(
      train_step, generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
      d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
      opts=StepOptions.from_config(config, num_classes),
      batch_sharding=sharding.batch_split(mesh))


def jit_train_step(step_fn, abstract_state, mesh):
  """Compiles with explicit shardings; the input state's buffers are donated."""
  shardings = state_shardings(abstract_state)
  batch = sharding.batch_split(mesh)
  return compiler.jit(step_fn, in_shardings=(shardings, batch),
                      out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))
