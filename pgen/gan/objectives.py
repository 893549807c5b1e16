"""The GAN objectives and the updates built from them: what one train step computes.

    spec = StepSpec.create(config, setup, mesh)
    state, metrics = train_step(state, batch, LazyPhases(), spec=spec)   # pure; jit it
    # batch["image"]: (images_per_step, H, W, C) uint8; batch["label"]: (images_per_step,)

`spec` (pgen/gan/step_spec.py) holds everything static the step needs: the Setup's networks,
optimizers and losses, the config's choices and the batch sharding. A step is
`optim.d_steps` discriminator updates (`d_update`), one generator update (`g_update`), then
`ema_update`; with loss.lazy_regularization="separate" the lazy regularizers take steps of
their own (`gradient_penalty_update`, `path_length_update`): D, D's regularizer, G, G's
regularizer. Every random draw (latents, augmentation, the generator's noise and style
mixing) comes from fold_in(rng, step). Which lazy regularizers a step runs (`LazyPhases`)
is a static argument; pgen/training/compiled_step.py compiles a program per combination and picks
it by step on the host.

The generator runs forward once per discriminator update; the last of these forwards also
serves the G update through `jax.vjp` (its pullback), which back-propagates through the
freshly updated discriminator (as the reference PyTorch DCGAN does). A regularizer that
needs its own generator pass differentiates `generator_objective(generate(params))`.
"""

import functools

import flax
import jax
import jax.numpy as jnp
import optax

from pgen.core import pixels
from pgen.gan import augment, regularizers, schedules
from pgen.gan.state import GANState
from pgen.gan.step_spec import LazyPhases, StepOptions, StepSpec


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
  g_key: jax.Array  # The generator's own draws: StyleGAN2's noise and style mixing.


def ema_beta(step, opts: StepOptions):
  """Per-step EMA decay for a half-life in images (StyleGAN2's ema_kimg, with ramp-up; or
  R3GAN's, growing from 0 along the schedule)."""
  half_life = opts.ema_half_life_images * opts.schedule.ema_scale(step)
  if opts.ema_rampup > 0:
    images_seen = (step + 1).astype(jnp.float32) * opts.batch_size
    half_life = jnp.minimum(half_life, images_seen * opts.ema_rampup)
  return 0.5 ** (opts.batch_size / jnp.maximum(half_life, 1e-8))


def _cross_entropy(class_logits, labels):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def _augmented(images, key, probability, opts: StepOptions):
  return augment.augment(images, key, policy=opts.augment_policy, probability=probability)


def _apply_optimizer(tx, params, opt_state, grads):
  """(params, opt_state) after one step of the optimizer `tx` on `grads`."""
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def d_outputs(spec: StepSpec, d_params, d_batch_stats, images, labels, train: bool = False):
  """D's (logits, class_logits, batch stats after the call) of `images`."""
  variables = {"params": d_params, "batch_stats": d_batch_stats}
  discriminator = spec.setup.discriminator
  if train:
    (logits, class_logits), updates = discriminator.apply(
        variables, images, labels, train=True, mutable=["batch_stats"])
    return logits, class_logits, updates.get("batch_stats", {})
  logits, class_logits = discriminator.apply(variables, images, labels, train=False)
  return logits, class_logits, d_batch_stats


def _generator_rngs(key) -> dict:
  """The rngs a generator may draw from in training (families without noise ignore them)."""
  noise_key, mixing_key = jax.random.split(key)
  return {"noise": noise_key, "mixing": mixing_key}


def generate(spec: StepSpec, g_params, g_batch_stats, z, labels, key):
  """(fake images, G's batch statistics after the call) in training mode."""
  fake, updates = spec.setup.generator.apply(
      {"params": g_params, "batch_stats": g_batch_stats}, z, labels, train=True,
      mutable=["batch_stats"], rngs=_generator_rngs(key))
  return fake, updates["batch_stats"]


