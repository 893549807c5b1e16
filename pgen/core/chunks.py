"""Running a function over a large set in fixed-size chunks: bounded memory, one
compilation.

    features, logits = map_chunks(lambda i, images: classify(images), [images], 1000)
    images = map_chunks(lambda i, labels: sample(fold_in(key, i), labels), [labels], 500)
"""

from typing import Callable, Sequence

import numpy as np


def map_chunks(fn: Callable, arrays: Sequence[np.ndarray], chunk_size: int, *,
               pad: bool = False):
  """`fn(chunk_index, *chunks)` over consecutive `chunk_size` rows of `arrays` (equal
  lengths), its outputs (an array or a tuple of arrays) concatenated on the host.

  With `pad`, a short last chunk is padded with zeros to `chunk_size` (so a jitted `fn`
  sees one shape) and its outputs are cut back. Empty arrays are refused: with no call of
  `fn`, the outputs' shapes are unknown.
  """
  total = len(arrays[0])
  if any(len(a) != total for a in arrays):
    raise ValueError(f"map_chunks needs arrays of one length; got {[len(a) for a in arrays]}.")
  if total == 0:
    raise ValueError("map_chunks got empty arrays; there is nothing to compute.")
  outputs = []
  for index, start in enumerate(range(0, total, chunk_size)):
    chunks = [a[start:start + chunk_size] for a in arrays]
    size = len(chunks[0])
    if pad and size < chunk_size:
      chunks = [np.concatenate([c, np.zeros((chunk_size - size, *c.shape[1:]), c.dtype)])
                for c in chunks]
    result = fn(index, *chunks)
    parts = result if isinstance(result, tuple) else (result,)
    outputs.append(tuple(np.asarray(p)[:size] for p in parts))
  joined = tuple(np.concatenate(column) for column in zip(*outputs))
  return joined if isinstance(result, tuple) else joined[0]
