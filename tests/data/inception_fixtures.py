"""Deterministic stand-ins for the FID Inception-v3 weights and inputs (numpy only).

Shared by make_inception_reference.py, which runs them through pytorch-fid under torch,
and tests/unit/evaluation/test_inception.py, which runs them through pgen without torch. The weights are
not the real ones: each tensor is drawn from a generator seeded by its name, at scales
that keep activations finite and varied through all 94 conv layers.
"""

import zlib

import numpy as np

SEED = 20151205


def random_state_dict(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
  """A value for every state_dict key, depending only on the key and its shape."""
  state_dict = {}
  for name, shape in sorted(shapes.items()):
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    if name.endswith("num_batches_tracked"):
      value = np.zeros(shape, np.int64)
    elif name.endswith("conv.weight"):
      fan_in = int(np.prod(shape[1:]))
      value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name.endswith("bn.weight"):
      value = 1.0 + 0.1 * rng.standard_normal(shape)
    elif name.endswith("bn.bias"):
      value = 0.05 + 0.1 * rng.standard_normal(shape)
    elif name.endswith("bn.running_mean"):
      value = 0.2 * rng.standard_normal(shape)
    elif name.endswith("bn.running_var"):
      value = rng.uniform(0.5, 1.5, shape)
    elif name == "fc.weight":
      value = rng.standard_normal(shape) / np.sqrt(shape[1])
    elif name == "fc.bias":
      value = 0.1 * rng.standard_normal(shape)
    else:
      raise KeyError(f"No stand-in value for state_dict key {name!r}.")
    state_dict[name] = value if value.dtype == np.int64 else value.astype(np.float32)
  return state_dict


def reference_images() -> dict[str, np.ndarray]:
  """uint8 NHWC batches that exercise the preprocessing: grayscale upsampled from 32x32,
  RGB upsampled from 64x64, and RGB downsampled from a non-square 333x410."""
  rng = np.random.default_rng(SEED)
  gray = rng.integers(0, 256, (2, 32, 32, 1), np.uint8)
  gray[1, 8:24, 8:24] = 255  # Large flat regions, as in real images, besides pure noise.
  rgb_small = rng.integers(0, 256, (1, 64, 64, 3), np.uint8)
  yy, xx = np.mgrid[0:333, 0:410]
  rgb_large = np.stack([(xx * 255 // 409), (yy * 255 // 332), ((xx + yy) % 97) * 2],
                       axis=-1)[None].astype(np.uint8)
  return {"gray32": gray, "rgb64": rgb_small, "rgb333x410": rgb_large}


def probe_pixels(count: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """(rows, columns) of the 299x299 network input at which resized inputs are compared."""
  rng = np.random.default_rng(SEED + 1)
  return rng.integers(0, 299, count), rng.integers(0, 299, count)
