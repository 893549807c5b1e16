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

The steps live in `scan` (files and labels, each image cleaned once), `dedup` (copies) and
`tfds_writer` (versions, the dataset, manifest and reports); this module runs them in order.
"""

import dataclasses
import os

import tensorflow_datasets as tfds

from pgen.data import dedup as dedup_lib, images, report as report_lib, scan, tfds_writer
from pgen.data.scan import PrepareError


def prepare(src: str, name: str, *, out: str | None = None, labels_csv: str | None = None,
            label_column: str | None = None,
            options: images.CleanOptions = images.CleanOptions(), dedup: bool = True,
            near_duplicate_bits: int = 5, version: str | None = None,
            workers: int | None = None) -> dict:
  """Builds `out/name/<version>` from the images under `src`; returns the report (also in
  report.json / report.md there). `near_duplicate_bits` is the largest perceptual-hash
  distance (of 64 bits) for near-exact copies."""
  if not os.path.isdir(src):
    raise PrepareError(f"src={src} is not a directory; point it at the folder of images.",
                       argument="src")
  if labels_csv and not os.path.isfile(labels_csv):
    raise PrepareError(f"labels={labels_csv} does not exist.", argument="labels")
  tfds_writer.check_name(name)
  data_dir = os.path.abspath(os.path.expanduser(out or tfds.core.constants.DATA_DIR))
  version = tfds_writer.next_version(data_dir, name, version)
  workers = workers or min(8, os.cpu_count() or 1)
  found = scan.scan_folder(src, labels_csv, label_column)
  analysis = scan.analyse(src, found.candidates, options, workers)
  skipped = found.skipped + analysis.skipped
  kept, duplicates = (dedup_lib.deduplicate(analysis.kept, near_duplicate_bits) if dedup
                      else (analysis.kept, []))
  if not kept:
    raise PrepareError(f"No usable image under {src} ({len(found.image_files)} image files, "
                       f"{len(skipped)} skipped); see the reasons: "
                       f"{[(s['file'], s['reason']) for s in skipped[:5]]}.")
  builder = tfds_writer.write_dataset(src, name, version, data_dir, kept,
                                      found.attribute_features, options, workers)
  report = report_lib.build_report(
      dataset={"name": name, "version": version, "source": os.path.abspath(src),
               "labels_csv": os.path.abspath(labels_csv) if labels_csv else None,
               "label_column": found.label_column,
               "data_dir": data_dir, "path": str(builder.data_path)},
      options={**dataclasses.asdict(options), "dedup": dedup,
               "near_duplicate_bits": near_duplicate_bits},
      image_files=found.image_files, kept=kept, skipped=skipped, duplicates=duplicates,
      missing_files=found.missing_files, not_images=found.not_images,
      attribute_features=found.attribute_features)
  tfds_writer.write_records(builder.data_path, report, analysis.candidates, kept, duplicates)
  return report