def draw_d_inputs(rng, j: int, reals, real_labels, spec: StepSpec) -> DInputs:
  """D update `j`'s reals (column j of the step's batch) and random draws."""
  opts = spec.options
  z_key, label_key, real_aug_key, fake_aug_key, flip_key, gp_key, g_key = jax.random.split(
      jax.random.fold_in(rng, j), 7)
  conditional = opts.num_classes > 0
  z = jax.lax.with_sharding_constraint(
      jax.random.normal(z_key, (opts.batch_size, opts.latent_dim)), spec.batch_sharding)
  real = reals[:, j]
  if opts.hflip:
    real = augment.random_hflip(real, flip_key)
  return DInputs(
      real=real,
      real_labels=real_labels[:, j] if conditional else None,
      z=z,
      fake_labels=(jax.random.randint(label_key, (opts.batch_size,), 0, opts.num_classes)
                   if conditional else None),
      real_aug_key=real_aug_key, fake_aug_key=fake_aug_key, gp_key=gp_key, g_key=g_key)


def r1_penalty_at(d_params, d_batch_stats, inputs: DInputs, probability, spec: StepSpec):
  """R1 with respect to the un-augmented reals, through the augmentation (as ADA)."""
  def logits_of(images):
    augmented = _augmented(images, inputs.real_aug_key, probability, spec.options)
    return d_outputs(spec, d_params, d_batch_stats, augmented, inputs.real_labels)[0]

  return regularizers.r1_penalty(logits_of, inputs.real)


def r2_penalty_at(d_params, d_batch_stats, fake, inputs: DInputs, probability,
                  spec: StepSpec):
  """R2 with respect to the un-augmented fakes (held fixed), through the augmentation."""
  def logits_of(images):
    augmented = _augmented(images, inputs.fake_aug_key, probability, spec.options)
    return d_outputs(spec, d_params, d_batch_stats, augmented, inputs.fake_labels)[0]

  return regularizers.r2_penalty(logits_of, jax.lax.stop_gradient(fake))


def gradient_penalty_terms(d_params, d_batch_stats, fake, inputs: DInputs, probability,
                           gamma_scale, spec: StepSpec) -> tuple[jax.Array, dict]:
  """(the weighted sum of R1 and R2, whichever are on, {"r1_penalty", "r2_penalty"});
  `gamma_scale`: the schedule's factor of both gammas."""
  opts = spec.options
  terms, loss = {}, jnp.zeros((), jnp.float32)
  if opts.r1_weight > 0:
    terms["r1_penalty"] = r1_penalty_at(d_params, d_batch_stats, inputs, probability, spec)
    loss += lazy_loss_weight(opts.r1_weight, opts) * terms["r1_penalty"]
  if opts.r2_weight > 0:
    terms["r2_penalty"] = r2_penalty_at(d_params, d_batch_stats, fake, inputs, probability,
                                        spec)
    loss += lazy_loss_weight(opts.r2_weight, opts) * terms["r2_penalty"]
  return gamma_scale * loss, terms


def lazy_loss_weight(gamma: float, opts: StepOptions) -> float:
  """gamma / 2, times k for a penalty applied every k-th step (lazy regularization)."""
  return 0.5 * gamma * opts.r1_every


