"""Writes a prepared folder as a versioned TFDS dataset, with its manifest and reports, for
`python -m pgen prepare`; finds the versions written before.

    version = next_version(data_dir, "my_catalog", None)         # 1.0.0, then 1.1.0, ...
    builder = write_dataset(src, "my_catalog", version, data_dir, kept, attribute_features,
                            options, workers=8)
    write_records(builder.data_path, report, analysis.candidates, kept, duplicates)
    prepared_versions(data_dir, "my_catalog")                     # ["1.0.0", "1.1.0"]

Each run writes a new version directory `data_dir/NAME/VERSION/` that TFDS reads back as
it reads its own datasets (`tfds.builder("NAME:1.0.0", data_dir=...)`); manifest.json
there (every source file's SHA-256 and fate) marks it as written by `prepare`.
"""

import contextlib
import io
import json
import os
import re
import sys
import tempfile

import tensorflow_datasets as tfds

from pgen.data import images, report as report_lib
from pgen.data.scan import PrepareError, ordered_map

MANIFEST = "manifest.json"  # Marks a version directory as written by `prepare`.
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")


def check_name(name: str) -> None:
  """Refuses a name TFDS cannot hold or that would shadow one of its own datasets."""
  if not _NAME_PATTERN.match(name or ""):
    raise PrepareError(f"name={name!r} is not a valid TFDS name: use lower-case letters, "
                       "digits and underscores, starting with a letter (e.g. my_catalog).",
                       argument="name")
  if name in tfds.list_builders(with_community_datasets=False):
    raise PrepareError(f"name={name!r} is a TFDS dataset already; choose another name for "
                       "your own data (e.g. my_{name}).", argument="name")


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


def next_version(data_dir: str, name: str, version: str | None) -> str:
  """`version` checked, or the next minor version after the newest, so no run overwrites
  a dataset that a training run may be reading."""
  versions = existing_versions(data_dir, name)
  if version is None:
    if not versions:
      return "1.0.0"
    major, minor, _ = (int(p) for p in versions[-1].split("."))
    return f"{major}.{minor + 1}.0"
  if not _VERSION_PATTERN.match(version):
    raise PrepareError(f"version={version!r} must look like 1.2.0.", argument="version")
  if version in versions:
    raise PrepareError(f"{name} {version} already exists in {data_dir}; leave --version out to "
                       "write the next version, or delete "
                       f"{os.path.join(data_dir, name, version)}.")
  return version


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


@contextlib.contextmanager
def quiet_build():
  """Around a TFDS `download_and_prepare`: its progress bars only on a terminal (in a log
  file their redrawing is escape codes), and none of its prints ("Downloading and preparing
  dataset Unknown size ...", where it wrote the dataset): pgen says what it built."""
  if not sys.stderr.isatty():
    tfds.disable_progress_bar()
  with contextlib.redirect_stdout(io.StringIO()):
    yield


def write_dataset(src: str, name: str, version: str, data_dir: str, kept: list,
                  attribute_features: list, options: images.CleanOptions, workers: int):
  """Writes the kept candidates (analysed, deduplicated) as the TFDS dataset `name`
  `version`; returns its builder. The images are decoded again here, so that none is held
  in memory since they were analysed."""
  class_names = sorted({c.label for c in kept})
  attributes = {f: sorted({c.attributes[f] for c in kept}) for f in attribute_features}

  def generate():
    def encode(c):
      return c, images.clean_image(os.path.join(src, c.file), options, encode=True)

    for c, result in ordered_map(encode, kept, workers):
      if result.pixel_sha256 != c.result.pixel_sha256:
        raise PrepareError(f"{c.file} changed while `prepare` was running; run it again.")
      yield c.file, {"image": result.encoded, "label": c.label, "file_name": c.file,
                     **c.attributes}

  description = (f"Prepared by `python -m pgen prepare` from {os.path.abspath(src)} "
                 f"({len(kept)} images, {len(class_names)} classes).")
  builder = _builder(name, version, class_names, attributes, options.encoding, description,
                     generate, data_dir)
  with tempfile.TemporaryDirectory() as downloads, quiet_build():
    builder.download_and_prepare(
        download_dir=downloads,
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
  return builder


def write_records(path, report: dict, candidates: list, kept: list, duplicates: list) -> None:
  """report.json, report.md and manifest.json (every labelled source file and its fate) in
  the version directory `path`. `candidates`: every analysed candidate."""
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
