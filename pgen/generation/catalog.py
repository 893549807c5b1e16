r"""Catalog generation: many images per class as PNG files, with a manifest and contact
sheets, in bounded memory.

    python -m pgen generate --export exports/fmnist --per_class 1000 --out catalog/ \
        [--seed 0] [--postprocess autocontrast,sharpen,upscale=4]

writes catalog/<class>/<seed>.png (seeds `seed` .. `seed + per_class - 1`; an unconditional
generator has the one class `all`), catalog/manifest.csv (file, class, seed, step,
truncation, postprocess, source) and catalog/contact_sheets/<class>.png (the first 100 of
each class). A generator of combined labels (data.label_keys) adds a manifest column and a
PNG text chunk per attribute (label, colour). Image <seed>.png depends on its seed and class
alone, so the same seed gives the same files, however many are generated. Images are
rendered and written CHUNK at a time with a progress line: 100,000 images never sit in
memory together.

With a reviewers' acceptance model (`--accept DIR --min_accept 0.8`, pgen.feedback.acceptance), a
class's files are its first `per_class` seeds, in order from `seed`, whose P(accept) reaches
`min_accept`, looking at most at `--max_candidates` seeds; the manifest and the PNG text
chunks add accept_probability, min_accept and acceptance_model.
"""

import csv
import dataclasses
import os
import sys
import time
from typing import Any

import numpy as np
from PIL import PngImagePlugin

from pgen.core import pixels
from pgen.data import options as data_options
from pgen.generation import generators, postprocess

CHUNK = 256
CONTACT_SHEET_IMAGES = 100
UNCONDITIONAL_CLASS = "all"
MANIFEST_FIELDS = ("file", "class", "seed", "step", "truncation", "postprocess", "source")
ACCEPTANCE_FIELDS = ("accept_probability", "min_accept", "acceptance_model")


def _or_none(value):
  return "none" if value is None else value


def file_safe(name: str) -> str:
  return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


class Progress:
  """One line on stderr: done/total, images/s (rewritten in place on a terminal, every
  tenth otherwise)."""

  def __init__(self, total: int, what: str = "images"):
    self._total, self._what, self._start = total, what, time.time()
    self._tty, self._next_report = sys.stderr.isatty(), 0

  def update(self, done: int) -> None:
    if not self._tty and done < self._next_report and done < self._total:
      return
    self._next_report = done + max(self._total // 10, 1)
    rate = done / max(time.time() - self._start, 1e-9)
    bar = "#" * (20 * done // self._total)
    end = "\r" if self._tty and done < self._total else "\n"
    print(f"[{bar:<20}] {done}/{self._total} {self._what} ({rate:.0f}/s)", end=end,
          file=sys.stderr, flush=True)


def png_info(fields: dict) -> PngImagePlugin.PngInfo:
  """PNG text chunks `pgen:<key>` recording where an image came from."""
  info = PngImagePlugin.PngInfo()
  for key, value in fields.items():
    info.add_text(f"pgen:{key}", str(value))
  return info


@dataclasses.dataclass(frozen=True)
class Acceptance:
  """Rejection sampling by a reviewers' acceptance model (pgen.feedback.acceptance): each class's
  candidates are drawn in seed order, and those with P(accept) >= `min_accept` kept, until
  the class has its count or `max_candidates` have been drawn."""
  model: Any  # acceptance.AcceptanceModel
  min_accept: float
  max_candidates: int  # Per class.


def candidates(generator, label, seed: int, per_class: int, acceptance: Acceptance | None):
  """Chunks of (seeds, images, P(accept) or None) of one class's catalog (label None when
  unconditional), in seed order."""
  limit = per_class if acceptance is None else acceptance.max_candidates
  kept = 0
  for first in range(seed, seed + limit, CHUNK):
    seeds = np.arange(first, min(first + CHUNK, seed + limit), dtype=np.int64)
    labels = None if label is None else np.full((len(seeds),), label, np.int32)
    latents = generators.latents_for_seeds(generator, seeds)
    images = generator.render(latents, labels)
    if acceptance is None:
      yield seeds, images, None
      continue
    probability = acceptance.model.probability(images, labels, latents)
    keep = np.flatnonzero(probability >= acceptance.min_accept)[:per_class - kept]
    kept += len(keep)
    yield seeds[keep], images[keep], probability[keep]
    if kept == per_class:
      return


def write_catalog(generator: generators.TrainedGenerator, out_dir: str, per_class: int, *,
                  seed: int = 0, postprocess_spec: str | None = None,
                  class_names=None, acceptance: Acceptance | None = None) -> dict:
  """Writes `per_class` images of each class (or of `class_names`) under `out_dir`; returns
  {"images": count, "manifest": path, "images_per_s": rate, "shortfall": {class: missing}}
  (with `acceptance`, a class whose candidates ran out before `per_class` were accepted
  has fewer images: shortfall says how many fewer)."""
  steps = postprocess.parse(postprocess_spec)
  generators.check_seeds(seed, per_class if acceptance is None else acceptance.max_candidates)
  classes = list(class_names or generator.class_names) if generator.conditional else [
      UNCONDITIONAL_CLASS]
  attributes = tuple(data_options.attributes_of(generator.class_names))
  fields = (MANIFEST_FIELDS[:2] + attributes + MANIFEST_FIELDS[2:] +
            (ACCEPTANCE_FIELDS if acceptance else ()))
  os.makedirs(os.path.join(out_dir, "contact_sheets"), exist_ok=True)
  manifest_path = os.path.join(out_dir, "manifest.csv")
  progress, start, done = Progress(per_class * len(classes)), time.time(), 0
  shortfall = {}
  with open(manifest_path, "w", newline="") as manifest_file:
    manifest = csv.DictWriter(manifest_file, fields)
    manifest.writeheader()
    for name in classes:
      label = list(generator.class_names).index(name) if generator.conditional else None
      folder = os.path.join(out_dir, file_safe(name))
      os.makedirs(folder, exist_ok=True)
      sheet, written = [], 0
      for seeds, images, probability in candidates(generator, label, seed, per_class,
                                                    acceptance):
        for index, (image_seed, image) in enumerate(zip(seeds, images)):
          record = {"file": f"{file_safe(name)}/{image_seed}.png", "class": name,
                    "seed": int(image_seed), "step": generator.step,
                    "truncation": _or_none(generator.options.truncation),
                    "postprocess": postprocess.describe(steps), "source": generator.source}
          if attributes:  # A column and a text chunk per attribute of a combined class.
            record.update(data_options.parse_combination(name))
          if acceptance:
            record.update(accept_probability=f"{probability[index]:.4f}",
                          min_accept=acceptance.min_accept,
                          acceptance_model=acceptance.model.record["path"])
          picture = postprocess.apply(steps, pixels.to_pil(image))
          picture.save(os.path.join(out_dir, record["file"]), pnginfo=png_info(record))
          manifest.writerow(record)
          if len(sheet) < CONTACT_SHEET_IMAGES:
            sheet.append(pixels.from_pil(picture))
        written += len(seeds)
        done += len(seeds)
        progress.update(done)
      if written < per_class:
        shortfall[name] = per_class - written
        done += per_class - written  # The progress line counts the class as finished.
        progress.update(done)
      if sheet:
        pixels.save_png(pixels.image_grid(np.stack(sheet)),
                         os.path.join(out_dir, "contact_sheets", f"{file_safe(name)}.png"),
                         scale=1)
  images = done - sum(shortfall.values())
  return {"images": images, "manifest": manifest_path,
          "images_per_s": images / max(time.time() - start, 1e-9), "shortfall": shortfall}