def discriminator_objective(d_params, d_batch_stats, fake, inputs: DInputs, probability,
                            gamma_scale, *, spec: StepSpec, phases: LazyPhases):
  """(D's loss, (logits_real, logits_fake, batch stats, loss terms)) for one update."""
  opts = spec.options
  real_augmented = _augmented(inputs.real, inputs.real_aug_key, probability, opts)
  fake_augmented = _augmented(fake, inputs.fake_aug_key, probability, opts)
  logits_real, class_logits_real, new_stats = d_outputs(
      spec, d_params, d_batch_stats, real_augmented, inputs.real_labels, train=True)
  logits_fake, _, _ = d_outputs(spec, d_params, d_batch_stats, fake_augmented,
                                inputs.fake_labels)
  adversarial = spec.setup.d_loss_fn(logits_real, logits_fake)
  terms = {"d_adversarial_loss": adversarial}
  loss = adversarial
  if opts.acgan_weight > 0:
    terms["d_class_loss"] = _cross_entropy(class_logits_real, inputs.real_labels)
    terms["d_class_accuracy_real"] = jnp.mean(
        jnp.argmax(class_logits_real, -1) == inputs.real_labels)
    loss += opts.acgan_weight * terms["d_class_loss"]
  if phases.r1 and not opts.separate_regularization:
    # Lazy R1 and R2 (StyleGAN2): every r1_every steps, with the weights scaled to match.
    penalties, penalty_terms = gradient_penalty_terms(d_params, d_batch_stats, fake, inputs,
                                                      probability, gamma_scale, spec)
    terms.update(penalty_terms)
    loss += penalties
  if opts.gp_weight > 0:
    def logits_of(images):
      return d_outputs(spec, d_params, d_batch_stats, images, inputs.real_labels)[0]

    terms["gradient_penalty"] = regularizers.gradient_penalty(
        logits_of, real_augmented, fake_augmented, inputs.gp_key)
    loss += opts.gp_weight * terms["gradient_penalty"]
  return loss, (logits_real, logits_fake, new_stats, terms)


def d_update(state: GANState, fake, inputs: DInputs, j: int, *, spec: StepSpec,
             phases: LazyPhases):
  """One discriminator update (the j-th of the step) on `fake` and `inputs.real`; ADA's
  probability follows D's logits on the reals."""
  opts = spec.options
  objective = functools.partial(discriminator_objective, spec=spec, phases=phases)
  (d_loss, (logits_real, logits_fake, d_batch_stats, terms)), d_grads = jax.value_and_grad(
      objective, has_aux=True)(state.d_params, state.d_batch_stats, fake, inputs,
                               state.augment.probability, opts.schedule.gamma_scale(state.step))
  d_params, d_opt_state = _apply_optimizer(spec.setup.d_tx, state.d_params, state.d_opt_state,
                                           d_grads)
  augment_state = state.augment
  if opts.ada_target > 0:
    augment_state = augment.ada_update(
        augment_state, logits_real, target=opts.ada_target, interval=opts.ada_interval,
        images_per_adjustment=opts.ada_images, step=state.step * opts.d_steps + j)
  metrics = {"d_loss": d_loss, "d_real_logit": jnp.mean(logits_real),
             "d_fake_logit": jnp.mean(logits_fake), "d_grad_norm": optax.global_norm(d_grads),
             **terms}
  return state.replace(d_params=d_params, d_batch_stats=d_batch_stats,
                       d_opt_state=d_opt_state, augment=augment_state), metrics


def gradient_penalty_update(state: GANState, fake, inputs: DInputs, *, spec: StepSpec):
  """loss.lazy_regularization="separate", on R1's steps: a D step of its own on the
  weighted R1 and R2 penalties at the last update's reals and fakes (StyleGAN2's Dreg
  phase); returns (state, the penalties)."""
  def objective(d_params):
    return gradient_penalty_terms(d_params, state.d_batch_stats, fake, inputs,
                                  state.augment.probability,
                                  spec.options.schedule.gamma_scale(state.step), spec)

  (_, terms), grads = jax.value_and_grad(objective, has_aux=True)(state.d_params)
  d_params, d_opt_state = _apply_optimizer(spec.setup.d_tx, state.d_params, state.d_opt_state,
                                           grads)
  return state.replace(d_params=d_params, d_opt_state=d_opt_state), terms


def generator_objective(fake, d_params, d_batch_stats, inputs: DInputs, key, probability, *,
                        spec: StepSpec):
  """(G's loss, loss terms) as a function of its images, through the current D; a
  relativistic loss compares them with D's logits of the update's reals."""
  opts = spec.options
  logits, class_logits, _ = d_outputs(spec, d_params, d_batch_stats,
                                      _augmented(fake, key, probability, opts),
                                      inputs.fake_labels)
  logits_real = None
  if opts.g_loss_uses_reals:
    logits_real = d_outputs(spec, d_params, d_batch_stats,
                            _augmented(inputs.real, jax.random.fold_in(key, 2), probability,
                                       opts),
                            inputs.real_labels)[0]
  loss = spec.setup.g_loss_fn(logits, logits_real)
  terms = {}
  if opts.acgan_weight > 0:
    terms["g_class_loss"] = _cross_entropy(class_logits, inputs.fake_labels)
    loss += opts.acgan_weight * terms["g_class_loss"]
  if spec.reward is not None:
    terms["g_log_accept"] = jnp.mean(spec.reward(fake, inputs.fake_labels))
    loss -= opts.feedback_weight * terms["g_log_accept"]
  return loss, terms


