"""What the GAN families share: the layer kit that builds every layer, (conditional)
BatchNorm, minibatch standard deviation, SAGAN self-attention, the discriminator's head,
and resolution arithmetic.

    kit = LayerKit(kernel_init=nn.initializers.normal(0.02), spectral_norm=True)
    kit = kit.training(train)                  # inside __call__: BN batch stats, SN updates
    x = kit.conv(64, (3, 3))(x)                # nn.Conv with the kit's dtypes and init,
                                               # spectrally normalized when the kit says so
    x = kit.activation(kit.batch_norm(x, labels, num_classes=10))
    x = MinibatchStdDev(group_size=4)(x)       # one more channel
    logits, class_logits = discriminator_head(kit, features, labels, "projection", 10)

Labels that combine several attributes (a category and a colour: `label_sizes` (5, 4),
label = category x 4 + colour, 20 classes) are embedded per attribute and summed, in
conditional BatchNorm, projection and embeddings alike: one table row per attribute
value (5 + 4), so a combination never seen in training has the embedding of its parts.
An AC-GAN head classifies each attribute. With one attribute this is the plain class
embedding, with the same parameters.

A kit's methods create their layer in the calling module's scope (call them inside a
compact method): the layer gets the name Flax would give it there (`Conv_0`, `Dense_1`,
`SpectralNorm_0`), so parameter trees and checkpoints do not depend on the kit.

Every non-parameter variable (BatchNorm running statistics, spectral norm's power-iteration
vector `u` and `sigma`) lives in the "batch_stats" collection, so a state keeps one place
for them.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pgen.data import options as data_options

CONDITIONINGS = ("none", "projection", "acgan")

BATCH_NORM_MOMENTUM = 0.9
DEFAULT_KERNEL_INIT = nn.initializers.lecun_normal()  # Flax's, as nn.Conv and nn.Dense.


@dataclasses.dataclass(frozen=True)
class LayerKit:
  """How a network builds its layers: initializer, activation, spectral norm, dtypes
  (`dtype` computes, `param_dtype` stores), and whether it is training."""
  kernel_init: Callable = DEFAULT_KERNEL_INIT
  activation: Callable = nn.relu
  spectral_norm: bool = False
  train: bool = False  # BatchNorm uses batch statistics; spectral norm refines its estimate.
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  label_sizes: tuple = ()  # Values of each attribute a label combines; () = one attribute.

  def training(self, train: bool) -> "LayerKit":
    return dataclasses.replace(self, train=train)

  def replace(self, **changes) -> "LayerKit":
    return dataclasses.replace(self, **changes)

  def wrap(self, layer: nn.Module) -> Callable:
    """`layer`, spectrally normalized (Miyato et al., 2018) when the kit says so: its
    parameters keep their names; `u` and `sigma` go to "batch_stats" and take one power
    iteration per call in training."""
    if not self.spectral_norm:
      return layer
    return lambda x: nn.SpectralNorm(layer)(x, update_stats=self.train)

  def _typed(self, kwargs: dict) -> dict:
    return {"kernel_init": self.kernel_init, "dtype": self.dtype,
            "param_dtype": self.param_dtype, **kwargs}

  def conv(self, features: int, kernel_size, **kwargs) -> Callable:
    return self.wrap(nn.Conv(features, kernel_size, **self._typed(kwargs)))

  def conv_transpose(self, features: int, kernel_size, **kwargs) -> Callable:
    return self.wrap(nn.ConvTranspose(features, kernel_size, **self._typed(kwargs)))

  def dense(self, features: int, **kwargs) -> Callable:
    return self.wrap(nn.Dense(features, **self._typed(kwargs)))

  def embed(self, num_embeddings: int, features: int, **kwargs) -> Callable:
    return self.wrap(nn.Embed(num_embeddings, features, dtype=self.dtype,
                              param_dtype=self.param_dtype, **kwargs))

  def attribute_sizes(self, num_classes: int) -> tuple:
    """The number of values of each attribute of a label of `num_classes` classes."""
    return tuple(self.label_sizes) or (num_classes,)

  def embed_labels(self, labels, num_classes: int, features: int, **kwargs):
    """(B,) labels -> (B, features): the sum of their attributes' embeddings."""
    sizes = self.attribute_sizes(num_classes)
    return embed_attributes(self.embed(sum(sizes), features, **kwargs), labels, sizes)

  def batch_norm(self, x, labels=None, num_classes: int = 0):
    """Plain BatchNorm when `num_classes` is 0, else ConditionalBatchNorm on `labels`
    (plain BatchNorm keeps the names `BatchNorm_<i>` of the DCGAN checkpoints)."""
    if num_classes:
      return ConditionalBatchNorm(self.attribute_sizes(num_classes), dtype=self.dtype,
                                  param_dtype=self.param_dtype)(x, labels, self.train)
    return nn.BatchNorm(use_running_average=not self.train, momentum=BATCH_NORM_MOMENTUM,
                        dtype=self.dtype, param_dtype=self.param_dtype)(x)


