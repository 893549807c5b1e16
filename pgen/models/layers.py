"""Layers the GAN families share: optional spectral norm, (conditional) BatchNorm,
minibatch standard deviation, SAGAN self-attention and the discriminator's output head.

    x = apply_layer(nn.Conv(64, (3, 3)), x, spectral_norm=True, update_stats=train)
    x = batch_norm(x, labels, train=train, num_classes=10)     # per-class gain and bias
    x = MinibatchStdDev(group_size=4)(x)                       # one more channel
    logits, class_logits = discriminator_head(features, labels, conditioning="projection", ...)

Every non-parameter variable (BatchNorm running statistics, spectral norm's power-iteration
vector `u` and `sigma`) lives in the "batch_stats" collection, so a state keeps one place
for them.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

CONDITIONINGS = ("none", "projection", "acgan")

BATCH_NORM_MOMENTUM = 0.9


def apply_layer(layer: nn.Module, x, *, spectral_norm: bool, update_stats: bool):
  """Applies `layer`, spectrally normalized (Miyato et al., 2018) when `spectral_norm`.

  The layer's parameters keep their names either way; spectral norm adds `u` and `sigma`
  in "batch_stats", refined by one power iteration per call with `update_stats=True`.
  """
  if spectral_norm:
    return nn.SpectralNorm(layer)(x, update_stats=update_stats)
  return layer(x)


def upsample_nearest(x: jnp.ndarray) -> jnp.ndarray:
  """(B, H, W, C) -> (B, 2H, 2W, C), each pixel repeated 2x2."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def avg_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias are looked up per class (as in SNGAN and BigGAN).

  Initialised to gain 1 and bias 0 for every class: at init it equals a plain BatchNorm.
  """
  num_classes: int
  momentum: float = BATCH_NORM_MOMENTUM

  @nn.compact
  def __call__(self, x, labels, train: bool):
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, use_scale=False,
                     use_bias=False)(x)
    features = x.shape[-1]
    gain = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.ones,
                    name="gain")(labels)
    bias = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.zeros,
                    name="bias")(labels)
    broadcast = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return x * gain.reshape(broadcast) + bias.reshape(broadcast)


def batch_norm(x, labels, *, train: bool, num_classes: int):
  """Plain BatchNorm when `num_classes` is 0, else ConditionalBatchNorm on `labels`.

  Called inside a compact method, so the layer belongs to the caller (plain BatchNorm keeps
  the names `BatchNorm_<i>` the DCGAN checkpoints have).
  """
  if num_classes:
    return ConditionalBatchNorm(num_classes)(x, labels, train)
  return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM)(x)


def check_labels(labels, batch_size: int, num_classes: int, module: nn.Module):
  """Labels for a class-conditional model (None for an unconditional one, which ignores
  them). `init` needs only shapes, so there zeros stand in for missing labels."""
  if not num_classes:
    return None
  if labels is None:
    if module.is_initializing():
      return jnp.zeros((batch_size,), jnp.int32)
    raise ValueError(
        f"{type(module).__name__} is class-conditional (num_classes={num_classes}, "
        "model.conditioning != 'none') but was called without labels; pass `labels` "
        "(int, shape (B,)) or set model.conditioning='none'.")
  return labels


MINIBATCH_STD_EPSILON = 1e-4


class MinibatchStdDev(nn.Module):
  """StyleGAN's minibatch standard deviation: appends one feature map holding, for each
  group of `group_size` consecutive examples, the mean over channels and pixels of the
  per-feature standard deviation over the group.

  This makes D a per-group function (on purpose: it lets D see a batch's diversity), so
  the per-example regularizers (R1, gradient penalty) also pick up the small terms through
  the group statistic, as in StyleGAN. Groups are consecutive examples, so when `group_size` divides the real batch,
  a discriminator batch of [real; fake] never mixes the two in a group. Under jit the layer
  sees the global batch, which `group_size` must divide.
  """
  group_size: int

  @nn.compact
  def __call__(self, x):
    batch = x.shape[0]
    group = self.group_size
    if batch % group:
      if not self.is_initializing():  # init needs only shapes: any batch size works.
        raise ValueError(
            f"model.minibatch_std={group} does not divide the discriminator's batch of "
            f"{batch} images; choose a group size that divides batch_size (the discriminator "
            "sees batch_size real, batch_size fake and 2*batch_size combined images).")
      group = 1
    groups = x.reshape(batch // group, group, *x.shape[1:]).astype(jnp.float32)
    # StyleGAN adds 1e-8; 1e-4 keeps d std / d x bounded where a group's values coincide
    # (e.g. pixels that cutout zeroed in every image of the group), where 1e-8 magnified
    # float rounding ~10^4 times and made runs depend on the device count.
    std = jnp.sqrt(jnp.var(groups, axis=1) + MINIBATCH_STD_EPSILON)  # (B/G, H, W, C)
    per_group = jnp.mean(std, axis=(1, 2, 3))  # (B/G,)
    per_example = jnp.repeat(per_group, group)
    extra = jnp.broadcast_to(per_example[:, None, None, None], (*x.shape[:3], 1))
    return jnp.concatenate([x, extra.astype(x.dtype)], axis=-1)


class SelfAttention(nn.Module):
  """SAGAN self-attention (Zhang et al., 2019) in BigGAN's form: keys and values are
  max-pooled 2x2, queries and keys have C/8 channels, values C/2.

    out = x + gamma * attention(x), gamma a learned scalar initialised to 0,

  so the block starts as the identity and the network learns how much to use it.
  """
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    b, h, w, c = x.shape
    key_features, value_features = max(c // 8, 1), max(c // 2, 1)

    def conv1x1(features, inputs, name):
      return apply_layer(nn.Conv(features, (1, 1), use_bias=False, name=name), inputs,
                         spectral_norm=self.spectral_norm, update_stats=update_stats)

    pool = lambda t: nn.max_pool(t, (2, 2), strides=(2, 2))
    queries = conv1x1(key_features, x, "query").reshape(b, h * w, key_features)
    keys = pool(conv1x1(key_features, x, "key")).reshape(b, -1, key_features)
    values = pool(conv1x1(value_features, x, "value")).reshape(b, -1, value_features)
    weights = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", queries, keys), axis=-1)
    attended = jnp.einsum("bqk,bkc->bqc", weights, values).reshape(b, h, w, value_features)
    out = conv1x1(c, attended, "out")
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma * out


def discriminator_head(features, labels, *, conditioning: str, num_classes: int,
                       spectral_norm: bool, update_stats: bool, kernel_init):
  """(B, F) features -> (logits (B,), class_logits (B, num_classes) or None).

  "projection": logit = dense(h) + sum(embed(y) * h) (Miyato & Koyama, 2018).
  "acgan": logit = dense(h), plus a `num_classes`-way linear classifier on the same h.
  Called inside the discriminator's compact method, so the unconditional dense layer keeps
  the name `Dense_<i>` of the DCGAN checkpoints.
  """
  logits = apply_layer(nn.Dense(1, kernel_init=kernel_init), features,
                       spectral_norm=spectral_norm, update_stats=update_stats)[:, 0]
  class_logits = None
  if conditioning == "projection":
    class_embedding = nn.Embed(num_classes, features.shape[-1],
                               embedding_init=nn.initializers.xavier_uniform(),
                               name="class_embedding")
    embedded = apply_layer(class_embedding, labels, spectral_norm=spectral_norm,
                           update_stats=update_stats)
    logits = logits + jnp.sum(embedded * features, axis=-1)
  elif conditioning == "acgan":
    class_logits = apply_layer(nn.Dense(num_classes, kernel_init=kernel_init, name="class_head"),
                               features, spectral_norm=spectral_norm, update_stats=update_stats)
  elif conditioning != "none":
    raise ValueError(f"model.conditioning={conditioning!r} is unknown; choose one of "
                     f"{CONDITIONINGS}.")
  return logits.astype(jnp.float32), (
      None if class_logits is None else class_logits.astype(jnp.float32))