def path_length_objective(g_params, g_batch_stats, mean, key, *, spec: StepSpec):
  """(weighted penalty, (penalty, updated running mean)) of StyleGAN2's path-length
  regularizer on pl_batch_size fresh latents, styles mixed and noise drawn as in training."""
  opts, generator = spec.options, spec.setup.generator
  z_key, label_key, g_key, direction_key = jax.random.split(key, 4)
  z = jax.lax.with_sharding_constraint(
      jax.random.normal(z_key, (opts.pl_batch_size, opts.latent_dim)), spec.batch_sharding)
  labels = (jax.random.randint(label_key, (opts.pl_batch_size,), 0, opts.num_classes)
            if opts.num_classes else None)
  variables = {"params": g_params, "batch_stats": g_batch_stats}
  rngs = _generator_rngs(g_key)
  ws = generator.apply(variables, z, labels, train=True, update_w_avg=False,
                       method="map_latents", rngs=rngs)

  def synthesize(ws):
    return generator.apply(variables, ws, train=True, method="synthesize", rngs=rngs)

  penalty, mean = regularizers.path_length_penalty(synthesize, ws, direction_key, mean,
                                                   opts.pl_decay)
  return opts.pl_weight * opts.pl_every * penalty, (penalty, mean)


def path_length_gradients(state: GANState, key, *, spec: StepSpec):
  """(G's gradient of the weighted path-length penalty, the penalty, the updated running
  mean)."""
  objective = functools.partial(path_length_objective, spec=spec)
  (_, (penalty, mean)), grads = jax.value_and_grad(objective, has_aux=True)(
      state.g_params, state.g_batch_stats, state.path_length_mean, key)
  return grads, penalty, mean


def g_update(state: GANState, fake, pullback, inputs: DInputs, key, *, spec: StepSpec,
             phases: LazyPhases):
  """The generator update: the loss's gradient at `fake`, pulled back to G's parameters by
  `pullback` (the vjp of the forward pass that made `fake`), plus the path-length
  penalty's on its steps when lazy regularization is "joint"."""
  objective = functools.partial(generator_objective, spec=spec)
  (g_loss, g_terms), g_loss_wrt_fake = jax.value_and_grad(objective, has_aux=True)(
      fake, state.d_params, state.d_batch_stats, inputs, key, state.augment.probability)
  (g_grads,) = pullback(g_loss_wrt_fake)
  metrics = {**g_terms, "g_loss": g_loss, "g_grad_norm": optax.global_norm(g_grads)}
  if phases.path_length and not spec.options.separate_regularization:
    pl_grads, metrics["path_length_penalty"], mean = path_length_gradients(
        state, jax.random.fold_in(key, 1), spec=spec)
    g_grads = jax.tree.map(jnp.add, g_grads, pl_grads)
    state = state.replace(path_length_mean=mean)
  g_params, g_opt_state = _apply_optimizer(spec.setup.g_tx, state.g_params, state.g_opt_state,
                                           g_grads)
  return state.replace(g_params=g_params, g_opt_state=g_opt_state), metrics


def path_length_update(state: GANState, key, *, spec: StepSpec):
  """loss.lazy_regularization="separate", on path length's steps: a G step of its own on
  the weighted path-length penalty (StyleGAN2's Greg phase)."""
  grads, penalty, mean = path_length_gradients(state, key, spec=spec)
  g_params, g_opt_state = _apply_optimizer(spec.setup.g_tx, state.g_params, state.g_opt_state,
                                           grads)
  return state.replace(g_params=g_params, g_opt_state=g_opt_state,
                       path_length_mean=mean), penalty


