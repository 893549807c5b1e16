"""What the `data` keys of a config may be (no TensorFlow here: configs are checked before
the input pipeline loads).

    height, width = target_size(config.data.resolution)   # 32 -> (32, 32)
    combination_names((("label", ("dress", "bag")), ("colour", ("red", "blue"))))
    # ("label=dress,colour=red", "label=dress,colour=blue", "label=bag,colour=red", ...)
"""

import itertools
import math

import numpy as np

RESIZE_MODES = ("pad", "crop", "stretch")
RESIZE_FILTERS = ("area", "bicubic", "bilinear", "gaussian", "lanczos3", "lanczos5",
                  "mitchellcubic", "nearest")  # tf.image.resize's methods.
CACHE_MODES = ("auto", "decoded", "encoded", "none")


def target_size(resolution) -> tuple[int, int]:
  """(height, width) from `data.resolution`: a side or a (height, width) pair."""
  if isinstance(resolution, int) and not isinstance(resolution, bool) and resolution > 0:
    return resolution, resolution
  if (isinstance(resolution, (tuple, list)) and len(resolution) == 2
      and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in resolution)):
    return tuple(resolution)
  raise ValueError(f"data.resolution={resolution!r} must be a side (e.g. 64) or (height, width) "
                   "(e.g. --config.data.resolution=\"(64, 48)\").")


def combination_names(attributes) -> tuple:
  """The class names of labels combining `attributes` ((key, value names), ...; the first
  the most significant), in label order: "key=value,key=value"."""
  keys = [key for key, _ in attributes]
  return tuple(",".join(f"{key}={value}" for key, value in zip(keys, values))
               for values in itertools.product(*(names for _, names in attributes)))


def parse_combination(text: str) -> dict:
  """{key: value} of a "key=value,key=value" condition or combination name."""
  pairs = [part.partition("=") for part in text.split(",")]
  if not all(key and equals for key, equals, _ in pairs):
    raise ValueError(f"{text!r} is not KEY=VALUE[,KEY=VALUE...] (e.g. label=dress,colour=red).")
  return {key.strip(): value.strip() for key, _, value in pairs}


def attributes_of(class_names) -> dict:
  """{key: its values, in order} of combination class names (combination_names'); {} for
  the class names of one attribute."""
  attributes = {}
  if not class_names or "=" not in class_names[0]:
    return attributes
  for name in class_names:
    for key, value in parse_combination(name).items():
      values = attributes.setdefault(key, [])
      if value not in values:
        values.append(value)
  return attributes


def label_strides(label_sizes) -> tuple:
  """What each attribute's value is multiplied by in a combined label: the first attribute
  the most significant (label = category x colours + colour)."""
  return tuple(math.prod(label_sizes[a + 1:]) for a in range(len(label_sizes)))


def attribute_values(labels, label_sizes):
  """(..., attributes) values of combined labels (numpy or jax arrays), each an index into
  its attribute's values; label_strides' inverse."""
  strides = np.asarray(label_strides(label_sizes))
  return labels[..., None] // strides % np.asarray(label_sizes)
