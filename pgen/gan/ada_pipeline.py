"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", appendix B): per image, every transform of the chosen groups is drawn
with probability p, the geometric ones composed into one 3x3 matrix and applied with one
resampling, the colour ones composed into one 4x4 matrix; differentiable (gradients reach
the generator through its images) and on the device.

    images = augment_pipeline(images, key, "bgc", probability=p)   # (B, H, W, C) in [-1, 1]

Groups: "b" (blit: x-flip, 90-degree rotations, integer translation), "g" (general
geometric: isotropic scaling, rotation, anisotropic scaling, fractional translation), "c"
(colour: brightness, contrast, luma flip, hue rotation, saturation); "bgc" is the paper's.
A transform that is not drawn contributes the identity, so with p = 0 the images pass
through unchanged, bit for bit.

Geometry: the matrix maps each output pixel's centre (relative to the image centre) to the
point of the input it samples; bilinear sampling with reflection at the borders (the paper
also upsamples 2x with a wavelet filter around the sampling to reduce aliasing; pgen
samples once at the output resolution). Colour on one channel: the grey value as R=G=B,
the mean of the transformed channels.
"""

import jax
import jax.numpy as jnp
import numpy as np

GROUPS = ("b", "g", "c")
_LUMA_AXIS = np.asarray([1.0, 1.0, 1.0, 0.0], np.float32) / np.sqrt(3.0)


def check_pipeline(name: str) -> str | None:
  """None if `name` is a pipeline (groups among b, g, c in that order, e.g. "bgc"), else
  what it must be."""
  if name and "".join(g for g in GROUPS if g in name) == name:
    return None
  return ("must be ADA's groups in order: a non-empty combination of b (blit), g (geometric), "
          "c (colour), e.g. 'bgc'")


# ---- Matrices, one per image: (B, 3, 3) for 2-D homogeneous coordinates, (B, 4, 4) for RGB.

def _eye(batch: int, n: int):
  return jnp.broadcast_to(jnp.eye(n, dtype=jnp.float32), (batch, n, n))


def _matrix(rows) -> jnp.ndarray:
  """Rows of per-image scalars (B,) or constants -> (B, n, n)."""
  batch = next(jnp.shape(x)[0] for row in rows for x in row if jnp.ndim(x))
  return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(x, jnp.float32), (batch,))
                               for x in row], -1) for row in rows], -2)


def translate_2d(tx, ty):
  return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale_2d(sx, sy):
  return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate_2d(theta):
  c, s = jnp.cos(theta), jnp.sin(theta)
  return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def translate_3d(t):
  return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]])


def scale_3d(s):
  return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]])


def rotate_3d_about_luma(theta):
  """Rotation by theta about the luma axis (1, 1, 1) / sqrt(3) (Rodrigues)."""
  x, y, z = _LUMA_AXIS[:3]
  c, s = jnp.cos(theta), jnp.sin(theta)
  t = 1 - c
  return _matrix([[c + x * x * t, x * y * t - z * s, x * z * t + y * s, 0],
                  [y * x * t + z * s, c + y * y * t, y * z * t - x * s, 0],
                  [z * x * t - y * s, z * y * t + x * s, c + z * z * t, 0],
                  [0, 0, 0, 1]])


def _luma_projection(batch: int):
  return jnp.broadcast_to(jnp.outer(_LUMA_AXIS, _LUMA_AXIS), (batch, 4, 4))


# ---- Drawing the transforms.

def _draws(key, batch: int, uniforms: int, normals: int):
  """Iterators over (B,) rows of uniform [0, 1) and of standard normal numbers, each kind
  from one generator call: a call per transform made the pipeline's matrices compile
  several times slower (every call is its own Threefry circuit)."""
  uniform_key, normal_key = jax.random.split(key)
  return (iter(jax.random.uniform(uniform_key, (uniforms, batch))),
          iter(jax.random.normal(normal_key, (normals, batch))))


def _between(u, low, high):
  return low + (high - low) * u


def geometric_matrix(key, batch: int, height: int, width: int, groups: str, probability):
  """The (B, 3, 3) inverse transforms (output pixel -> input point, in pixels from the
  centre) of the blit ("b") and general geometric ("g") groups, each transform drawn with
  `probability`; identities where nothing was drawn."""
  uniform, normal = _draws(key, batch, 8 * ("b" in groups) + 8 * ("g" in groups),
                           4 * ("g" in groups))
  m = _eye(batch, 3)

  def maybe(value, identity, chance=probability):
    return jnp.where(next(uniform) < chance, value, identity)

  if "b" in groups:
    flip = jnp.floor(2 * next(uniform))
    m = m @ scale_2d(maybe(1.0 - 2.0 * flip, 1.0), 1.0)
    quarter_turns = jnp.floor(4 * next(uniform))
    m = m @ rotate_2d(maybe(-0.5 * np.pi * quarter_turns, 0.0))
    shift_x, shift_y = (_between(next(uniform), -0.125, 0.125) for _ in range(2))
    m = m @ translate_2d(maybe(jnp.round(shift_x * width), 0.0),
                         maybe(jnp.round(shift_y * height), 0.0))
  if "g" in groups:
    s = maybe(jnp.exp2(next(normal) * 0.2), 1.0)
    m = m @ scale_2d(s, s)
    # Rotation is drawn twice (before and after the anisotropic scaling), each with the
    # probability that makes "at least one" happen with `probability`.
    rotate_probability = 1.0 - jnp.sqrt(1.0 - probability)

    def rotation():
      return rotate_2d(maybe(_between(next(uniform), -np.pi, np.pi), 0.0, rotate_probability))

    m = m @ rotation()
    s = jnp.exp2(next(normal) * 0.2)
    drawn = next(uniform) < probability
    m = m @ scale_2d(jnp.where(drawn, s, 1.0), jnp.where(drawn, 1.0 / s, 1.0))
    m = m @ rotation()
    m = m @ translate_2d(maybe(next(normal) * 0.125 * width, 0.0),
                         maybe(next(normal) * 0.125 * height, 0.0))
  return m


def color_matrix(key, batch: int, probability):
  """The (B, 4, 4) colour transform of the "c" group on homogeneous RGB in [-1, 1]."""
  uniform, normal = _draws(key, batch, 7, 3)
  c = _eye(batch, 4)
  eye = _eye(batch, 4)

  def maybe(value, identity):
    return jnp.where(next(uniform) < probability, value, identity)

  c = translate_3d(maybe(next(normal) * 0.2, 0.0)) @ c  # Brightness.
  c = scale_3d(maybe(jnp.exp2(next(normal) * 0.5), 1.0)) @ c  # Contrast.
  projection = _luma_projection(batch)
  flip = jnp.floor(2 * next(uniform))
  c = (eye - 2.0 * projection * maybe(flip, 0.0)[:, None, None]) @ c
  c = rotate_3d_about_luma(maybe(_between(next(uniform), -np.pi, np.pi), 0.0)) @ c  # Hue.
  saturation = maybe(jnp.exp2(next(normal) * 1.0), 1.0)[:, None, None]
  c = (projection + (eye - projection) * saturation) @ c
  return c


# ---- Applying them.

def _reflect(index, size: int):
  """Indices reflected into [0, size): -1 -> 1, size -> size - 2."""
  if size == 1:
    return jnp.zeros_like(index)
  period = 2 * (size - 1)
  index = jnp.mod(index, period)
  return jnp.where(index >= size, period - index, index)


def resample(images, matrices):
  """Each image sampled (bilinear, reflected borders) at matrix @ (output pixel centre)."""
  b, h, w, c = images.shape
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2,
                        jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing="ij")
  points = jnp.stack([xs.ravel(), ys.ravel(), jnp.ones(h * w)])  # (3, H*W)
  source = matrices @ points  # (B, 3, H*W)
  x = source[:, 0] + (w - 1) / 2
  y = source[:, 1] + (h - 1) / 2
  x0, y0 = jnp.floor(x), jnp.floor(y)
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  flat = images.reshape(b, h * w, c)

  def tap(dy, dx):
    index = _reflect(y0 + dy, h) * w + _reflect(x0 + dx, w)
    return jnp.take_along_axis(flat, index[..., None], axis=1)

  top = tap(0, 0) * (1 - fx) + tap(0, 1) * fx
  bottom = tap(1, 0) * (1 - fx) + tap(1, 1) * fx
  return (top * (1 - fy) + bottom * fy).reshape(b, h, w, c)


def apply_color(images, matrices):
  """(B, H, W, C) with C = 3: C[:3, :3] @ rgb + C[:3, 3]; C = 1: the grey value as RGB, the
  mean of the transformed channels."""
  linear, offset = matrices[:, :3, :3], matrices[:, :3, 3]
  if images.shape[-1] == 1:
    gain = jnp.mean(jnp.sum(linear, axis=2), axis=1)[:, None, None, None]
    return images * gain + jnp.mean(offset, axis=1)[:, None, None, None]
  return jnp.einsum("bij,bhwj->bhwi", linear, images) + offset[:, None, None, :]


def augment_pipeline(images, key, groups: str, probability):
  """ADA's pipeline of `groups` (e.g. "bgc") on images in [-1, 1], each transform drawn per
  image with `probability`."""
  b, h, w, _ = images.shape
  geometric_key, color_key = jax.random.split(key)
  dtype = images.dtype
  images = images.astype(jnp.float32)
  if "b" in groups or "g" in groups:
    images = resample(images, geometric_matrix(geometric_key, b, h, w, groups, probability))
  if "c" in groups:
    images = apply_color(images, color_matrix(color_key, b, probability))
  return images.astype(dtype)
