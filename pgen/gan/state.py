"""GANState: everything a run needs to continue, as one pytree, created already sharded.

    setup = build(config, mesh, image_shape=(32, 32, 1), num_classes=10)
    state = setup.init()    # or a checkpoint restored into setup.abstract_state

`Setup` holds a config's models, their optimizers and losses, and the abstract state: what
training, sampling and export share, as one object (as flax's TrainState carries apply_fn
and tx). `abstract_state` (shapes, dtypes, shardings) is what a checkpoint
restores into, so a checkpoint written on one device layout is resharded onto the
current one.
"""

import dataclasses
import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from pgen.core import sharding
from pgen.gan import losses, schedules
from pgen.gan.augment import AugmentState
from pgen.models import build_models


@flax.struct.dataclass
class GANState:
  step: jax.Array  # Completed generator updates.
  rng: jax.Array  # Base key; step k uses fold_in(rng, k).
  g_params: Any
  # Generator statistics: BatchNorm (global-batch), spectral norm, StyleGAN2's w_avg.
  g_batch_stats: Any
  d_params: Any
  d_batch_stats: Any  # Discriminator spectral-norm power-iteration vectors ({} without SN).
  g_opt_state: Any
  d_opt_state: Any
  ema_g_params: Any  # Exponential moving average of g_params: what sampling uses.
  augment: AugmentState  # Adaptive augmentation probability (ADA).
  # StyleGAN2's running mean of path lengths (float32 scalar); None without the penalty.
  path_length_mean: jax.Array | None = None


def lazy_regularization_ratios(config: ml_collections.ConfigDict) -> tuple[float, float]:
  """(G's, D's) c = k / (k + 1) for a network whose lazy regularizer takes an optimizer step
  of its own every k steps (loss.lazy_regularization="separate"), else 1: StyleGAN2 scales
  Adam's learning rate by c and its betas to the power c, so that k + 1 steps move the
  weights as k steps did (Karras et al. 2020, appendix B)."""
  if config.loss.lazy_regularization != "separate":
    return 1.0, 1.0
  def ratio(weight, every):
    return every / (every + 1) if weight > 0 else 1.0
  return (ratio(config.loss.pl_weight, config.loss.pl_every),
          ratio(config.loss.r1_weight + config.loss.r2_weight, config.loss.r1_every))


def make_optimizers(config: ml_collections.ConfigDict):
  """Adam for G and D with their own learning rates and betas (TTUR), corrected for
  separate lazy-regularization steps; holding them in their states when a schedule moves
  them (pgen/gan/schedules.py)."""
  optim = config.optim
  g_ratio, d_ratio = lazy_regularization_ratios(config)
  scheduled = schedules.moves_optimizers(config.schedule)

  def adam(learning_rate, betas, c):
    return schedules.adam(learning_rate * c, betas[0] ** c, betas[1] ** c, scheduled)

  return (adam(optim.g_learning_rate, optim.g_betas, g_ratio),
          adam(optim.d_learning_rate, optim.d_betas, d_ratio))


def example_labels(num_classes: int, batch: int):
  """Labels to trace a model with: zeros if the model is conditional, else None."""
  return jnp.zeros((batch,), jnp.int32) if num_classes else None


def init_state(rng, *, generator, discriminator, g_tx, d_tx, image_shape, latent_dim,
               num_classes, augment_probability, path_length_regularization=False):
  g_key, d_key, train_key = jax.random.split(rng, 3)
  labels = example_labels(num_classes, 1)
  g_vars = generator.init(g_key, jnp.zeros((1, latent_dim)), labels, train=False)
  d_vars = discriminator.init(d_key, jnp.zeros((1, *image_shape)), labels, train=False)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      rng=train_key,
      g_params=g_vars["params"],
      g_batch_stats=g_vars.get("batch_stats", {}),
      d_params=d_vars["params"],
      d_batch_stats=d_vars.get("batch_stats", {}),
      g_opt_state=g_tx.init(g_vars["params"]),
      d_opt_state=d_tx.init(d_vars["params"]),
      ema_g_params=g_vars["params"],
      augment=AugmentState.create(augment_probability),
      path_length_mean=jnp.zeros((), jnp.float32) if path_length_regularization else None,
  )


def state_factory(config, generator, discriminator, g_tx, d_tx, mesh, image_shape,
                  num_classes: int):
  """Returns (abstract_state, init): init() builds the state directly in its shardings."""
  init = functools.partial(init_state, generator=generator, discriminator=discriminator,
                           g_tx=g_tx, d_tx=d_tx, image_shape=tuple(image_shape),
                           latent_dim=config.model.latent_dim, num_classes=num_classes,
                           augment_probability=config.augment.probability,
                           path_length_regularization=config.loss.pl_weight > 0)
  rng = jax.random.PRNGKey(config.seed)
  shapes = jax.eval_shape(init, rng)
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh), shapes)
  abstract_state = jax.tree.map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, state_sharding)
  init_sharded = jax.jit(init, out_shardings=state_sharding)
  return abstract_state, lambda: init_sharded(rng)


def state_shardings(abstract_state):
  return jax.tree.map(lambda s: s.sharding, abstract_state)


@dataclasses.dataclass(frozen=True)
class Setup:
  """A config's models, their optimizers and losses, and the abstract state."""
  generator: Any
  discriminator: Any
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  d_loss_fn: Callable  # (logits_real, logits_fake) -> D's adversarial loss.
  g_loss_fn: Callable  # (logits_fake, logits_real or None) -> G's adversarial loss.
  abstract_state: Any
  init: Callable[[], Any]  # Creates the initial state in its shardings.
  num_classes: int  # Classes the models are conditioned on; 0 when unconditional.
  image_shape: tuple  # (H, W, C) of the images G makes and D sees.

  def with_optimizers_of(self, config: ml_collections.ConfigDict) -> "Setup":
    """This setup with `config`'s optimizers (e.g. learning rates scaled after a rollback):
    their states have the same layout, so the abstract state stays."""
    g_tx, d_tx = make_optimizers(config)
    return dataclasses.replace(self, g_tx=g_tx, d_tx=d_tx)


def build(config: ml_collections.ConfigDict, mesh, image_shape, num_classes: int = 0, *,
          label_sizes: tuple = (), models=None) -> Setup:
  """`num_classes`: the dataset's; used only when `model.conditioning` is not "none".
  `label_sizes`: the values of each attribute its labels combine (InputInfo's), () for one.
  `models` (generator, discriminator) replaces the config's, e.g. with other layer kits."""
  num_classes = num_classes if config.model.conditioning != "none" else 0
  generator, discriminator = models or build_models(config, image_shape, num_classes,
                                                    label_sizes)
  g_tx, d_tx = make_optimizers(config)
  abstract_state, init = state_factory(config, generator, discriminator, g_tx, d_tx, mesh,
                                       image_shape, num_classes)
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss.name)
  return Setup(generator, discriminator, g_tx, d_tx, d_loss_fn, g_loss_fn, abstract_state, init,
               num_classes, tuple(image_shape))