def ema_update(state: GANState, opts: StepOptions):
  """(state with the EMA generator moved towards G, the decay used)."""
  beta = ema_beta(state.step, opts)
  ema_g_params = optax.incremental_update(state.g_params, state.ema_g_params, 1.0 - beta)
  return state.replace(ema_g_params=ema_g_params), beta


def _lazy_penalty_zeros(opts: StepOptions) -> dict:
  """Zeros for the lazy regularizers' penalties, which their own steps overwrite: every
  program returns the same metrics (the loop averages them over steps)."""
  zero = jnp.zeros((), jnp.float32)
  return {**({"r1_penalty": zero} if opts.r1_weight > 0 else {}),
          **({"r2_penalty": zero} if opts.r2_weight > 0 else {}),
          **({"path_length_penalty": zero} if opts.pl_weight > 0 else {})}


def _d_updates(state: GANState, rng, batch, *, spec: StepSpec, phases: LazyPhases):
  """The step's d_steps discriminator updates, each on its own reals and fakes: (state,
  the last update's inputs, its fakes and the pullback of G's forward that made them,
  its metrics)."""
  b, d_steps = spec.options.batch_size, spec.options.d_steps
  # Rows i * d_steps + j are real example i of D update j: each device keeps its rows.
  reals = pixels.to_model_range(batch["image"]).reshape(b, d_steps, *batch["image"].shape[1:])
  real_labels = batch["label"].reshape(b, d_steps)
  for j in range(d_steps):
    inputs = draw_d_inputs(rng, j, reals, real_labels, spec)
    forward = functools.partial(generate, spec, g_batch_stats=state.g_batch_stats, z=inputs.z,
                                labels=inputs.fake_labels, key=inputs.g_key)
    if j == d_steps - 1:
      fake, pullback, g_batch_stats = jax.vjp(forward, state.g_params, has_aux=True)
    else:
      fake, g_batch_stats = forward(state.g_params)
    state = state.replace(g_batch_stats=g_batch_stats)
    state, metrics = d_update(state, fake, inputs, j, spec=spec, phases=phases)
  return state, inputs, fake, pullback, metrics


def _scheduled(state: GANState, opts: StepOptions) -> GANState:
  """`state` with the optimizers' and augmentation's values of its step's schedule."""
  state = schedules.with_scheduled_optimizers(state, opts.schedule, state.step)
  if opts.schedule.augment_from_zero:
    probability = opts.schedule.augment_probability_at(state.step)
    state = state.replace(augment=state.augment.replace(probability=probability))
  return state


def train_step(state: GANState, batch, phases: LazyPhases = LazyPhases(), *, spec: StepSpec):
  """One step: D's updates, G's, the lazy regularizers' own steps when separate, the EMA."""
  opts = spec.options
  rng = jax.random.fold_in(state.rng, state.step)
  state = _scheduled(state, opts)
  state, inputs, fake, pullback, d_metrics = _d_updates(state, rng, batch, spec=spec,
                                                        phases=phases)
  separate = opts.separate_regularization
  if phases.r1 and separate:
    state, penalties = gradient_penalty_update(state, fake, inputs, spec=spec)
    d_metrics.update(penalties)
  g_key = jax.random.fold_in(rng, opts.d_steps)
  state, g_metrics = g_update(state, fake, pullback, inputs, g_key, spec=spec, phases=phases)
  if phases.path_length and separate:
    state, g_metrics["path_length_penalty"] = path_length_update(
        state, jax.random.fold_in(g_key, 1), spec=spec)
  if opts.pl_weight > 0:
    g_metrics["path_length_mean"] = state.path_length_mean
  state, beta = ema_update(state, opts)
  metrics = {**_lazy_penalty_zeros(opts), **d_metrics, **g_metrics, "ema_beta": beta}
  if opts.augment_policy:
    metrics["augment_probability"] = state.augment.probability
  return state.replace(step=state.step + 1), metrics
