"""A folder of catalog photos -> a versioned TFDS dataset: `python -m pgen prepare`.

    report = prepare("/photos", "my_catalog", out="/data/tfds")       # or labels_csv=...
    builder = tfds.builder("my_catalog", data_dir="/data/tfds")       # tfds.load works too

Class = first-level subfolder of `src` (a folder without subfolders is one class), or the
`label` column of a CSV whose `file` column holds paths relative to `src`; the CSV's other
columns become extra ClassLabel features. Every image is decoded, converted to RGB
(alpha on white), optionally trimmed of uniform borders, capped in size, and hashed;
exact copies (same pixels) and near-exact ones (perceptual hash and colour thumbnail) are
removed. Nothing stops the build and nothing is dropped silently: every skipped,
duplicate or ignored file is in report.json / report.md, next to manifest.json (every
source file's SHA-256 and fate) in `out/NAME/VERSION/`. Each run writes a new version
(1.0.0, 1.1.0, ...); `data.name="NAME:1.0.0"` pins one, `data.name="NAME"` takes the newest.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import json
import os
import re
import tempfile

import tensorflow_datasets as tfds
from absl import logging

from pgen.data import images, report as report_lib
from pgen.errors import PgenError

MANIFEST = "manifest.json"  # Marks a version directory as written by `prepare`.
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
_RESERVED_FEATURES = ("image", "label", "file_name")


class PrepareError(PgenError, ValueError):
  """The source folder, labels CSV or dataset name cannot be used as given."""


@dataclasses.dataclass
class _Candidate:
  file: str  # Relative to src, "/"-separated: the example key and the report's name.
  label: str
  attributes: dict
  result: images.CleanResult | None = None


def _check_name(name: str) -> None:
  if not _NAME_PATTERN.match(name or ""):
    raise PrepareError(f"--name={name!r} is not a valid TFDS name: use lower-case letters, "
                       "digits and underscores, starting with a letter (e.g. my_catalog).")
  if name in tfds.list_builders(with_community_datasets=False):
    raise PrepareError(f"--name={name!r} is a TFDS dataset already; choose another name for "
                       "your own data (e.g. my_{name}).")


def existing_versions(data_dir: str, name: str) -> list:
  """Versions of `name` that `prepare` finished in `data_dir`, oldest first."""
  root = os.path.join(data_dir, name)
  if not os.path.isdir(root):
    return []
  found = [v for v in os.listdir(root) if _VERSION_PATTERN.match(v)
           and os.path.isfile(os.path.join(root, v, "dataset_info.json"))]
  return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def prepared_versions(data_dir: str, name: str) -> list:
  """The versions of `name` in `data_dir` that `prepare` wrote (they hold a manifest)."""
  return [v for v in existing_versions(data_dir, name)
          if os.path.isfile(os.path.join(data_dir, name, v, MANIFEST))]


def prepared_names(data_dir: str) -> list:
  """Names of the datasets in `data_dir` that `prepare` wrote."""
  if not data_dir or not os.path.isdir(data_dir):
    return []
  return sorted(n for n in os.listdir(data_dir) if prepared_versions(data_dir, n))


def _next_version(data_dir: str, name: str, version: str | None) -> str:
  versions = existing_versions(data_dir, name)
  if version is None:
    if not versions:
      return "1.0.0"
    major, minor, _ = (int(p) for p in versions[-1].split("."))
    return f"{major}.{minor + 1}.0"
  if not _VERSION_PATTERN.match(version):
    raise PrepareError(f"--version={version!r} must look like 1.2.0.")
  if version in versions:
    raise PrepareError(f"{name} {version} already exists in {data_dir}; leave --version out to "
                       "write the next version, or delete "
                       f"{os.path.join(data_dir, name, version)}.")
  return version


def _is_utf8(path: str) -> bool:
  """False for a name os.walk handed over with surrogate escapes (not UTF-8 on disk), which
  the dataset's text features and JSON cannot hold."""
  try:
    path.encode("utf-8")
  except UnicodeEncodeError:
    return False
  return True


def _walk(src: str, skipped: list):
  """(image files, other files) under `src`, relative and sorted; hidden entries and
  symbolic links to folders (not followed: they can loop) count as other; files whose names
  are not UTF-8 are recorded in `skipped`."""
  image_files, others = [], []
  for root, dirs, files in os.walk(src):
    rel_root = os.path.relpath(root, src)
    rel = (lambda n: n) if rel_root == "." else (lambda n: f"{rel_root}/{n}".replace(os.sep, "/"))
    others += [rel(d) + "/" for d in dirs
               if d.startswith(".") or os.path.islink(os.path.join(root, d))]
    dirs[:] = sorted(d for d in dirs
                     if not d.startswith(".") and not os.path.islink(os.path.join(root, d)))
    for name in sorted(files):
      path = rel(name)
      if not _is_utf8(path):
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        skipped.append({"file": shown, "problem": "bad_name",
                        "reason": "its name is not valid UTF-8; rename it"})
        continue
      is_image = name.lower().endswith(images.IMAGE_EXTENSIONS) and not name.startswith(".")
      (image_files if is_image else others).append(path)
  return sorted(image_files), sorted(others)


