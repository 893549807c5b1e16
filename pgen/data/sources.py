"""Finds, prepares and returns the TFDS builder for `config.data.name`.

    builder = get_builder(config.data)     # prepared, ready for builder.as_dataset(...)

A name is a registered TFDS dataset (downloaded and prepared on first use), or a dataset
that `python -m pgen prepare` wrote into `data.data_dir` ("NAME" is its newest version,
"NAME:1.0.0" a fixed one).

Fashion-MNIST prepares without internet from its four original IDX files (the Debian
package `dataset-fashion-mnist` installs them in /usr/share/datasets/fashion-mnist;
`data.manual_dir` points elsewhere). They are checked by the size and SHA-256 of their
decompressed bytes, so a `.gz` wrapper other than the one TFDS registered is fine. The
result is the same `fashion_mnist` TFDS dataset the download path produces.
"""

import contextlib
import difflib
import fcntl
import gzip
import hashlib
import os
import shutil

import ml_collections
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging
from tensorflow_datasets.image_classification import mnist

from pgen.data import tfds_writer
from pgen.errors import PgenError

try:  # The input pipeline must not take accelerator memory: TensorFlow gets the CPU only.
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TensorFlow was already initialized by the caller: leave it as is.
  pass


class DatasetError(PgenError, ValueError):
  """The dataset named in the config cannot be found, prepared or read."""


