"""The train step: `d_steps` discriminator updates, one generator update, then the EMA.

    train_step = compile_train_step(config, setup, mesh)
    state, metrics = train_step(state, batch)               # reads state.step (a sync)
    state, metrics = train_step.at(step)(state, batch)      # the loop's: `step` updates done
    # batch["image"]: (B * d_steps, H, W, C) uint8; batch["label"]: (B * d_steps,) int32

Every technique is a static choice bound from the config into `StepOptions` and
`Networks` (loss, R1 / gradient penalty / path length, AC-GAN term, augmentation policy
and ADA, EMA half-life), so the loop stays the same. The step is built from top-level pure
functions: `d_update` (one discriminator update), `g_update` (the generator's),
`ema_update`, and with loss.lazy_regularization="separate" the regularizers' own steps
`r1_update` and `path_length_update` (StyleGAN2's order: D, D's regularizer, G, G's
regularizer). Every random draw (latents, augmentation, the generator's noise and style
mixing) comes from fold_in(rng, step).

Lazy regularizers (R1 every r1_every steps, path length every pl_every) are static too:
`phases` (LazyPhases) says which run, and `TrainStep` picks it on the host from the step
number, so a run compiles one program per combination it meets (at most four) and each
program runs exactly its work. A `lax.cond` on the step would keep one program, but
XLA:CPU compiles the convolutions inside a conditional's branches as plain loops: an R1
step took 26x a plain one there, 2.6x the cost of the shipped R1 config on average.

The generator runs forward once per discriminator update; the last of these forwards
also serves the G update through `jax.vjp` (its pullback), which back-propagates through
the freshly updated discriminator (as the reference PyTorch DCGAN does). A regularizer that
needs its own generator pass can differentiate `generator_objective(generate(params))`.
"""

import collections
import dataclasses
import functools
import math
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from pgen import augment, compiler, losses, performance, pixels, regularizers, sharding
from pgen.errors import ConfigError
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
  pl_weight: float  # Path-length regularization of G; 0 = off.
  pl_every: int  # Lazy: every k steps, scaled by k.
  pl_batch_size: int  # Latents of its batch (global).
  pl_decay: float  # Of its running mean.
  separate_regularization: bool  # Lazy regularizers take optimizer steps of their own.
  augment_policy: tuple | str  # augment.parse_policy's.
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
        pl_weight=config.loss.pl_weight,
        pl_every=config.loss.pl_every,
        pl_batch_size=config.batch_size // config.loss.pl_batch_shrink,
        pl_decay=config.loss.pl_decay,
        separate_regularization=config.loss.lazy_regularization == "separate",
        augment_policy=augment.parse_policy(config.augment.policy),
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
  g_key: jax.Array  # The generator's own draws: StyleGAN2's noise and style mixing.


@dataclasses.dataclass(frozen=True)
class LazyPhases:
  """The lazy regularizers one step runs: a static argument of the step."""
  r1: bool = False
  path_length: bool = False


def lazy_phases(step: int, opts: StepOptions) -> LazyPhases:
  """What the update after `step` completed updates runs (every k-th, from step 0)."""
  return LazyPhases(r1=opts.r1_weight > 0 and step % opts.r1_every == 0,
                    path_length=opts.pl_weight > 0 and step % opts.pl_every == 0)


def lazy_cycle(opts: StepOptions) -> dict[LazyPhases, float]:
  """Each combination of lazy regularizers a run meets, with its share of the steps."""
  cycle = math.lcm(opts.r1_every if opts.r1_weight > 0 else 1,
                   opts.pl_every if opts.pl_weight > 0 else 1)
  counts = collections.Counter(lazy_phases(step, opts) for step in range(cycle))
  return {phases: count / cycle for phases, count in counts.items()}


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


def _generator_rngs(key) -> dict:
  """The rngs a generator may draw from in training (families without noise ignore them)."""
  noise_key, mixing_key = jax.random.split(key)
  return {"noise": noise_key, "mixing": mixing_key}


def generate(nets: Networks, g_params, g_batch_stats, z, labels, key):
  """(fake images, G's batch statistics after the call) in training mode."""
  fake, updates = nets.generator.apply({"params": g_params, "batch_stats": g_batch_stats}, z,
                                       labels, train=True, mutable=["batch_stats"],
                                       rngs=_generator_rngs(key))
  return fake, updates["batch_stats"]


