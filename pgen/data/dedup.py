"""Which images of a prepared folder are copies of another, for `python -m pgen prepare`.

    unique, duplicates = deduplicate(analysis.kept, near_bits=5)   # near_bits=None: exact only
    duplicates[0]   # {"file", "duplicate_of", "kind": "exact" | "near", "hash_distance", ...}

A catalog often holds the same photo twice (re-exports, resized copies); a GAN trained on
it over-weights those products. Exact copies have the same pixels; near-exact ones the same
shape and tone (perceptual hash), colours and aspect. The first in path order is kept.
"""

import collections

from pgen.data import images


class _NearDuplicateIndex:
  """Finds earlier kept images within `max_bits` of a perceptual hash without comparing all
  pairs: split into max_bits + 1 bit ranges, two hashes that close agree on at least one."""

  def __init__(self, max_bits: int):
    edges = [round(i * 64 / (max_bits + 1)) for i in range(max_bits + 2)]
    self._ranges = list(zip(edges[:-1], edges[1:]))
    self._tables = [collections.defaultdict(list) for _ in self._ranges]

  def _keys(self, phash):
    return [(phash >> lo) & ((1 << (hi - lo)) - 1) for lo, hi in self._ranges]

  def candidates(self, phash):
    found, seen = [], set()
    for table, key in zip(self._tables, self._keys(phash)):
      for item in table.get(key, ()):
        if id(item) not in seen:
          seen.add(id(item))
          found.append(item)
    return found

  def add(self, phash, item):
    for table, key in zip(self._tables, self._keys(phash)):
      table[key].append(item)


def _near_copy(a: images.CleanResult, b: images.CleanResult, max_bits: int):
  """Hamming distance if `a` and `b` are near-exact copies, else None. Same shape and tone
  (pHash), same colours (a colour variant of a product is not a copy) and same aspect."""
  distance = bin(a.phash ^ b.phash).count("1")
  aspect_a, aspect_b = (s[0] / s[1] for s in (a.stored_size, b.stored_size))
  if (distance <= max_bits and images.thumbnail_distance(a.thumbnail, b.thumbnail) <= 10
      and abs(aspect_a / aspect_b - 1) <= 0.05):
    return distance
  return None


def deduplicate(kept: list, near_bits: int | None):
  """(unique candidates, duplicate records) of analysed candidates (`file`, `label` and the
  cleaning `result` of each). `near_bits` is the largest perceptual-hash distance (of 64
  bits) of a near-exact copy; None finds exact copies only."""
  by_pixels, index, unique, duplicates = {}, _NearDuplicateIndex(near_bits or 0), [], []
  for c in kept:
    original, kind, distance = by_pixels.get(c.result.pixel_sha256), "exact", 0
    if original is None and near_bits is not None:
      for other in index.candidates(c.result.phash):
        distance = _near_copy(c.result, other.result, near_bits)
        if distance is not None:
          original, kind = other, "near"
          break
    if original is None:
      by_pixels[c.result.pixel_sha256] = c
      index.add(c.result.phash, c)
      unique.append(c)
      continue
    record = {"file": c.file, "duplicate_of": original.file, "kind": kind,
              "hash_distance": distance}
    if original.label != c.label:
      record["note"] = f"labelled {c.label!r}, the kept copy {original.label!r}"
    duplicates.append(record)
  return unique, duplicates
