"""What the converters of official PyTorch weights share (official_stylegan2.py for
StyleGAN2-ADA, official_r3gan.py for R3GAN): reading a state dict by official name, the
layout changes to pgen's, and assembling Flax variables that must fit the pgen network.

    tensors = OfficialState(state_dict, "StyleGAN2-ADA generator")  # numpy arrays by name
    converted = {("params", "fc0", "kernel"): tensors.dense("mapping.fc0.weight")}
    tensors.finish()                             # raises naming every tensor left unread
    variables = assemble(expected_shapes(generator, z), converted, "generator")

Official tensors are PyTorch's: images and activations NCHW, convolution weights
[out, in / groups, kh, kw], linear weights [out, in]; pgen's are NHWC, HWIO and [in, out].
Nothing is guessed or skipped: a name the converter needs and does not find, a tensor left
over, or a shape that does not fit the pgen network built from the config raises
`WeightsMismatchError` naming them.
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import flax
import jax
import numpy as np

from pgen.data import options as data_options
from pgen.errors import PgenError

# upfirdn2d.setup_filter([1, 3, 3, 1]): the resampling filter every official layer stores.
RESAMPLE_FILTER = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0]) / 64.0


class WeightsMismatchError(PgenError, ValueError):
  """Official weights that do not fit the pgen network (names, shapes or settings)."""


class Converted(NamedTuple):
  """A pgen variable's value and the official tensor(s) it came from (for messages)."""
  value: np.ndarray
  source: str


class OfficialState:
  """An official state dict being converted: each read names the tensor and checks its
  shape; `finish` raises naming every tensor that no read took."""

  def __init__(self, tensors: Mapping[str, np.ndarray], network: str):
    self.tensors = dict(tensors)
    self.network = network
    self.taken = set()

  def has(self, name: str) -> bool:
    return name in self.tensors

  def shape(self, name: str) -> tuple:
    """The shape of the tensor `name`, which stays to be read."""
    if name not in self.tensors:
      self.take(name)  # Raises, naming it.
    return tuple(np.shape(self.tensors[name]))

  def take(self, name: str, shape=None) -> np.ndarray:
    """The tensor `name` as float32 (checked against `shape` when given)."""
    if name not in self.tensors:
      raise WeightsMismatchError(
          f"The official {self.network} has no tensor {name!r}, which the pgen network built "
          "from the config needs: the config does not describe this network (compare its "
          "settings with the official constructor's kwargs).")
    value = np.asarray(self.tensors[name], np.float32)
    if shape is not None and value.shape != tuple(shape):
      raise WeightsMismatchError(
          f"The official {self.network}'s {name} has shape {value.shape}, where the pgen "
          f"network built from the config needs {tuple(shape)}: the config does not describe "
          "this network.")
    self.taken.add(name)
    return value

  def dense(self, name: str) -> Converted:
    """A linear layer's weight [out, in], or a 1x1 convolution's [out, in, 1, 1], as a
    Dense kernel [in, out]."""
    weight = self.take(name)
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
      weight = weight[:, :, 0, 0]
    if weight.ndim != 2:
      raise WeightsMismatchError(f"The official {self.network}'s {name} has shape "
                                 f"{weight.shape}, not a linear layer's [out, in].")
    return Converted(weight.T, name)

  def conv(self, name: str, flip: bool = False) -> Converted:
    """A convolution weight [out, in, kh, kw] as an HWIO kernel; `flip` for a layer that
    convolves where pgen correlates (the kernel mirrored in both axes)."""
    weight = self.take(name)
    if weight.ndim != 4:
      raise WeightsMismatchError(f"The official {self.network}'s {name} has shape "
                                 f"{weight.shape}, not a convolution's [out, in, kh, kw].")
    kernel = weight.transpose(2, 3, 1, 0)
    return Converted(kernel[::-1, ::-1] if flip else kernel, name)

  def same(self, name: str) -> Converted:
    """A tensor pgen stores as it is (biases, scalars, noise images)."""
    return Converted(self.take(name), name)

  def check_filter(self, name: str, expected: np.ndarray = RESAMPLE_FILTER) -> None:
    """Reads a resampling-filter buffer, which must be the filter pgen builds in."""
    value = self.take(name)
    if value.shape != expected.shape or not np.allclose(value, expected, rtol=0, atol=1e-7):
      raise WeightsMismatchError(
          f"The official {self.network}'s {name} is not the [1, 3, 3, 1] filter (outer "
          f"product, normalized) that pgen resamples with: {value.tolist()}.")

  def finish(self) -> None:
    """Raises naming every tensor that no read took."""
    left = sorted(set(self.tensors) - self.taken)
    if left:
      raise WeightsMismatchError(
          f"{len(left)} tensor(s) of the official {self.network} have no place in the pgen "
          f"network built from the config: {', '.join(left)}. The config does not describe "
          "this network (or the file holds another network's tensors).")


