r"""The FID Inception-v3 in Flax: pool3 features as the standard FID network computes them.

    extractor = InceptionFeatures("/path/to/pt_inception-2015-12-05-6726825d.pth")
    features, logits = extractor(images)   # (N, 2048) pool3, (N, 1008); uint8 or [-1, 1] NHWC

Layer for layer this is pytorch-fid's `FIDInceptionV3`, the TF 2015-12-05 graph that FID
was defined with: BatchNorm eps 1e-3, average pools that ignore padding in Mixed_5*/6*/7b,
a max pool in Mixed_7c's pool branch. Images are seen as pytorch-fid sees them: grayscale
repeated to RGB, bilinear resize to 299x299 (half-pixel centres, no antialiasing, as
F.interpolate(align_corners=False)), scaled to [-1, 1].

The weights are pytorch-fid's file (FID_WEIGHTS_URL), or an .npz of the same state_dict,
read without torch (torch_pickle.py).
"""

import functools
import hashlib
import os
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from pgen.core import chunks, compiler
from pgen.evaluation import torch_pickle

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS_FILE)
# torch hub's name carries the first 8 hex digits; the full digest and size are as recorded
# for this file by several independent projects (not checked here: no download).
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_WEIGHTS_BYTES = 95_628_359
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008


class BasicConv(nn.Module):
  """Conv without bias, BatchNorm with stored statistics, ReLU (torchvision's BasicConv2d)."""
  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw), s = self.padding, self.strides
    x = nn.Conv(self.features, self.kernel, (s, s), ((ph, ph), (pw, pw)), use_bias=False,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  """TF's average pool: padded positions are not counted (count_include_pad=False)."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
    b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
    b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b pools by average (FIDInceptionE_1), Mixed_7c by max (FIDInceptionE_2): a quirk
  of the TF graph that FID scores depend on."""
  max_pool: bool

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
    b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3(x)
    bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """(pool3 (N, 2048), logits (N, 1008)) of preprocessed images (N, 299, 299, 3) in [-1, 1].
  Submodule names are the torch state_dict's, so weights map by name."""

  @nn.compact
  def __call__(self, x):
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    pool3 = x.mean(axis=(1, 2))
    return pool3, nn.Dense(NUM_LOGITS, name="fc")(pool3)


def preprocess(images):
  """uint8 [0, 255] or float [-1, 1] images (N, H, W, 1 or 3) -> float32 (N, 299, 299, 3) in
  [-1, 1], as pytorch-fid prepares them: to [0, 1], bilinear resize, then 2x - 1."""
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Inception takes NHWC images with 1 or 3 channels; got shape "
                     f"{images.shape}.")
  if images.dtype == jnp.uint8:
    x = images.astype(jnp.float32) / 255.0
  else:
    x = (images.astype(jnp.float32) + 1.0) / 2.0
  x = jnp.broadcast_to(x, (*x.shape[:3], 3))
  x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False)
  return 2.0 * x - 1.0


# ---- Weights: the torch state_dict (read by torch_pickle) mapped onto the Flax variables.

def _torch_name(flax_path: tuple[str, ...]) -> tuple[str, tuple[int, ...] | None]:
  """(state_dict key, transpose from torch's layout) of one Flax variable."""
  collection, *modules, leaf = flax_path
  torch_leaf = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
                ("batch_stats", "var"): "running_var"}[(collection, leaf)]
  transpose = None
  if leaf == "kernel":
    transpose = (2, 3, 1, 0) if modules[-1] == "conv" else (1, 0)  # OIHW -> HWIO; (out, in).
  return ".".join([*modules, torch_leaf]), transpose


@functools.lru_cache(maxsize=1)
def variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """Shape of every Flax variable of InceptionV3, by path (no weights are created)."""
  abstract = jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0),
                            jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  return {path: tuple(v.shape) for path, v in traverse_util.flatten_dict(abstract).items()}


def state_dict_shapes() -> dict[str, tuple[int, ...]]:
  """The torch state_dict keys and shapes that the weights file must have (besides the
  ignored BatchNorm `num_batches_tracked` counters)."""
  shapes = {}
  for path, shape in variable_shapes().items():
    name, transpose = _torch_name(path)
    shapes[name] = tuple(shape[i] for i in np.argsort(transpose)) if transpose else shape
  return shapes


