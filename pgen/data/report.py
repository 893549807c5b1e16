"""The report `python -m pgen prepare` writes next to a dataset: JSON for tools, Markdown
for people.

    report = build_report(dataset={"name": ..., ...}, kept=kept, ...)   # in folder.prepare
    text = report_markdown(report)   # report: the dict folder.prepare returns (report.json)

It answers what a user checks before training: how many images per class, which files
were skipped and why, which were removed as duplicates of which, how images were
converted, and how large and how wide they are (with a `data.resolution` that matches
the catalog's aspect ratio).
"""

import collections
import datetime
import math

SIZE_BINS = (0, 32, 64, 128, 256, 512, 1024)  # Shorter side in pixels, lower bounds.
ASPECT_BINS = (0.0, 0.5, 0.67, 0.9, 1.12, 1.5, 2.0)  # Width / height, lower bounds.
# (height, width) shapes around 64 pixels that pgen's DCGAN supports, by aspect ratio.
RESOLUTIONS_64 = ((64, 32), (64, 40), (64, 48), (64, 56), (64, 64), (56, 64), (48, 64),
                  (40, 64), (32, 64))
_MAX_LISTED = 50  # Per table in report.md; report.json lists everything.


def _bin_label(bins, i, unit=""):
  if i + 1 < len(bins):
    return f"{bins[i]}-{bins[i + 1]}{unit}"
  return f">={bins[i]}{unit}"


def histogram(values, bins, unit="") -> dict:
  """Counts of `values` per [bins[i], bins[i+1]) interval, keyed by a readable label."""
  counts = collections.Counter()
  for value in values:
    index = max(i for i, low in enumerate(bins) if value >= low)
    counts[index] += 1
  return {_bin_label(bins, i, unit): counts[i] for i in range(len(bins))}


def suggest_resolution(aspects) -> list:
  """The supported (height, width) near 64 px whose aspect is closest to the median."""
  if not aspects:
    return list(RESOLUTIONS_64[4])
  median = sorted(aspects)[len(aspects) // 2]
  return list(min(RESOLUTIONS_64, key=lambda hw: abs(math.log(hw[1] / hw[0] / median))))


def build_report(*, dataset: dict, options: dict, image_files: list, kept: list,
                 skipped: list, duplicates: list, missing_files: list, not_images: list,
                 attribute_features: list) -> dict:
  """The report of one `prepare` run. `dataset`: name, version, source, labels_csv,
  data_dir and path; `kept`: the kept images (`file`, `label`, `attributes` and the
  cleaning `result` of each); the other lists are what `prepare` left out, and why."""
  aspects = [c.result.stored_size[0] / c.result.stored_size[1] for c in kept]
  classes = dict(sorted(collections.Counter(c.label for c in kept).items()))
  return {
      **dataset,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "options": options,
      "counts": {"image_files": len(image_files), "kept": len(kept), "skipped": len(skipped),
                 "duplicates": len(duplicates), "not_images": len(not_images),
                 "missing_files": len(missing_files)},
      "classes": classes,
      "warnings": _warnings(dataset, classes, attribute_features),
      "attributes": {f: dict(sorted(collections.Counter(c.attributes[f] for c in kept).items()))
                     for f in attribute_features},
      "skipped": sorted(skipped, key=lambda s: s["file"]),
      "duplicates": duplicates,
      "missing_files": missing_files,
      "not_images": not_images,
      "converted": [{"file": c.file, "conversion": c.result.conversion}
                    for c in kept if c.result.conversion],
      "trimmed": sum(c.result.trimmed for c in kept),
      "trimmed_per_class": dict(sorted(collections.Counter(
          c.label for c in kept if c.result.trimmed).items())),
      "downscaled": sum(c.result.downscaled for c in kept),
      "size_histogram": histogram([min(c.result.stored_size) for c in kept], SIZE_BINS),
      "aspect_histogram": histogram(aspects, ASPECT_BINS),
      "median_aspect": sorted(aspects)[len(aspects) // 2],
      "suggested_resolution": suggest_resolution(aspects),
  }


def _warnings(dataset: dict, classes: dict, attribute_features: list) -> list[str]:
  """What in the result is probably not what the user meant."""
  if len(classes) != 1 or not dataset.get("labels_csv") or not attribute_features:
    return []
  return [f"Every kept image is of one class ({next(iter(classes))!r}), though the labels CSV "
          f"has the columns {', '.join(attribute_features)}: a model trained on this dataset "
          "has no class to condition on. If one of them is the product's category, prepare "
          "again with --label_column COLUMN (the others stay attributes)."]


def _table(header, rows) -> list:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"
            for row in rows]
  return lines


def _listed(title, header, rows) -> list:
  if not rows:
    return []
  lines = ["", f"## {title} ({len(rows)})", ""] + _table(header, rows[:_MAX_LISTED])
  if len(rows) > _MAX_LISTED:
    lines.append(f"\n... and {len(rows) - _MAX_LISTED} more in report.json.")
  return lines


def report_markdown(report: dict) -> str:
  counts = report["counts"]
  height, width = report["suggested_resolution"]
  lines = [
      f"# {report['name']} {report['version']}: prepared from {report['source']}", "",
      f"{counts['kept']} images kept of {counts['image_files']} image files: "
      f"{counts['skipped']} skipped, {counts['duplicates']} duplicates removed; "
      f"{counts['not_images']} other files ignored.", "",
      f"Train on it with `--config.data.name={report['name']} "
      f"--config.data.data_dir={report['data_dir']}`. The median aspect ratio (width / height) "
      f"is {report['median_aspect']:.2f}: `--config.data.resolution=\"({height}, {width})\"` "
      "keeps it at about 64 pixels.", ""]
  lines += [f"**Warning:** {warning}\n" for warning in report.get("warnings", [])]
  lines += ["## Images per class", ""]
  lines += _table(["class", "images", "borders trimmed"],
                  [(name, count, report["trimmed_per_class"].get(name, 0))
                   for name, count in sorted(report["classes"].items())])
  for column, values in report["attributes"].items():
    lines += ["", f"## Attribute `{column}`", ""]
    lines += _table(["value", "images"], sorted(values.items()))
  lines += _listed("Skipped files", ["file", "problem", "reason"],
                   [(s["file"], s["problem"], s["reason"]) for s in report["skipped"]])
  lines += _listed("Duplicates removed", ["file", "copy of", "kind", "note"],
                   [(d["file"], d["duplicate_of"], d["kind"], d.get("note", ""))
                    for d in report["duplicates"]])
  lines += _listed("Listed in the labels CSV but not found", ["file"],
                   [(f,) for f in report["missing_files"]])
  lines += _listed("Other files ignored (not .jpg/.jpeg/.png/.webp)", ["file"],
                   [(f,) for f in report["not_images"]])
  lines += _listed("Converted to RGB", ["file", "conversion"],
                   [(c["file"], c["conversion"]) for c in report["converted"]])
  lines += ["", "## Changes", "",
            f"- borders trimmed: {report['trimmed']} images",
            f"- shrunk to --max_size={report['options']['max_size']}: "
            f"{report['downscaled']} images",
            "", "## Shorter side of the stored images (px)", ""]
  lines += _table(["pixels", "images"], report["size_histogram"].items())
  lines += ["", "## Aspect ratio (width / height)", ""]
  lines += _table(["aspect", "images"], report["aspect_histogram"].items())
  return "\n".join(lines) + "\n"
