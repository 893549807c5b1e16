"""Differentiable augmentation of what the discriminator sees, and its adaptive probability.

    images = augment(images, key, policy=("translation", "cutout", "color"), probability=p)
    images = augment(images, key, policy="bgc", probability=p)   # ADA's pipeline
    policy = parse_policy(config.augment.policy)                   # a tuple, or "bgc"

A policy is DiffAugment's transforms (a tuple, or a comma-separated string), or ADA's
pipeline named by its groups (a string of b, g, c: pgen/gan/ada_pipeline.py).

The same function (with independent keys) is applied to real and fake images inside the
train step, and gradients flow through it to the generator (DiffAugment, Zhao et al. 2020).
Each transform of the policy is applied to each image with probability `p`; because the
discriminator sees augmented reals and fakes alike, the generator is not pushed to
reproduce the augmentations as long as `p` stays below ~0.8 (ADA, Karras et al. 2020).
With `p = 0` the images pass through unchanged (bit for bit).

`ada_update` adjusts `p` from the sign of D on real images: overfitting shows as
D(real) growing confidently positive, and then `p` rises.
"""

import flax
import jax
import jax.numpy as jnp

from pgen.gan import ada_pipeline

TRANSFORMS = ("translation", "cutout", "color")  # DiffAugment's.


def parse_policy(policy) -> tuple | str:
  """`augment.policy` as `augment` takes it: a tuple of DiffAugment transforms, or the
  groups of ADA's pipeline (e.g. "bgc")."""
  if isinstance(policy, str):
    if ada_pipeline.check_pipeline(policy) is None:
      return policy
    policy = [name.strip() for name in policy.split(",") if name.strip()]
  return tuple(policy)


def check_policy(value) -> str | None:
  """None if `value` is a policy, else what it must be (pgen.config's rule)."""
  if not isinstance(value, (str, tuple)):
    return "must be a tuple of DiffAugment transforms or an ADA pipeline such as 'bgc'"
  policy = parse_policy(value)
  unknown = [t for t in policy if t not in TRANSFORMS] if isinstance(policy, tuple) else []
  if unknown:
    return (f"has unknown transforms {unknown}; choose DiffAugment transforms from "
            f"{TRANSFORMS}, or ADA's pipeline: its groups b, g, c in order, e.g. 'bgc'")
  return None


@flax.struct.dataclass
class AugmentState:
  """Adaptive augmentation: the current probability and the D(real) signs since the last
  adjustment. Part of GANState, so it survives a resume."""
  probability: jax.Array  # float32 scalar in [0, 1]
  real_sign_sum: jax.Array  # float32: sum of the batch means of sign(D(real)).
  real_sign_count: jax.Array  # int32: how many batch means are in the sum.

  @classmethod
  def create(cls, probability: float):
    return cls(probability=jnp.asarray(probability, jnp.float32),
               real_sign_sum=jnp.zeros((), jnp.float32),
               real_sign_count=jnp.zeros((), jnp.int32))


def _per_image(key, images, probability):
  """A (B, 1, 1, 1) mask: which images get a transform."""
  return jax.random.uniform(key, (images.shape[0], 1, 1, 1)) < probability


def translate(images, key, max_fraction: float = 0.125):
  """Shifts each image by up to `max_fraction` of its size, filling by reflection."""
  b, h, w, _ = images.shape
  pad_h, pad_w = max(1, int(h * max_fraction)), max(1, int(w * max_fraction))
  ky, kx = jax.random.split(key)
  dy = jax.random.randint(ky, (b,), -pad_h, pad_h + 1)
  dx = jax.random.randint(kx, (b,), -pad_w, pad_w + 1)
  padded = jnp.pad(images, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="reflect")

  def crop(image, y, x):
    return jax.lax.dynamic_slice(image, (pad_h - y, pad_w - x, 0), (h, w, image.shape[-1]))

  return jax.vmap(crop)(padded, dy, dx)


def cutout(images, key, size_fraction: float = 0.5):
  """Sets a random square of half the image size (clipped at the borders) to 0."""
  b, h, w, _ = images.shape
  ch, cw = int(h * size_fraction), int(w * size_fraction)
  ky, kx = jax.random.split(key)
  cy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2))
  cx = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2))
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  inside = ((rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch) &
            (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw))
  return images * (~inside)[..., None].astype(images.dtype)


def color(images, key):
  """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), as DiffAugment."""
  b = images.shape[0]
  kb, ks, kc = jax.random.split(key, 3)
  images = images + jax.random.uniform(kb, (b, 1, 1, 1)) - 0.5
  mean = images.mean(axis=3, keepdims=True)
  images = (images - mean) * jax.random.uniform(ks, (b, 1, 1, 1), maxval=2.0) + mean
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return (images - mean) * jax.random.uniform(kc, (b, 1, 1, 1), minval=0.5, maxval=1.5) + mean


_FUNCTIONS = {"translation": translate, "cutout": cutout, "color": color}


def augment(images, key, *, policy: tuple | str, probability):
  """Applies each transform of `policy` (parse_policy's) to each image with `probability`."""
  if isinstance(policy, str):
    return ada_pipeline.augment_pipeline(images, key, policy, probability)
  for name in policy:
    key, transform_key, mask_key = jax.random.split(key, 3)
    transformed = _FUNCTIONS[name](images, transform_key)
    images = jnp.where(_per_image(mask_key, images, probability), transformed, images)
  return images


def random_hflip(images, key):
  """Mirrors half of the images: a dataset augmentation for real images only."""
  return jnp.where(_per_image(key, images, 0.5), images[:, :, ::-1], images)


def ada_update(state: AugmentState, logits_real, *, target: float, interval: int,
               images_per_adjustment: float, step) -> AugmentState:
  """Accumulates sign(D(real)); every `interval` steps moves p towards the target.

  p moves by `interval` batches' worth of images over `images_per_adjustment` images, in
  the direction of sign(r_t - target), r_t = E[sign(D(real))] (ADA's overfitting
  heuristic); so p can go from 0 to 1 in `images_per_adjustment` images.
  """
  sign_sum = state.real_sign_sum + jnp.mean(jnp.sign(logits_real))
  count = state.real_sign_count + 1
  adjust = (step + 1) % interval == 0
  r_t = sign_sum / count
  delta = jnp.sign(r_t - target) * count * logits_real.shape[0] / images_per_adjustment
  probability = jnp.where(adjust, jnp.clip(state.probability + delta, 0.0, 1.0),
                          state.probability)
  return AugmentState(probability=probability,
                      real_sign_sum=jnp.where(adjust, 0.0, sign_sum),
                      real_sign_count=jnp.where(adjust, 0, count))
