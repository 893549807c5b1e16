"""Values that change over training: R3GAN's recipe moves its learning rates, the gamma of
R1 and R2, Adam's beta2, the EMA half-life and the augmentation probability along a cosine
over a number of training images (Huang et al. 2024), and any family can use them.

    schedule = Schedule.from_config(config, lazy_ratios, images_per_step)   # config.schedule
    progress = schedule.progress(step)              # 0 at step 0 -> 1 at schedule.images
    state = with_scheduled_optimizers(state, schedule, step)   # in the train step

Every value is a function of the step alone (images seen = step x images per step), so a
resumed run follows the same curve exactly; the optimizers carry their current learning
rate and beta2 in their state (optax.inject_hyperparams) only when a schedule moves them,
so the checkpoints of runs without schedules keep their layout.
"""

import dataclasses

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Where each scheduled value starts (the config's own key) and ends."""
  images: float  # Length of the cosine in training images; 0: nothing moves.
  images_per_step: int
  learning_rate_end: float  # Fraction of optim.*_learning_rate reached at the end.
  gamma_end: float  # Fraction of loss.r1_weight and loss.r2_weight reached at the end.
  beta2_end: float  # Adam's beta2 of both networks at the end; 0: optim.*_betas[1] stays.
  ema_from_zero: bool  # The EMA half-life grows from 0 to ema.half_life_images.
  augment_from_zero: bool  # The augmentation probability grows from 0 to its value.
  learning_rates: tuple[float, float]  # (G's, D's) at the start, as configured.
  beta2s: tuple[float, float]  # (G's, D's) at the start.
  lazy_ratios: tuple[float, float]  # (G's, D's) c of separate lazy regularization.
  augment_probability: float

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, lazy_ratios: tuple[float, float],
                  images_per_step: int) -> "Schedule":
    """`lazy_ratios`: pgen.gan.state.lazy_regularization_ratios(config); `images_per_step`:
    pgen.data.images_per_step(config)."""
    schedule = config.schedule
    return cls(
        images=float(schedule.images), images_per_step=images_per_step,
        learning_rate_end=schedule.learning_rate_end, gamma_end=schedule.gamma_end,
        beta2_end=schedule.beta2_end, ema_from_zero=schedule.ema_from_zero,
        augment_from_zero=schedule.augment_from_zero,
        learning_rates=(config.optim.g_learning_rate, config.optim.d_learning_rate),
        beta2s=(config.optim.g_betas[1], config.optim.d_betas[1]),
        lazy_ratios=tuple(lazy_ratios), augment_probability=config.augment.probability)

  @property
  def moves_optimizers(self) -> bool:
    return moves_optimizers(self)

  def progress(self, step):
    """0 at step 0, rising along half a cosine to 1 at `images` seen, then 1."""
    if self.images <= 0:
      return jnp.zeros((), jnp.float32)
    seen = jnp.asarray(step, jnp.float32) * self.images_per_step
    return 0.5 * (1.0 - jnp.cos(np.pi * jnp.minimum(seen / self.images, 1.0)))

  def gamma_scale(self, step):
    """What multiplies R1's and R2's gamma at `step`."""
    return 1.0 + (self.gamma_end - 1.0) * self.progress(step)

  def ema_scale(self, step):
    """What multiplies the EMA half-life at `step`."""
    return self.progress(step) if self.ema_from_zero else jnp.ones((), jnp.float32)

  def augment_probability_at(self, step):
    return self.augment_probability * self.progress(step)


def moves_optimizers(schedule) -> bool:
  """Whether `schedule` (a Schedule or config.schedule) changes Adam's hyperparameters."""
  return schedule.images > 0 and (schedule.learning_rate_end != 1.0 or schedule.beta2_end > 0)


def adam(learning_rate: float, b1: float, b2: float, scheduled: bool):
  """Adam; with its learning rate and betas in its state when a schedule sets them."""
  if scheduled:
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, b1=b1, b2=b2)
  return optax.adam(learning_rate, b1=b1, b2=b2)


def _set_hyperparameters(opt_state, learning_rate, b2):
  hyperparams = dict(opt_state.hyperparams)
  hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
  hyperparams["b2"] = jnp.asarray(b2, jnp.float32)
  return opt_state._replace(hyperparams=hyperparams)


def with_scheduled_optimizers(state, schedule: Schedule, step):
  """`state` with both Adams' learning rate and beta2 at their values for `step` (a
  network whose lazy regularizer takes steps of its own keeps its correction c: the
  learning rate times c, beta2 to the power c)."""
  if not schedule.moves_optimizers:
    return state
  progress = schedule.progress(step)
  lr_scale = 1.0 + (schedule.learning_rate_end - 1.0) * progress
  opt_states = []
  for opt_state, lr, b2, c in zip((state.g_opt_state, state.d_opt_state),
                                  schedule.learning_rates, schedule.beta2s,
                                  schedule.lazy_ratios):
    beta2 = b2 + (schedule.beta2_end - b2) * progress if schedule.beta2_end > 0 else b2
    opt_states.append(_set_hyperparameters(opt_state, lr * lr_scale * c, beta2 ** c))
  return state.replace(g_opt_state=opt_states[0], d_opt_state=opt_states[1])