def draw_d_inputs(rng, j: int, reals, real_labels, opts: StepOptions, batch_sharding) -> DInputs:
  """D update `j`'s reals (column j of the step's batch) and random draws."""
  z_key, label_key, real_aug_key, fake_aug_key, flip_key, gp_key, g_key = jax.random.split(
      jax.random.fold_in(rng, j), 7)
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
      real_aug_key=real_aug_key, fake_aug_key=fake_aug_key, gp_key=gp_key, g_key=g_key)


def r1_penalty_at(d_params, d_batch_stats, inputs: DInputs, probability, *, nets: Networks,
                  opts: StepOptions):
  """R1 with respect to the un-augmented reals, through the augmentation (as ADA)."""
  def logits_of(images):
    augmented = _augmented(images, inputs.real_aug_key, probability, opts)
    return d_outputs(nets, d_params, d_batch_stats, augmented, inputs.real_labels)[0]

  return regularizers.r1_penalty(logits_of, inputs.real)


def r1_loss_weight(opts: StepOptions) -> float:
  """gamma / 2, times k for a penalty applied every k-th step (lazy regularization)."""
  return 0.5 * opts.r1_weight * opts.r1_every


def discriminator_objective(d_params, d_batch_stats, fake, inputs: DInputs, probability, *,
                            nets: Networks, opts: StepOptions, phases: LazyPhases):
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
  if phases.r1 and not opts.separate_regularization:
    # Lazy R1 (StyleGAN2): every r1_every steps, with the weight scaled to match.
    terms["r1_penalty"] = r1_penalty_at(d_params, d_batch_stats, inputs, probability,
                                        nets=nets, opts=opts)
    loss += r1_loss_weight(opts) * terms["r1_penalty"]
  if opts.gp_weight > 0:
    terms["gradient_penalty"] = regularizers.gradient_penalty(
        logits_of, real_augmented, fake_augmented, inputs.gp_key)
    loss += opts.gp_weight * terms["gradient_penalty"]
  return loss, (logits_real, logits_fake, new_stats, terms)


def d_update(state: GANState, fake, inputs: DInputs, j: int, *, nets: Networks,
             opts: StepOptions, phases: LazyPhases):
  """One discriminator update (the j-th of the step) on `fake` and `inputs.real`; ADA's
  probability follows D's logits on the reals."""
  objective = functools.partial(discriminator_objective, nets=nets, opts=opts, phases=phases)
  (d_loss, (logits_real, logits_fake, d_batch_stats, terms)), d_grads = jax.value_and_grad(
      objective, has_aux=True)(state.d_params, state.d_batch_stats, fake, inputs,
                               state.augment.probability)
  d_params, d_opt_state = _adam_step(nets.d_tx, state.d_params, state.d_opt_state, d_grads)
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


def _adam_step(tx, params, opt_state, grads):
  """(params, opt_state) after one optimizer step on `grads`."""
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def r1_update(state: GANState, inputs: DInputs, *, nets: Networks, opts: StepOptions):
  """loss.lazy_regularization="separate", on R1's steps: a D step of its own on the
  weighted R1 penalty at the last update's reals (StyleGAN2's Dreg phase)."""
  def objective(d_params):
    penalty = r1_penalty_at(d_params, state.d_batch_stats, inputs, state.augment.probability,
                            nets=nets, opts=opts)
    return r1_loss_weight(opts) * penalty, penalty

  (_, penalty), grads = jax.value_and_grad(objective, has_aux=True)(state.d_params)
  d_params, d_opt_state = _adam_step(nets.d_tx, state.d_params, state.d_opt_state, grads)
  return state.replace(d_params=d_params, d_opt_state=d_opt_state), penalty


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


def path_length_objective(g_params, g_batch_stats, mean, key, *, nets: Networks,
                          opts: StepOptions, batch_sharding):
  """(weighted penalty, (penalty, updated running mean)) of StyleGAN2's path-length
  regularizer on pl_batch_size fresh latents, styles mixed and noise drawn as in training."""
  z_key, label_key, g_key, direction_key = jax.random.split(key, 4)
  z = jax.lax.with_sharding_constraint(
      jax.random.normal(z_key, (opts.pl_batch_size, opts.latent_dim)), batch_sharding)
  labels = (jax.random.randint(label_key, (opts.pl_batch_size,), 0, opts.num_classes)
            if opts.num_classes else None)
  variables = {"params": g_params, "batch_stats": g_batch_stats}
  rngs = _generator_rngs(g_key)
  ws = nets.generator.apply(variables, z, labels, train=True, update_w_avg=False,
                            method="map_latents", rngs=rngs)

  def synthesize(ws):
    return nets.generator.apply(variables, ws, train=True, method="synthesize", rngs=rngs)

  penalty, mean = regularizers.path_length_penalty(synthesize, ws, direction_key, mean,
                                                   opts.pl_decay)
  return opts.pl_weight * opts.pl_every * penalty, (penalty, mean)


