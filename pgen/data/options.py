"""What the `data` keys of a config may be (no TensorFlow here: configs are checked before
the input pipeline loads).

    height, width = target_size(config.data.resolution)   # 32 -> (32, 32)
"""

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