def square_side(config, model_name: str, family: str) -> int:
  """The image side of `config`, after checking it is a `model_name` model of square images
  (the official `family` networks are square)."""
  if config.model.name != model_name:
    raise WeightsMismatchError(f"model.name={config.model.name!r}: {family} weights go into "
                               f"model.name={model_name!r}.")
  height, width = data_options.target_size(config.data.resolution)
  if height != width:
    raise WeightsMismatchError(f"data.resolution={config.data.resolution!r}: the official "
                               f"{family} networks are square.")
  return height


def _same_setting(given, value) -> bool:
  """Whether a setting has `value` (a list and a tuple of the same items are the same)."""
  if isinstance(value, (list, tuple)):
    return isinstance(given, (list, tuple)) and list(given) == list(value)
  return given == value


def read_kwargs(kwargs: Mapping, where: str, *, required=(), read=(),
                fixed: Mapping | None = None, ignored=()) -> dict:
  """The settings of `kwargs` (an official constructor's, `where` names it) named in
  `required` (each must be given) and `read` (those given), after checking that each of
  `fixed` is absent or has the value pgen computes with, and that nothing else is given:
  `ignored` names those that do not change the function (precision, training)."""
  fixed = dict(fixed or {})
  missing = sorted(set(required) - set(kwargs))
  if missing:
    raise WeightsMismatchError(f"{where} lack {', '.join(missing)}, which the official "
                               "constructor requires.")
  unknown = sorted(set(kwargs) - set(required) - set(read) - set(fixed) - set(ignored))
  if unknown:
    raise WeightsMismatchError(f"{where}: {', '.join(unknown)} are settings pgen does not "
                               "convert (no pgen network has them).")
  for name, value in fixed.items():
    if not _same_setting(kwargs.get(name, value), value):
      raise WeightsMismatchError(f"{where}: {name}={kwargs[name]!r} is not supported; pgen "
                                 f"computes as {name}={value!r}.")
  return {name: kwargs[name] for name in (*required, *read) if name in kwargs}


def expected_shapes(module, *args, **kwargs) -> dict:
  """{(collection, *path): shape} of the variables `module.init(key, *args, **kwargs)`
  makes, without computing them."""
  init = functools.partial(module.init, **kwargs)
  variables = jax.eval_shape(init, jax.random.PRNGKey(0), *args)
  return {path: leaf.shape for path, leaf in flax.traverse_util.flatten_dict(
      flax.core.unfreeze(variables)).items()}


def assemble(expected: Mapping[tuple, tuple], converted: Mapping[tuple, Converted],
             network: str) -> dict:
  """The nested variables of `converted` ({path: Converted}), which must give every
  variable of `expected` ({path: shape}, from expected_shapes) with its shape, and no other."""
  problems = []
  for path in sorted(set(expected) - set(converted)):
    problems.append(f"{'/'.join(path)} is given by no official tensor")
  for path in sorted(set(converted) - set(expected)):
    problems.append(f"{converted[path].source} has no place in it (would be "
                    f"{'/'.join(path)})")
  for path in sorted(set(expected) & set(converted)):
    value, source = converted[path]
    if tuple(value.shape) != tuple(expected[path]):
      problems.append(f"{'/'.join(path)} has shape {tuple(expected[path])}, the official "
                      f"{source} gives {tuple(value.shape)}")
  if problems:
    raise WeightsMismatchError(
        f"The official weights do not fit pgen's {network} built from the config: "
        f"{'; '.join(problems)}.")
  return flax.traverse_util.unflatten_dict(
      {path: np.array(item.value, np.float32) for path, item in converted.items()})
