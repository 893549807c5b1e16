"""Features of a dataset split's real images, computed once and cached on disk.

    features = reference_features(builder, config, "train", 60000, extractor)

The cache lives in $PGEN_CACHE_DIR (default ~/.cache/pgen). A file's name records all
that its features depend on: dataset, split, image count, resolution, padding value and
the extractor's id (which names its weights), so a change of any of them computes anew.
"""

import io
import os

import ml_collections
import numpy as np
from absl import logging

from pgen.core import files
from pgen.data import pipeline


def cache_dir() -> str:
  return os.environ.get("PGEN_CACHE_DIR", os.path.expanduser("~/.cache/pgen"))


def cache_path(config: ml_collections.ConfigDict, split: str, num: int, extractor_id: str) -> str:
  data = config.data
  return os.path.join(cache_dir(), f"ref_{data.name}_{split}_n{num}_r{data.resolution}_"
                                   f"pad{data.pad_value}_{extractor_id}.npz")


def reference_features(builder, config: ml_collections.ConfigDict, split: str, num: int,
                       extractor) -> np.ndarray:
  """Features of the first `num` images of `split`, from the cache or computed (and cached)."""
  path = cache_path(config, split, num, extractor.id)
  if os.path.isfile(path):
    with np.load(path) as cached:
      return cached["features"]
  images, labels = pipeline.load_split(builder, config, split, limit=num)
  logging.info("Computing %s features of %d %s/%s images (cached afterwards in %s).",
               extractor.id, len(images), config.data.name, split, path)
  features, _ = extractor(images)
  arrays = io.BytesIO()
  np.savez(arrays, features=features, labels=labels)
  files.write_whole(path, arrays.getvalue())  # No torn cache files.
  logging.info("Cached reference features in %s", path)
  return features