def _feature_name(column: str) -> str:
  name = re.sub(r"[^a-z0-9_]+", "_", column.strip().lower()).strip("_")
  if not name or not name[0].isalpha():
    name = f"attr_{name}"
  return name


def read_labels_csv(path: str):
  """{file: row} (values stripped), has a `label` column, {feature name: CSV column}."""
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      columns = [c.strip() for c in reader.fieldnames or []]
      rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
              for row in reader]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise PrepareError(f"Cannot read --labels={path}: {e}.") from e
  if "file" not in columns:
    raise PrepareError(f"--labels={path} has columns {columns}; it needs a `file` column (paths "
                       "relative to --src), optionally `label`, and any attribute columns.")
  attributes = {}
  for column in columns:
    if column in ("file", "label"):
      continue
    feature = _feature_name(column)
    if feature in _RESERVED_FEATURES or feature in attributes:
      raise PrepareError(f"Column {column!r} of {path} would be the feature {feature!r}, which "
                         "is taken; rename the column.")
    attributes[feature] = column
  by_file = {}
  for line, row in enumerate(rows, start=2):
    file = os.path.normpath(row["file"]).replace(os.sep, "/") if row["file"] else ""
    if not file:
      raise PrepareError(f"{path} line {line} has an empty `file`; fill it in or delete the row.")
    if file in by_file:
      raise PrepareError(f"{path} lists {file} twice (line {line}); keep one row per file.")
    by_file[file] = row
  return by_file, "label" in columns, attributes


def _candidates(src, image_files, labels_csv, skipped):
  """Labels every image file, or records in `skipped` why it has none."""
  rows, has_label_column, attribute_columns = ({}, False, {})
  if labels_csv:
    rows, has_label_column, attribute_columns = read_labels_csv(labels_csv)
  in_subfolders = any("/" in f for f in image_files)
  single_class = os.path.basename(os.path.normpath(src))
  candidates = []
  for file in image_files:
    folder_label = file.split("/")[0] if "/" in file else (None if in_subfolders else single_class)
    row = rows.get(file)
    if labels_csv and row is None:
      skipped.append({"file": file, "problem": "unlisted",
                      "reason": f"not listed in {os.path.basename(labels_csv)}"})
      continue
    label = row["label"] if has_label_column else folder_label
    if label is None:
      skipped.append({"file": file, "problem": "no_class",
                      "reason": "directly in --src, not in a class subfolder"})
      continue
    if not label:
      skipped.append({"file": file, "problem": "no_label",
                      "reason": f"empty `label` in {os.path.basename(labels_csv)}"})
      continue
    attributes = {feature: row[column] or "(missing)"
                  for feature, column in attribute_columns.items()} if row else {}
    candidates.append(_Candidate(file, label, attributes))
  missing = sorted(set(rows) - set(image_files))
  return candidates, list(attribute_columns), missing


def _ordered_map(fn, items, workers: int):
  """fn over items on `workers` threads, in order, at most 4 per worker in flight (bounded
  memory when results hold encoded images). PIL and NumPy release the GIL while decoding."""
  if workers <= 1:
    yield from map(fn, items)
    return
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    pending = collections.deque()
    for item in items:
      pending.append(pool.submit(fn, item))
      if len(pending) >= 4 * workers:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


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


def _deduplicate(kept, near_bits: int | None):
  """(unique candidates, duplicate records); the first in path order is the one kept."""
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


def _builder(name, version, class_names, attributes, encoding, description, generate, data_dir):
  """A GeneratorBasedBuilder for this one dataset; TFDS writes it, TFDS reads it back."""
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), encoding_format=encoding),
      "label": tfds.features.ClassLabel(names=class_names),
      "file_name": tfds.features.Text(),
      **{feature: tfds.features.ClassLabel(names=values) for feature, values in attributes.items()},
  })
  dataset_name, dataset_version = name, version

  class FolderDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = dataset_name
    VERSION = tfds.core.Version(dataset_version)
    RELEASE_NOTES = {dataset_version: description}

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, description=description, features=features,
                                   supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      yield from generate()

  return FolderDataset(data_dir=data_dir)