# Decompressed size and SHA-256 of the original Fashion-MNIST files.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": (
        47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (
        60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (
        7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (
        10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


def _missing_files_message(manual_dir: str) -> str:
  names = ", ".join(f"{n}.gz" for n in FASHION_MNIST_FILES)
  return (f"Put the four original Fashion-MNIST files ({names}; gzipped or not) in "
          f"{manual_dir} (`apt-get install dataset-fashion-mnist` puts them in "
          "/usr/share/datasets/fashion-mnist), or point --config.data.manual_dir at them.")


def _find_idx_file(manual_dir: str, name: str):
  for candidate in (name, name + ".gz"):
    path = os.path.join(manual_dir, candidate)
    if os.path.isfile(path):
      return path
  return None


def _decompress_and_verify(src: str, dst: str, name: str) -> None:
  """Copies `src` (gzipped or raw) to `dst` as raw bytes, checking size and SHA-256."""
  expected_size, expected_sha = FASHION_MNIST_FILES[name]
  opener = gzip.open if src.endswith(".gz") else open
  digest, size = hashlib.sha256(), 0
  tmp = dst + ".tmp"
  try:
    with opener(src, "rb") as fin, open(tmp, "wb") as fout:
      for chunk in iter(lambda: fin.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
        fout.write(chunk)
  except (OSError, EOFError) as e:
    raise DatasetError(f"Cannot read {src}: {e}. Replace it with the original file.") from e
  if size != expected_size or digest.hexdigest() != expected_sha:
    os.remove(tmp)
    raise DatasetError(
        f"{src} is not the original Fashion-MNIST file {name}: its content has {size} bytes "
        f"and SHA-256 {digest.hexdigest()}, expected {expected_size} bytes and SHA-256 "
        f"{expected_sha}. Replace it with the original file.")
  os.replace(tmp, dst)


class _LocalFiles:
  """Stands in for the download manager: maps each requested URL to a verified local file."""

  def __init__(self, files):
    self._files = files

  def download_and_extract(self, urls):
    return {key: self._files[os.path.basename(url).removesuffix(".gz")]
            for key, url in urls.items()}


class _OfflineFashionMNIST(mnist.FashionMNIST, skip_registration=True):
  """TFDS's own Fashion-MNIST builder, fed from verified local files instead of the web."""
  name = "fashion_mnist"

  def __init__(self, *, local_files, **kwargs):
    super().__init__(**kwargs)
    self._local_files = local_files

  def _split_generators(self, dl_manager):
    del dl_manager
    return super()._split_generators(_LocalFiles(self._local_files))


def prepare_fashion_mnist_offline(manual_dir: str, data_dir) -> None:
  """Builds the `fashion_mnist` TFDS dataset in `data_dir` from the IDX files in `manual_dir`."""
  found = {name: _find_idx_file(manual_dir, name) for name in FASHION_MNIST_FILES}
  missing = [name for name, path in found.items() if path is None]
  if missing:
    raise DatasetError(
        f"Fashion-MNIST is not prepared and {', '.join(missing)} (.gz or raw) are missing from "
        f"{manual_dir}. {_missing_files_message(manual_dir)}")
  builder = tfds.builder("fashion_mnist", data_dir=data_dir)  # Resolves the default data_dir.
  staging = os.path.join(builder.data_dir_root, "downloads", "pgen_fashion_mnist")
  os.makedirs(staging, exist_ok=True)
  local = {}
  for name, src in found.items():
    local[name] = os.path.join(staging, name)
    _decompress_and_verify(src, local[name], name)
  logging.info("Preparing fashion_mnist offline from %s into %s", manual_dir,
               builder.data_dir_root)
  with tfds_writer.quiet_build():
    _OfflineFashionMNIST(local_files=local, data_dir=data_dir).download_and_prepare()
  shutil.rmtree(staging)


def _data_dir(data: ml_collections.ConfigDict) -> str:
  return os.path.expanduser(data.data_dir or tfds.core.constants.DATA_DIR)


def _prepared_folder_dataset(data: ml_collections.ConfigDict):
  """The read-only builder of a dataset `prepare` wrote, or None when there is none."""
  base = data.name.split(":")[0]
  versions = tfds_writer.prepared_versions(_data_dir(data), base)
  if not versions:
    return None
  try:
    return tfds.builder(data.name, data_dir=_data_dir(data))
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetError(f"data.name={data.name!r}: {_data_dir(data)}/{base} has the versions "
                       f"{versions} only; name one of them ({base}:{versions[-1]}) or just "
                       f"{base} for the newest.") from e


def _check_name(data: ml_collections.ConfigDict) -> None:
  name = data.name.split(":")[0]
  known = tfds.list_builders(with_community_datasets=False)
  if name not in known:
    prepared = tfds_writer.prepared_names(_data_dir(data))
    close = difflib.get_close_matches(name, known + prepared, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DatasetError(
        f"data.name={name!r} is not a TFDS dataset, nor one prepared in {_data_dir(data)} "
        f"(prepared there: {prepared or 'none'}).{hint} Use a TFDS name such as "
        "'fashion_mnist', 'cars196' or 'stanford_online_products', or make a dataset from a "
        "folder of images with `python -m pgen prepare --src DIR --name NAME --out DATA_DIR` "
        "and train with --config.data.name=NAME --config.data.data_dir=DATA_DIR.")


def get_builder(data: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The prepared builder for `data.name`: already on disk, built offline, or downloaded."""
  prepared = _prepared_folder_dataset(data)
  if prepared is not None:
    return prepared
  _check_name(data)
  builder = tfds.builder(data.name, data_dir=data.data_dir)
  if builder.is_prepared():
    return builder
  with _preparation_lock(builder):
    builder = tfds.builder(data.name, data_dir=data.data_dir)
    if builder.is_prepared():  # Another process prepared it while this one waited.
      return builder
    return _prepare(builder, data)


@contextlib.contextmanager
def _preparation_lock(builder):
  """One process at a time prepares a dataset in a data_dir: runs started together (a
  sweep's parallel points, a job's processes on one machine) would otherwise write the same
  staging files at once. Waiters find it prepared."""
  os.makedirs(builder.data_dir_root, exist_ok=True)
  path = os.path.join(builder.data_dir_root, f".pgen_prepare_{builder.name}.lock")
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _prepare(builder, data: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Builds `data.name` offline (Fashion-MNIST from its IDX files) or downloads it."""
  if data.name == "fashion_mnist" and any(
      _find_idx_file(data.manual_dir, n) for n in FASHION_MNIST_FILES):
    prepare_fashion_mnist_offline(data.manual_dir, data.data_dir)
    return tfds.builder(data.name, data_dir=data.data_dir)
  offline_hint = (_missing_files_message(data.manual_dir) if data.name == "fashion_mnist"
                  else "Prepare it where there is internet and copy the TFDS data_dir here.")
  if not data.download:
    raise DatasetError(
        f"{data.name} is not prepared in {builder.data_dir_root} and data.download is off. "
        f"{offline_hint}")
  logging.info("Downloading and preparing %s into %s", data.name, builder.data_dir_root)
  try:
    builder.download_and_prepare()
  except Exception as e:  # The download path raises many types (DNS, HTTP, checksum).
    raise DatasetError(
        f"Downloading {data.name} failed ({type(e).__name__}: {e}). {offline_hint}") from e
  return builder
