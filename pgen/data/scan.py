"""What a folder of catalog photos holds, for `python -m pgen prepare`: its image files,
the label of each, and what cleaning each image found.

    found = scan_folder("/photos", labels_csv=None)      # or labels_csv="/photos/labels.csv"
    analysis = analyse("/photos", found.candidates, images.CleanOptions(), workers=8)
    analysis.kept, found.skipped + analysis.skipped       # usable images; the others and why

Class = first-level subfolder of `src` (a folder without subfolders is one class), or a
column of a CSV whose `file` column holds paths relative to `src`: `label`, or the one
`label_column` names; the CSV's other columns become attributes (extra ClassLabel
features). A CSV without that column, for photos that are not in class subfolders, is
refused: its class column is probably named otherwise. Each step returns what it found,
skipped files included, so that `prepare` can report every file and why it was left out.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import os
import re

from absl import logging

from pgen.data import images
from pgen.errors import ArgumentError

# The features every prepared example has, so no attribute column may become one of them.
_RESERVED_FEATURES = ("image", "label", "file_name")


class PrepareError(ArgumentError):
  """The source folder, labels CSV or dataset name cannot be used as given."""


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A labelled image file; `result` is set by `analyse`."""
  file: str  # Relative to src, "/"-separated: the example key and the report's name.
  label: str
  attributes: dict  # {feature name: value}, from the CSV's attribute columns.
  result: images.CleanResult | None = None


@dataclasses.dataclass(frozen=True)
class LabelsCsv:
  """A labels CSV as `read_labels_csv` found it."""
  path: str
  rows: dict  # {file: row}, values stripped.
  label_column: str | None  # The class's column; None: the class is the subfolder.
  attribute_columns: dict  # {feature name: CSV column}.
  columns: tuple = ()  # Every column, as the CSV names them.


@dataclasses.dataclass(frozen=True)
class FolderScan:
  """What is under `src` before any image is opened."""
  image_files: list  # Relative to src, sorted.
  not_images: list  # Other files, hidden entries and links to folders (these end in "/").
  candidates: list  # The image files that have a label, as Candidates without a result.
  attribute_features: list  # Feature names of the CSV's attribute columns.
  label_column: str | None  # The CSV column that is the class; None: the subfolder.
  missing_files: list  # Listed in the CSV but not under src.
  skipped: list  # {"file", "problem", "reason"}: names that are not UTF-8, no label.


@dataclasses.dataclass(frozen=True)
class Analysis:
  """Every candidate decoded and cleaned once (hashes, sizes, the problem if any)."""
  candidates: list  # Every candidate, with its result, in path order.
  kept: list  # Those without a problem.
  skipped: list  # {"file", "problem", "reason"} of the others.


def _is_utf8(path: str) -> bool:
  """False for a name os.walk handed over with surrogate escapes (not UTF-8 on disk), which
  the dataset's text features and JSON cannot hold."""
  try:
    path.encode("utf-8")
  except UnicodeEncodeError:
    return False
  return True


def _walk(src: str):
  """(image files, other files, skipped records) under `src`, relative and sorted; hidden
  entries and symbolic links to folders (not followed: they can loop) count as other; files
  whose names are not UTF-8, and links to files outside `src` (not followed: the dataset
  holds the folder's photos only), are skipped."""
  image_files, others, skipped = [], [], []
  inside = os.path.join(os.path.realpath(src), "")
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
      target = os.path.realpath(os.path.join(root, name))
      if os.path.islink(os.path.join(root, name)) and not target.startswith(inside):
        skipped.append({"file": path, "problem": "outside_src",
                        "reason": f"a symbolic link to {target}, outside --src: not followed; "
                                  "copy the file into the folder to include it"})
        continue
      is_image = name.lower().endswith(images.IMAGE_EXTENSIONS) and not name.startswith(".")
      (image_files if is_image else others).append(path)
  return sorted(image_files), sorted(others), skipped


def _feature_name(column: str) -> str:
  name = re.sub(r"[^a-z0-9_]+", "_", column.strip().lower()).strip("_")
  if not name or not name[0].isalpha():
    name = f"attr_{name}"
  return name


