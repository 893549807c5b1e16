"""What a train step needs besides its state and batch, bound once from the config.

    spec = StepSpec.create(config, setup, mesh)   # setup: pgen.gan.state.build's
    spec.options.d_steps                          # the config's static choices
    LazyPhases(r1=True)                           # a step that runs lazy R1

`StepSpec` is one frozen object, so the objectives (pgen/gan/objectives.py) take `spec=` rather
than networks, options and shardings apart; `LazyPhases` is the static argument that picks
which lazy regularizers a compiled program runs (pgen/training/compiled_step.py).
"""

import dataclasses
from typing import Any, Callable

import ml_collections

from pgen import data
from pgen.core import sharding
from pgen.errors import ConfigError
from pgen.gan import augment, losses, schedules
from pgen.gan.state import Setup, lazy_regularization_ratios


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """The config's static choices that shape the train step."""
  batch_size: int  # Images per discriminator update (global).
  latent_dim: int
  num_classes: int  # > 0: labels go to G and D.
  acgan_weight: float  # > 0: D and G get the auxiliary classifier's cross-entropy.
  d_steps: int
  g_loss_uses_reals: bool  # A relativistic loss: G's loss compares its fakes with reals.
  r1_weight: float  # gamma of R1; 0 = off.
  r2_weight: float  # gamma of R2 (on fakes); 0 = off.
  r1_every: int  # Lazy R1 and R2: applied every k steps, scaled by k.
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
  schedule: schedules.Schedule  # What moves over training (config.schedule).
  feedback_weight: float  # Of the acceptance reward in G's loss; 0 = off.

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
        g_loss_uses_reals=config.loss.name in losses.RELATIVISTIC,
        r1_weight=config.loss.r1_weight,
        r2_weight=config.loss.r2_weight,
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
        ema_rampup=config.ema.rampup,
        schedule=schedules.Schedule.from_config(config, lazy_regularization_ratios(config),
                                                data.images_per_step(config)),
        feedback_weight=config.feedback.weight)

  @property
  def gradient_penalties(self) -> bool:
    """Whether R1 or R2 is on (they share the lazy schedule of loss.r1_every)."""
    return self.r1_weight > 0 or self.r2_weight > 0


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static a train step needs: networks, optimizers and losses (`setup`), the
  config's choices (`options`) and how batches are split over the devices."""
  setup: Setup
  options: StepOptions
  batch_sharding: Any  # jax.sharding.NamedSharding of a batch's leading axis.
  # The frozen acceptance model's (images in [-1, 1], labels or None) -> log P(accept) when
  # feedback.weight > 0 (pgen.feedback.acceptance); None otherwise.
  reward: Callable | None = None

  @classmethod
  def create(cls, config: ml_collections.ConfigDict, setup: Setup, mesh,
             make_reward: Callable | None = None) -> "StepSpec":
    """`make_reward(image_shape, num_classes)` gives the reward of feedback.weight > 0: the
    command that starts training hands it in (pgen.feedback.acceptance.make_reward)."""
    options = StepOptions.from_config(config, setup.num_classes)
    if options.pl_weight > 0 and options.pl_batch_size % mesh.size:
      raise ConfigError(
          f"The path-length batch (batch_size / loss.pl_batch_shrink = "
          f"{options.pl_batch_size}) does not divide over the {mesh.size} devices of this "
          "run; choose a batch_size or loss.pl_batch_shrink that leaves a multiple of the "
          "device count.")
    reward = None
    if options.feedback_weight > 0:
      if make_reward is None:
        raise ConfigError(
            f"feedback.weight={options.feedback_weight} fine-tunes towards an acceptance "
            "model, but none was handed to the trainer: train with `python -m pgen train`, "
            "or pass make_reward=pgen.feedback.acceptance.make_reward(config).")
      reward = make_reward(setup.image_shape, setup.num_classes)
    return cls(setup, options, sharding.batch_split(mesh), reward)


@dataclasses.dataclass(frozen=True)
class LazyPhases:
  """The lazy regularizers one step runs: a static argument of the step."""
  r1: bool = False  # R1 and R2, whichever are on.
  path_length: bool = False