def prepare(src: str, name: str, *, out: str | None = None, labels_csv: str | None = None,
            options: images.CleanOptions = images.CleanOptions(), dedup: bool = True,
            near_duplicate_bits: int = 5, version: str | None = None,
            workers: int | None = None) -> dict:
  """Builds `out/name/<version>` from the images under `src`; returns the report (also in
  report.json / report.md there). `near_duplicate_bits` is the largest perceptual-hash
  distance (of 64 bits) for near-exact copies."""
  if not os.path.isdir(src):
    raise PrepareError(f"--src={src} is not a directory; point it at the folder of images.")
  if labels_csv and not os.path.isfile(labels_csv):
    raise PrepareError(f"--labels={labels_csv} does not exist.")
  _check_name(name)
  data_dir = os.path.abspath(os.path.expanduser(out or tfds.core.constants.DATA_DIR))
  version = _next_version(data_dir, name, version)
  workers = workers or min(8, os.cpu_count() or 1)
  skipped = []
  image_files, not_images = _walk(src, skipped)
  candidates, attribute_features, missing = _candidates(src, image_files, labels_csv, skipped)
  kept = _analyse(src, candidates, options, workers, skipped)
  kept, duplicates = _deduplicate(kept, near_duplicate_bits) if dedup else (kept, [])
  if not kept:
    raise PrepareError(f"No usable image under {src} ({len(image_files)} image files, "
                       f"{len(skipped)} skipped); see the reasons: "
                       f"{[(s['file'], s['reason']) for s in skipped[:5]]}.")
  builder = _write_dataset(src, name, version, data_dir, kept, attribute_features, options,
                           workers)
  report = report_lib.build_report(
      dataset={"name": name, "version": version, "source": os.path.abspath(src),
               "labels_csv": os.path.abspath(labels_csv) if labels_csv else None,
               "data_dir": data_dir, "path": str(builder.data_path)},
      options={**dataclasses.asdict(options), "dedup": dedup,
               "near_duplicate_bits": near_duplicate_bits},
      image_files=image_files, kept=kept, skipped=skipped, duplicates=duplicates,
      missing_files=missing, not_images=not_images, attribute_features=attribute_features)
  _write_outputs(builder.data_path, report, candidates, kept, duplicates)
  return report


def _analyse(src, candidates, options, workers: int, skipped) -> list:
  """Decodes and cleans every candidate (its `result`); returns the usable ones and records
  the others in `skipped`."""
  logging.info("prepare: analysing %d images under %s on %d threads", len(candidates), src,
               workers)

  def analyse(c):
    c.result = images.clean_image(os.path.join(src, c.file), options)
    return c

  kept = []
  for c in _ordered_map(analyse, candidates, workers):
    if c.result.problem:
      skipped.append({"file": c.file, "problem": c.result.problem, "reason": c.result.reason})
    else:
      kept.append(c)
  return kept


def _write_dataset(src, name, version, data_dir, kept, attribute_features, options,
                   workers: int):
  """Writes the kept images as the TFDS dataset `name` `version`; returns its builder. The
  images are decoded again here, so that none is held in memory since `_analyse`."""
  class_names = sorted({c.label for c in kept})
  attributes = {f: sorted({c.attributes[f] for c in kept}) for f in attribute_features}

  def generate():
    def encode(c):
      return c, images.clean_image(os.path.join(src, c.file), options, encode=True)

    for c, result in _ordered_map(encode, kept, workers):
      if result.pixel_sha256 != c.result.pixel_sha256:
        raise PrepareError(f"{c.file} changed while `prepare` was running; run it again.")
      yield c.file, {"image": result.encoded, "label": c.label, "file_name": c.file,
                     **c.attributes}

  description = (f"Prepared by `python -m pgen prepare` from {os.path.abspath(src)} "
                 f"({len(kept)} images, {len(class_names)} classes).")
  builder = _builder(name, version, class_names, attributes, options.encoding, description,
                     generate, data_dir)
  with tempfile.TemporaryDirectory() as downloads:
    builder.download_and_prepare(
        download_dir=downloads,
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
  return builder


def _write_outputs(path, report, candidates, kept, duplicates) -> None:
  """report.json, report.md and manifest.json (every labelled source file and its fate)."""
  kept_files = {c.file for c in kept}
  duplicate_of = {d["file"]: d["duplicate_of"] for d in duplicates}
  manifest = {"name": report["name"], "version": report["version"], "source": report["source"],
              "options": report["options"], "files": []}
  for c in candidates:
    entry = {"file": c.file, "label": c.label, **c.attributes, "sha256": c.result.file_sha256}
    if c.result.problem is None:
      entry.update(sha256_pixels=c.result.pixel_sha256, stored_size=list(c.result.stored_size))
    entry["status"] = ("kept" if c.file in kept_files else
                       f"duplicate of {duplicate_of[c.file]}" if c.file in duplicate_of else
                       f"skipped: {c.result.reason}")
    manifest["files"].append(entry)
  analysed = {c.file for c in candidates}
  manifest["files"] += [{"file": s["file"], "status": f"skipped: {s['reason']}"}
                        for s in report["skipped"] if s["file"] not in analysed]
  manifest["files"].sort(key=lambda entry: entry["file"])
  with open(os.path.join(path, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)
  with open(os.path.join(path, "report.json"), "w") as f:
    json.dump(report, f, indent=1)
  with open(os.path.join(path, "report.md"), "w") as f:
    f.write(report_lib.report_markdown(report))
