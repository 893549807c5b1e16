"""FIR up- and down-sampling (StyleGAN2's upfirdn2d) in JAX, on NHWC images.

    y = upfirdn2d(x, fir_filter((1, 3, 3, 1)), up=2, padding=(2, 1, 2, 1), gain=4)
    y = upsample_2x(x)                   # (B, H, W, C) -> (B, 2H, 2W, C), [1,3,3,1] filter
    y = downsample_2x(x)                 # (B, H, W, C) -> (B, H/2, W/2, C)
    y = blur(x, padding=(2, 2, 2, 2))    # the filter alone, e.g. before a stride-2 conv

upfirdn2d upsamples by inserting zeros, pads (negative padding crops), convolves with a
separable FIR filter and keeps every `down`-th pixel: the resampling StyleGAN2 uses in
both networks to keep aliasing low (Karras et al. 2020, after Zhang 2019). The filter is a
few taps, so it runs as shifted sums that XLA fuses into one loop (no convolution kernel);
gradients are its transpose, as cheap.
"""

import jax.numpy as jnp
import numpy as np

DEFAULT_FILTER = (1, 3, 3, 1)


def fir_filter(taps=DEFAULT_FILTER) -> np.ndarray:
  """A 1-D filter normalized to sum 1; upfirdn2d applies it along both axes."""
  taps = np.asarray(taps, np.float64)
  return (taps / taps.sum()).astype(np.float32)


def _zero_insert(x: jnp.ndarray, up: int, axis: int) -> jnp.ndarray:
  """Each sample followed by up-1 zeros along `axis`: length n -> n * up."""
  if up == 1:
    return x
  x = jnp.expand_dims(x, axis + 1)
  pad = [(0, 0)] * x.ndim
  pad[axis + 1] = (0, up - 1)
  x = jnp.pad(x, pad)
  shape = list(x.shape)
  shape[axis:axis + 2] = [shape[axis] * up]
  return x.reshape(shape)


def _pad(x: jnp.ndarray, before: int, after: int, axis: int) -> jnp.ndarray:
  """Zero padding; a negative amount crops."""
  n = x.shape[axis]
  start, stop = max(-before, 0), n - max(-after, 0)
  x = x[(slice(None),) * axis + (slice(start, stop),)]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (max(before, 0), max(after, 0))
  return jnp.pad(x, pad)


def _filter_axis(x: jnp.ndarray, taps: np.ndarray, axis: int) -> jnp.ndarray:
  """'Valid' convolution with `taps` along `axis` (length n -> n - len(taps) + 1)."""
  flipped = taps[::-1]  # Convolution, not correlation (the same for symmetric filters).
  length = x.shape[axis] - len(taps) + 1
  out = 0.0
  for k, tap in enumerate(flipped):
    out = out + float(tap) * x[(slice(None),) * axis + (slice(k, k + length),)]
  return out


def upfirdn2d(x: jnp.ndarray, taps: np.ndarray, *, up: int = 1, down: int = 1,
              padding=(0, 0, 0, 0), gain: float = 1.0) -> jnp.ndarray:
  """Upsample (zeros), pad (x0, x1, y0, y1), filter with `taps` along H and W (times
  `gain` in all), downsample. x: (B, H, W, C); out height
  (H * up + y0 + y1 - len(taps) + 1) // down (rounded up), likewise the width."""
  x0, x1, y0, y1 = padding
  axis_gain = float(np.sqrt(gain))
  for axis, (before, after) in ((1, (y0, y1)), (2, (x0, x1))):
    x = _zero_insert(x, up, axis)
    x = _pad(x, before, after, axis)
    x = _filter_axis(x, taps * axis_gain, axis)
    if down > 1:
      x = x[(slice(None),) * axis + (slice(None, None, down),)]
  return x


def upsample_2x(x: jnp.ndarray, taps=DEFAULT_FILTER) -> jnp.ndarray:
  """(B, H, W, C) -> (B, 2H, 2W, C): zeros inserted, then the filter with gain 4 (which
  keeps a constant image constant away from the borders)."""
  f = fir_filter(taps)
  p0, p1 = (len(f) + 1) // 2, (len(f) - 2) // 2
  return upfirdn2d(x, f, up=2, padding=(p0, p1, p0, p1), gain=4.0)


def downsample_2x(x: jnp.ndarray, taps=DEFAULT_FILTER) -> jnp.ndarray:
  """(B, H, W, C) -> (B, H/2, W/2, C): the filter, then every other pixel."""
  f = fir_filter(taps)
  p0, p1 = (len(f) - 1) // 2, (len(f) - 2) // 2
  return upfirdn2d(x, f, down=2, padding=(p0, p1, p0, p1))


def blur(x: jnp.ndarray, padding, taps=DEFAULT_FILTER, gain: float = 1.0) -> jnp.ndarray:
  """The filter alone, with `padding` (x0, x1, y0, y1)."""
  return upfirdn2d(x, fir_filter(taps), padding=padding, gain=gain)