def path_length_gradients(state: GANState, key, *, nets: Networks, opts: StepOptions,
                          batch_sharding):
  """(G's gradient of the weighted path-length penalty, the penalty, the updated running
  mean)."""
  objective = functools.partial(path_length_objective, nets=nets, opts=opts,
                                batch_sharding=batch_sharding)
  (_, (penalty, mean)), grads = jax.value_and_grad(objective, has_aux=True)(
      state.g_params, state.g_batch_stats, state.path_length_mean, key)
  return grads, penalty, mean


def g_update(state: GANState, fake, pullback, fake_labels, key, *, nets: Networks,
             opts: StepOptions, phases: LazyPhases, batch_sharding):
  """The generator update: the loss's gradient at `fake`, pulled back to G's parameters by
  `pullback` (the vjp of the forward pass that made `fake`), plus the path-length
  penalty's on its steps when lazy regularization is "joint"."""
  objective = functools.partial(generator_objective, nets=nets, opts=opts)
  (g_loss, g_terms), g_loss_wrt_fake = jax.value_and_grad(objective, has_aux=True)(
      fake, state.d_params, state.d_batch_stats, fake_labels, key, state.augment.probability)
  (g_grads,) = pullback(g_loss_wrt_fake)
  metrics = {**g_terms, "g_loss": g_loss, "g_grad_norm": optax.global_norm(g_grads)}
  if phases.path_length and not opts.separate_regularization:
    pl_grads, metrics["path_length_penalty"], mean = path_length_gradients(
        state, jax.random.fold_in(key, 1), nets=nets, opts=opts, batch_sharding=batch_sharding)
    g_grads = jax.tree.map(jnp.add, g_grads, pl_grads)
    state = state.replace(path_length_mean=mean)
  g_params, g_opt_state = _adam_step(nets.g_tx, state.g_params, state.g_opt_state, g_grads)
  return state.replace(g_params=g_params, g_opt_state=g_opt_state), metrics


def path_length_update(state: GANState, key, *, nets: Networks, opts: StepOptions,
                       batch_sharding):
  """loss.lazy_regularization="separate", on path length's steps: a G step of its own on
  the weighted path-length penalty (StyleGAN2's Greg phase)."""
  grads, penalty, mean = path_length_gradients(state, key, nets=nets, opts=opts,
                                               batch_sharding=batch_sharding)
  g_params, g_opt_state = _adam_step(nets.g_tx, state.g_params, state.g_opt_state, grads)
  return state.replace(g_params=g_params, g_opt_state=g_opt_state,
                       path_length_mean=mean), penalty


def ema_update(state: GANState, opts: StepOptions):
  """(state with the EMA generator moved towards G, the decay used)."""
  beta = ema_beta(state.step, opts)
  ema_g_params = optax.incremental_update(state.g_params, state.ema_g_params, 1.0 - beta)
  return state.replace(ema_g_params=ema_g_params), beta


def _lazy_metric_keys(opts: StepOptions) -> dict:
  """Zeros for the lazy regularizers' penalties, which their own steps overwrite: every
  program returns the same metrics (the loop averages them over steps)."""
  zero = jnp.zeros((), jnp.float32)
  return {**({"r1_penalty": zero} if opts.r1_weight > 0 else {}),
          **({"path_length_penalty": zero} if opts.pl_weight > 0 else {})}