def num_blocks(image_size) -> int:
  """Resolution doublings from the base feature map (4 to 7 pixels on its shorter side) to
  `image_size` (height, width): e.g. 3 for 32x32 (from 4x4) or 64x48 (from 8x6). For a
  size `supports_image_size` accepts, as pgen.config makes sure data.resolution is."""
  return int(math.log2(min(image_size) / 4)) if min(image_size) >= 8 else 0


def supports_image_size(image_size) -> bool:
  """Whether `num_blocks` doublings of a base map of integer sides make `image_size`."""
  blocks = num_blocks(image_size)
  return blocks > 0 and not any(side % 2 ** blocks for side in image_size)


def base_size(image_size) -> tuple[int, int]:
  """(height, width) of the base feature map that `num_blocks` doublings bring to size."""
  blocks = num_blocks(image_size)
  return tuple(side // 2 ** blocks for side in image_size)


def upsample_nearest(x: jnp.ndarray) -> jnp.ndarray:
  """(B, H, W, C) -> (B, 2H, 2W, C), each pixel repeated 2x2."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def avg_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def attribute_rows(labels, sizes: tuple):
  """(B,) labels combining attributes of `sizes` values (the first the most significant)
  -> (B, attributes): each attribute value's row in a table of sum(sizes) rows, the
  attributes' rows one after another."""
  offsets = [sum(sizes[:a]) for a in range(len(sizes))]
  return data_options.attribute_values(labels, sizes) + jnp.asarray(offsets, labels.dtype)


def embed_attributes(table: Callable, labels, sizes: tuple):
  """(B, features): the sum of the rows of `table` (an embedding of sum(sizes) rows) of
  each attribute of `labels`."""
  return jnp.sum(table(attribute_rows(labels, sizes)), axis=-2)


def multi_hot(labels, sizes: tuple):
  """(B,) labels -> (B, sum(sizes)) float32 with a one at each attribute value's row."""
  return jnp.sum(jax.nn.one_hot(attribute_rows(labels, sizes), sum(sizes)), axis=-2)


def class_logits_of_attributes(logits, sizes: tuple):
  """(B, sum(sizes)) logits of each attribute's values -> (B, prod(sizes)) log-probabilities
  of the combined labels, the attributes independent (one attribute: the logits as they
  are), so a cross-entropy on the combination is the sum of the attributes' ones."""
  if len(sizes) == 1:
    return logits
  total = 0.0
  start = 0
  for a, size in enumerate(sizes):
    part = jax.nn.log_softmax(logits[:, start:start + size], axis=-1)
    total = total + part.reshape((-1,) + (1,) * a + (size,) + (1,) * (len(sizes) - a - 1))
    start += size
  return total.reshape(logits.shape[0], -1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias are looked up per class (as in SNGAN and BigGAN), summed
  over the attributes of a combined label (`sizes`: the values of each).

  Initialised to gain 1 and bias 0 for every class: at init it equals a plain BatchNorm.
  """
  sizes: tuple
  momentum: float = BATCH_NORM_MOMENTUM
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels, train: bool):
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, use_scale=False,
                     use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype)(x)
    features = x.shape[-1]
    embed = lambda init, name: embed_attributes(nn.Embed(
        sum(self.sizes), features, embedding_init=init, name=name, dtype=self.dtype,
        param_dtype=self.param_dtype), labels, self.sizes)
    gain_init = nn.initializers.constant(1.0 / len(self.sizes))  # The gains sum to 1.
    gain, bias = embed(gain_init, "gain"), embed(nn.initializers.zeros, "bias")
    broadcast = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return x * gain.reshape(broadcast) + bias.reshape(broadcast)


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


# StyleGAN adds 1e-8; 1e-4 keeps d std / d x bounded where a group's values coincide (e.g.
# pixels that cutout zeroed in every image of the group), where 1e-8 magnified float rounding
# ~10^4 times and made runs depend on the device count.
MINIBATCH_STD_EPSILON = 1e-4


class MinibatchStdDev(nn.Module):
  """StyleGAN's minibatch standard deviation: appends one feature map holding, for each
  group of `group_size` examples, the mean over channels and pixels of the per-feature
  standard deviation over the group (sqrt(variance + `epsilon`)).

  This makes D a per-group function (on purpose: it lets D see a batch's diversity), so
  the per-example regularizers (R1, gradient penalty) also pick up the small terms through
  the group statistic, as in StyleGAN. Groups are consecutive examples, so a group stays on
  one device when the batch is sharded and `group_size` divides each device's share.
  `strided` groups as StyleGAN2-ADA does (its `x.reshape(G, -1, ...)`): group j holds
  examples j, j + B/G, j + 2B/G, ..., which official weights were trained with. Under jit
  the layer sees the global batch, which `group_size` must divide.
  """
  group_size: int
  strided: bool = False
  epsilon: float = MINIBATCH_STD_EPSILON

  @nn.compact
  def __call__(self, x):
    batch = x.shape[0]
    group = min(self.group_size, batch) if self.strided else self.group_size
    if batch % group:
      if not self.is_initializing():  # init needs only shapes: any batch size works.
        raise ValueError(
            f"model.minibatch_std={group} does not divide the discriminator's batch of "
            f"{batch} images; choose a group size that divides batch_size (the discriminator "
            "sees batch_size real, batch_size fake and 2*batch_size combined images).")
      group = 1
    values = x.astype(jnp.float32)
    if self.strided:  # (G, B/G, ...) -> (B/G, G, ...): group j gathers every (B/G)-th example.
      values = jnp.swapaxes(values.reshape(group, batch // group, *x.shape[1:]), 0, 1)
    else:
      values = values.reshape(batch // group, group, *x.shape[1:])
    std = jnp.sqrt(jnp.var(values, axis=1) + self.epsilon)  # (B/G, H, W, C)
    per_group = jnp.mean(std, axis=(1, 2, 3))  # (B/G,)
    per_example = (jnp.tile(per_group, group) if self.strided
                   else jnp.repeat(per_group, group))
    extra = jnp.broadcast_to(per_example[:, None, None, None], (*x.shape[:3], 1))
    return jnp.concatenate([x, extra.astype(x.dtype)], axis=-1)


class SelfAttention(nn.Module):
  """SAGAN self-attention (Zhang et al., 2019) in BigGAN's form: keys and values are
  max-pooled 2x2, queries and keys have C/8 channels, values C/2.

    out = x + gamma * attention(x), gamma a learned scalar initialised to 0,

  so the block starts as the identity and the network learns how much to use it.
  """
  kit: LayerKit = LayerKit()

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    key_features, value_features = max(c // 8, 1), max(c // 2, 1)

    def conv1x1(features, inputs, name):  # Flax's default init, whatever the kit's.
      return self.kit.conv(features, (1, 1), use_bias=False, name=name,
                           kernel_init=nn.linear.default_kernel_init)(inputs)

    pool = lambda t: nn.max_pool(t, (2, 2), strides=(2, 2))
    queries = conv1x1(key_features, x, "query").reshape(b, h * w, key_features)
    keys = pool(conv1x1(key_features, x, "key")).reshape(b, -1, key_features)
    values = pool(conv1x1(value_features, x, "value")).reshape(b, -1, value_features)
    scores = jnp.einsum("bqc,bkc->bqk", queries, keys).astype(jnp.float32)
    weights = jax.nn.softmax(scores, axis=-1).astype(values.dtype)
    attended = jnp.einsum("bqk,bkc->bqc", weights, values).reshape(b, h, w, value_features)
    out = conv1x1(c, attended, "out")
    gamma = self.param("gamma", nn.initializers.zeros, (), self.kit.param_dtype)
    return x + gamma * out


def discriminator_head(layers: LayerKit, features, labels, conditioning: str, num_classes: int):
  """(B, F) features -> (logits (B,), class_logits (B, num_classes) or None), computed in
  float32 whatever the network's dtype (the losses are).

  "projection": logit = dense(h) + sum(embed(y) * h) (Miyato & Koyama, 2018).
  "acgan": logit = dense(h), plus a `num_classes`-way linear classifier on the same h.
  Called inside the discriminator's compact method, so the unconditional dense layer keeps
  the name `Dense_<i>` of the DCGAN checkpoints.
  """
  layers = layers.replace(dtype=jnp.float32)
  features = features.astype(jnp.float32)
  logits = layers.dense(1)(features)[:, 0]
  class_logits = None
  if conditioning == "projection":
    embedded = layers.embed_labels(labels, num_classes, features.shape[-1],
                                   embedding_init=nn.initializers.xavier_uniform(),
                                   name="class_embedding")
    logits = logits + jnp.sum(embedded * features, axis=-1)
  elif conditioning == "acgan":
    sizes = layers.attribute_sizes(num_classes)
    class_logits = class_logits_of_attributes(
        layers.dense(sum(sizes), name="class_head")(features), sizes)
  elif conditioning != "none":
    raise ValueError(f"model.conditioning={conditioning!r} is unknown; choose one of "
                     f"{CONDITIONINGS}.")
  return logits, class_logits