def variables_from_state_dict(state_dict: dict[str, np.ndarray], path: str) -> dict:
  """Flax variables ({"params", "batch_stats"}) of a pytorch-fid state_dict read from `path`."""
  expected = state_dict_shapes()
  present = {k for k in state_dict if not k.endswith(".num_batches_tracked")}
  missing, extra = sorted(expected.keys() - present), sorted(present - expected.keys())
  if missing or extra:
    raise ValueError(
        f"{path} is not the FID Inception-v3 state_dict: "
        + (f"{len(missing)} keys missing (e.g. {missing[:3]}) " if missing else "")
        + (f"{len(extra)} unexpected keys (e.g. {extra[:3]}) " if extra else "")
        + f"Use {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}.")
  flat = {}
  for flax_path in variable_shapes():
    name, transpose = _torch_name(flax_path)
    value = np.asarray(state_dict[name])
    if value.shape != expected[name]:
      raise ValueError(f"{path}: {name} has shape {value.shape}, the FID Inception-v3 has "
                       f"{expected[name]}. Use {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}.")
    flat[flax_path] = jnp.asarray(value.transpose(transpose) if transpose else value,
                                  jnp.float32)
  return traverse_util.unflatten_dict(flat)


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def missing_weights_message(path: str | None) -> str:
  where = f"{path} does not exist" if path else "eval.inception_weights is not set"
  return (f"The Inception feature extractor needs the standard FID weights, and {where}. "
          f"Download {FID_WEIGHTS_FILE} ({FID_WEIGHTS_BYTES:,} bytes, SHA-256 "
          f"{FID_WEIGHTS_SHA256}) from {FID_WEIGHTS_URL} and pass "
          "--config.eval.inception_weights=/path/to/" + FID_WEIGHTS_FILE + ".")


class InceptionFeatures:
  """pool3 features and logits of the FID Inception-v3 with weights from a local file.

  A file other than the standard one (by SHA-256) still loads, with a warning: its
  distances are not comparable with published FIDs. `id` names the weights by hash.
  """

  def __init__(self, weights_path: str | None, batch_size: int = 100):
    if not weights_path or not os.path.isfile(os.path.expanduser(weights_path)):
      raise FileNotFoundError(missing_weights_message(weights_path))
    weights_path = os.path.expanduser(weights_path)
    self.sha256 = file_sha256(weights_path)
    self.is_standard = self.sha256 == FID_WEIGHTS_SHA256
    if self.is_standard:
      self.description = f"{weights_path} (the standard FID weights)"
    else:
      self.description = (f"{weights_path} (SHA-256 {self.sha256[:16]}..., not the standard "
                          "FID weights: not comparable with published FID values)")
      warnings.warn(
          f"{weights_path} (SHA-256 {self.sha256[:16]}...) is not the standard FID weights "
          f"file {FID_WEIGHTS_FILE} (SHA-256 {FID_WEIGHTS_SHA256}, from {FID_WEIGHTS_URL}); "
          "its Frechet distances are not comparable with published FID values.", stacklevel=2)
    self.variables = variables_from_state_dict(torch_pickle.read_state_dict(weights_path),
                                               weights_path)
    self.batch_size = batch_size
    self.id = f"inception-fid-{self.sha256[:12]}"

  def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return extract(self.variables, images, self.batch_size)


def extract(variables, images: np.ndarray, batch_size: int = 100):
  """(pool3 (N, 2048), logits (N, 1008)) float32 of uint8 or [-1, 1] NHWC images, in
  batches of `batch_size` (the last one padded, so the network compiles once)."""
  forward = _compiled_forward()
  return chunks.map_chunks(lambda _, batch: forward(variables, jnp.asarray(batch)), [images],
                           min(batch_size, len(images)), pad=True)


@functools.cache
def _compiled_forward():
  # Created at the first use, not at import: the options depend on the backend.
  return compiler.jit(lambda variables, images: InceptionV3().apply(variables, preprocess(images)))