def train_step(state: GANState, batch, phases: LazyPhases = LazyPhases(), *, nets: Networks,
               opts: StepOptions, batch_sharding):
  rng = jax.random.fold_in(state.rng, state.step)
  b, d_steps = opts.batch_size, opts.d_steps
  # Rows i * d_steps + j are real example i of D update j: each device keeps its rows.
  reals = pixels.to_model_range(batch["image"]).reshape(b, d_steps, *batch["image"].shape[1:])
  real_labels = batch["label"].reshape(b, d_steps)
  d_metrics = {}
  for j in range(d_steps):
    inputs = draw_d_inputs(rng, j, reals, real_labels, opts, batch_sharding)
    forward = functools.partial(generate, nets, g_batch_stats=state.g_batch_stats, z=inputs.z,
                                labels=inputs.fake_labels, key=inputs.g_key)
    if j == d_steps - 1:
      fake, pullback, g_batch_stats = jax.vjp(forward, state.g_params, has_aux=True)
    else:
      fake, g_batch_stats = forward(state.g_params)
    state = state.replace(g_batch_stats=g_batch_stats)
    state, d_metrics = d_update(state, fake, inputs, j, nets=nets, opts=opts, phases=phases)
  separate = opts.separate_regularization
  if phases.r1 and separate:
    state, d_metrics["r1_penalty"] = r1_update(state, inputs, nets=nets, opts=opts)
  g_key = jax.random.fold_in(rng, d_steps)
  state, g_metrics = g_update(state, fake, pullback, inputs.fake_labels, g_key, nets=nets,
                              opts=opts, phases=phases, batch_sharding=batch_sharding)
  if phases.path_length and separate:
    state, g_metrics["path_length_penalty"] = path_length_update(
        state, jax.random.fold_in(g_key, 1), nets=nets, opts=opts, batch_sharding=batch_sharding)
  if opts.pl_weight > 0:
    g_metrics["path_length_mean"] = state.path_length_mean
  state, beta = ema_update(state, opts)
  metrics = {**_lazy_metric_keys(opts), **d_metrics, **g_metrics, "ema_beta": beta}
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
  """Binds the static choices of `config` into a pure (state, batch, phases) -> (state,
  metrics)."""
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss.name)
  pl_batch_size = config.batch_size // config.loss.pl_batch_shrink
  if config.loss.pl_weight > 0 and pl_batch_size % mesh.size:
    raise ConfigError(
        f"The path-length batch (batch_size / loss.pl_batch_shrink = {pl_batch_size}) does not "
        f"divide over the {mesh.size} devices of this run; choose a batch_size or "
        "loss.pl_batch_shrink that leaves a multiple of the device count.")
  nets = Networks(setup.generator, setup.discriminator, setup.g_tx, setup.d_tx, d_loss_fn,
                  g_loss_fn)
  return functools.partial(train_step, nets=nets,
                           opts=StepOptions.from_config(config, setup.num_classes),
                           batch_sharding=sharding.batch_split(mesh))


def jit_train_step(step_fn, abstract_state, mesh, deterministic: bool = False):
  """Compiles with explicit shardings (once per `phases`); the input state's buffers are
  donated."""
  shardings = state_shardings(abstract_state)
  batch = sharding.batch_split(mesh)
  return compiler.jit(step_fn, deterministic=deterministic, static_argnums=(2,),
                      in_shardings=(shardings, batch),
                      out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))


class TrainStep:
  """The jitted step with its lazy regularizers chosen by the step number, on the host:
  `at(step)` is the (state, batch) -> (state, metrics) function of the update after `step`
  completed updates; calling it directly reads `state.step` (one device sync)."""

  def __init__(self, jitted, opts: StepOptions):
    self._jitted, self._opts = jitted, opts
    self._compiled = {}  # LazyPhases -> ahead-of-time compiled program

  def at(self, step: int) -> Callable:
    phases = lazy_phases(step, self._opts)
    if phases in self._compiled:
      return self._compiled[phases]
    return lambda state, batch: self._jitted(state, batch, phases)

  def __call__(self, state, batch):
    return self.at(int(sharding.to_host(state.step)))(state, batch)

  def lower(self, state, batch, phases: LazyPhases = LazyPhases()):
    """The program of `phases` lowered for (state, batch), e.g. to read its StableHLO."""
    return self._jitted.lower(state, batch, phases)

  def compile(self, state, batch) -> performance.StepCost:
    """Compiles, ahead of time, every program the run meets; their cost per step averaged
    over the regularizers' cycle (the most memory of any)."""
    costs = []
    for phases, share in lazy_cycle(self._opts).items():
      self._compiled[phases], cost = performance.compile_lowered(
          self.lower(state, batch, phases))
      costs.append((cost, share))
    return performance.StepCost.mean(costs)


def compile_train_step(config: ml_collections.ConfigDict, setup: Setup, mesh) -> TrainStep:
  """The jitted train step for `setup` (XLA compiles each program on first use, or all at
  once with `.compile(state, batch)`)."""
  jitted = jit_train_step(make_train_step(config, setup, mesh), setup.abstract_state, mesh,
                          config.deterministic)
  return TrainStep(jitted, StepOptions.from_config(config, setup.num_classes))