def read_labels_csv(path: str, label_column: str | None = None) -> LabelsCsv:
  """The CSV's rows by file and its attribute columns; `label_column` (default `label`, if
  the CSV has one) is the class. Refuses a CSV that would label a file twice or make two
  columns one feature, and a `label_column` it lacks, before any image is read."""
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      columns = [c.strip() for c in reader.fieldnames or []]
      rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
              for row in reader]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise PrepareError(f"Cannot read --labels={path}: {e}.") from e
  if "file" not in columns:
    raise PrepareError(f"labels={path} has columns {columns}; it needs a `file` column (paths "
                       "relative to src), optionally `label`, and any attribute columns.",
                       argument="labels")
  if label_column is not None and label_column not in columns:
    raise PrepareError(f"label_column={label_column!r} is not a column of {path}; its columns "
                       f"are {', '.join(columns)}.", argument="label_column")
  if label_column is None and "label" in columns:
    label_column = "label"
  attributes = {}
  for column in columns:
    if column in ("file", label_column):
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
  return LabelsCsv(path, by_file, label_column, attributes, tuple(columns))


def _label(src: str, image_files: list, labels: LabelsCsv | None):
  """(candidates, skipped records): every image file with its label, or why it has none."""
  in_subfolders = any("/" in f for f in image_files)
  single_class = os.path.basename(os.path.normpath(src))
  candidates, skipped = [], []
  for file in image_files:
    folder_label = file.split("/")[0] if "/" in file else (None if in_subfolders else single_class)
    row = labels.rows.get(file) if labels else None
    if labels and row is None:
      skipped.append({"file": file, "problem": "unlisted",
                      "reason": f"not listed in {os.path.basename(labels.path)}"})
      continue
    label = row[labels.label_column] if labels and labels.label_column else folder_label
    if label is None:
      skipped.append({"file": file, "problem": "no_class",
                      "reason": "directly in --src, not in a class subfolder"})
      continue
    if not label:
      skipped.append({"file": file, "problem": "no_label",
                      "reason": f"empty `{labels.label_column}` in "
                                f"{os.path.basename(labels.path)}"})
      continue
    attributes = {feature: row[column] or "(missing)"
                  for feature, column in labels.attribute_columns.items()} if row else {}
    candidates.append(Candidate(file, label, attributes))
  return candidates, skipped


def _check_class_source(labels: LabelsCsv, image_files: list) -> None:
  """A CSV that names no class column, for photos that are not in class subfolders, would
  make one class of them all: refused, with the columns it has."""
  if labels.label_column or any("/" in file for file in image_files):
    return
  raise PrepareError(
      f"labels={labels.path} has no `label` column and the photos are not in class "
      f"subfolders, so every photo would be one class. Its columns are "
      f"{', '.join(labels.columns)}: name the class's with --label_column (e.g. "
      f"--label_column={_guess_class_column(labels)}).", argument="labels")


def _guess_class_column(labels: LabelsCsv) -> str:
  """The column most likely to be the class, for the error's example: the first attribute
  column, else `category`."""
  return next(iter(labels.attribute_columns.values()), "category")


def scan_folder(src: str, labels_csv: str | None = None,
                label_column: str | None = None) -> FolderScan:
  """The files under `src` and the label of each image (`label_column`: the CSV's class
  column, default `label`); opens no image, so a bad CSV is refused at once."""
  if label_column is not None and not labels_csv:
    raise PrepareError("label_column names a column of the labels CSV; give --labels too.",
                       argument="label_column")
  image_files, not_images, bad_names = _walk(src)
  labels = read_labels_csv(labels_csv, label_column) if labels_csv else None
  if labels:
    _check_class_source(labels, image_files)
  if labels_csv:  # The labels CSV kept beside the photos is no stray file.
    own = os.path.relpath(os.path.abspath(labels_csv), os.path.abspath(src))
    not_images = [name for name in not_images if name != own]
  candidates, unlabelled = _label(src, image_files, labels)
  return FolderScan(
      image_files=image_files, not_images=not_images, candidates=candidates,
      attribute_features=list(labels.attribute_columns) if labels else [],
      label_column=labels.label_column if labels else None,
      missing_files=sorted(set(labels.rows) - set(image_files)) if labels else [],
      skipped=bad_names + unlabelled)


def ordered_map(fn, items, workers: int):
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


def analyse(src: str, candidates: list, options: images.CleanOptions,
            workers: int) -> Analysis:
  """Decodes and cleans every candidate once, keeping its hashes and sizes but not its
  pixels (the writer decodes the kept ones again), so memory stays bounded."""
  logging.info("prepare: analysing %d images under %s on %d threads", len(candidates), src,
               workers)

  def analysed(c):
    return dataclasses.replace(c, result=images.clean_image(os.path.join(src, c.file), options))

  results = list(ordered_map(analysed, candidates, workers))
  return Analysis(
      candidates=results, kept=[c for c in results if not c.result.problem],
      skipped=[{"file": c.file, "problem": c.result.problem, "reason": c.result.reason}
               for c in results if c.result.problem])
