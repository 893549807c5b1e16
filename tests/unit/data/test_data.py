"""Dataset resolution (offline Fashion-MNIST, clear errors) and the input pipeline."""

import gzip
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import IDX_DIR, ROOT

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.data import pipeline, sources
from pgen.errors import ConfigError


def _config(**data):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.download = False
  for key, value in data.items():
    config.data[key] = value
  return config


def test_offline_preparation_matches_the_idx_files(fmnist_data_dir):
  builder = tfds.builder("fashion_mnist", data_dir=fmnist_data_dir)
  assert builder.info.splits["train"].num_examples == 60_000
  assert builder.info.splits["test"].num_examples == 10_000
  with gzip.open(os.path.join(IDX_DIR, "t10k-labels-idx1-ubyte.gz")) as f:
    labels = np.frombuffer(f.read()[8:], np.uint8)
  with gzip.open(os.path.join(IDX_DIR, "t10k-images-idx3-ubyte.gz")) as f:
    images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28, 1)
  # TFDS stores examples in a hashed order; look each one up by its content.
  by_label = {}
  for example in tfds.as_numpy(builder.as_dataset(split="test[:50]")):
    by_label.setdefault(int(example["label"]), []).append(example["image"])
  matches = sum(
      any(np.array_equal(img, candidate) for candidate in images[labels == label])
      for label, imgs in by_label.items() for img in imgs)
  assert matches == 50
  assert sorted(np.bincount(labels)) == [1000] * 10


def test_corrupt_local_file_is_rejected_with_its_name(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  for name in sources.FASHION_MNIST_FILES:
    with gzip.open(manual / f"{name}.gz", "wb") as f:
      f.write(b"\0" * 100)
  with pytest.raises(sources.DatasetError, match="is not the original Fashion-MNIST file"):
    sources.get_builder(_config(manual_dir=str(manual), data_dir=str(tmp_path / "tfds")).data)


def test_missing_offline_files_say_which_and_where(tmp_path):
  manual = tmp_path / "empty"
  manual.mkdir()
  with pytest.raises(sources.DatasetError) as error:
    sources.get_builder(_config(manual_dir=str(manual), data_dir=str(tmp_path / "tfds")).data)
  message = str(error.value)
  assert "train-images-idx3-ubyte.gz" in message and str(manual) in message
  assert "apt-get install dataset-fashion-mnist" in message


def test_some_files_missing_names_them(tmp_path):
  manual = tmp_path / "partial"
  manual.mkdir()
  os.symlink(os.path.join(IDX_DIR, "train-labels-idx1-ubyte.gz"),
             manual / "train-labels-idx1-ubyte.gz")
  with pytest.raises(sources.DatasetError, match="t10k-images-idx3-ubyte.*missing"):
    sources.get_builder(_config(manual_dir=str(manual), data_dir=str(tmp_path / "tfds")).data)


def test_unknown_dataset_name_suggests_the_close_one_and_prepare(tmp_path):
  with pytest.raises(sources.DatasetError,
                     match="not a TFDS dataset.*fashion_mnist.*python -m pgen prepare"):
    sources.get_builder(_config(name="fashion_mnst", data_dir=str(tmp_path)).data)


def test_batches_are_padded_uint8_and_sharded(smoke_config):
  builder = sources.get_builder(smoke_config.data)
  mesh = sharding.make_mesh()
  batch = next(pipeline.train_batches(builder, smoke_config, mesh, start_step=0))
  image = np.asarray(batch["image"])
  assert image.shape == (16, 32, 32, 1) and image.dtype == np.uint8  # Scaled on the device.
  assert image.max() > 191
  # 28 -> 32 is padding of 2 background pixels (0) on every side, never a resize.
  border = np.concatenate([image[:, :2].ravel(), image[:, -2:].ravel(),
                           image[:, :, :2].ravel(), image[:, :, -2:].ravel()])
  assert np.all(border == 0)
  assert batch["label"].dtype == np.int32
  assert batch["image"].sharding.spec == jax.sharding.PartitionSpec("data")


def test_resumed_pipeline_continues_the_same_order_across_epochs(smoke_config):
  smoke_config.data.split = "train[:40]"  # Two batches of 16 per epoch.
  builder = sources.get_builder(smoke_config.data)
  assert pipeline.input_info(builder, smoke_config).steps_per_epoch == 2
  straight = pipeline.local_dataset(builder, smoke_config, start_step=0).as_numpy_iterator()
  order = [next(straight)["image"] for _ in range(7)]
  for start in (1, 2, 5):
    resumed = pipeline.local_dataset(builder, smoke_config, start_step=start).as_numpy_iterator()
    for expected in order[start:]:
      np.testing.assert_array_equal(next(resumed)["image"], expected)
  assert not np.array_equal(order[0], order[2])  # Each epoch is shuffled anew.


def test_images_larger_than_the_canvas_shrink_to_fit(smoke_config):
  smoke_config.data.resolution = 16
  builder = sources.get_builder(smoke_config.data)
  assert pipeline.input_info(builder, smoke_config).image_shape == (16, 16, 1)
  image = next(pipeline.local_dataset(builder, smoke_config, start_step=0).as_numpy_iterator())
  assert image["image"].shape == (16, 16, 16, 1)
  assert image["image"][:, 4:12, 4:12].max() > 191  # Shrunk, not cropped away.


def test_cache_modes_give_identical_batches(smoke_config):
  smoke_config.data.split = "train[:48]"
  builder = sources.get_builder(smoke_config.data)
  assert pipeline.input_info(builder, smoke_config).cache == "decoded"  # 48 tiny images fit.
  batches = {}
  for mode in ("decoded", "encoded", "none"):
    smoke_config.data.cache = mode
    ds = pipeline.local_dataset(builder, smoke_config, start_step=2).as_numpy_iterator()
    batches[mode] = [next(ds) for _ in range(4)]
  for mode in ("encoded", "none"):
    for a, b in zip(batches["decoded"], batches[mode]):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])


def test_auto_cache_falls_back_to_encoded_records_for_large_data(smoke_config):
  smoke_config.data.cache_max_mb = 40  # Decoded 32x32 images: 59 MiB; PNG records: 31 MiB.
  builder = sources.get_builder(smoke_config.data)
  assert pipeline.input_info(builder, smoke_config).cache == "encoded"
  smoke_config.data.cache_max_mb = 20
  assert pipeline.input_info(builder, smoke_config).cache == "none"


@pytest.mark.parametrize("key, value, message", [
    ("resize", "squash", "data.resize='squash' is unknown"),
    ("resize_filter", "cubic", "data.resize_filter='cubic' is unknown.*lanczos3"),
    ("resolution", (32, 32, 3), r"data.resolution=\(32, 32, 3\) must be a side"),
    ("pad_value", 300, r"data.pad_value=300 must be in \[0, 255\]"),
    ("cache", "disk", "data.cache='disk' is unknown"),
])
def test_bad_data_options_are_named_when_the_config_loads(smoke_config, key, value, message):
  smoke_config.data[key] = value
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(smoke_config)


def test_a_label_key_the_dataset_lacks_is_named_with_the_dataset_s_labels(smoke_config):
  smoke_config.data.label_key = "colour"
  builder = sources.get_builder(smoke_config.data)
  with pytest.raises(sources.DatasetError,
                     match=r"data.label_key='colour' is not a class label.*\['label'\]"):
    pipeline.input_info(builder, smoke_config)


def test_empty_label_key_trains_without_labels(smoke_config):
  smoke_config.data.label_key = ""
  builder = sources.get_builder(smoke_config.data)
  info = pipeline.input_info(builder, smoke_config)
  assert info.num_classes == 0 and info.class_names == ()
  batch = next(pipeline.local_dataset(builder, smoke_config, start_step=0).as_numpy_iterator())
  assert not batch["label"].any()


def _resize(image, size, **kwargs):
  options = dict(mode="pad", method="bilinear", pad_value=255, upscale=False)
  options.update(kwargs)
  return pipeline.resize_image(tf.constant(image), size, **options).numpy()


def test_resize_pad_fits_inside_and_fills_with_the_pad_value():
  image = np.zeros((40, 20, 3), np.uint8)  # Tall: 40 high, 20 wide.
  out = _resize(image, (16, 12))  # Scale 0.4: 16x8, then 2 columns of white each side.
  assert out.shape == (16, 12, 3)
  assert np.all(out[:, :2] == 255) and np.all(out[:, -2:] == 255) and np.all(out[:, 2:10] == 0)
  small = _resize(np.zeros((8, 4, 1), np.uint8), (16, 12))
  assert np.all(small[4:12, 4:8] == 0) and small.sum() == (16 * 12 - 32) * 255  # Not enlarged.
  enlarged = _resize(np.zeros((8, 4, 1), np.uint8), (16, 12), upscale=True)  # Scale 2: 16x8.
  assert np.all(enlarged[:, 2:10] == 0) and np.all(enlarged[:, [0, 1, 10, 11]] == 255)


def test_resize_crop_fills_and_cuts_evenly_and_stretch_ignores_aspect():
  image = np.zeros((40, 20, 1), np.uint8)
  image[:4], image[-4:] = 255, 255  # White bands at the top and bottom: cropped away.
  crop = _resize(image, (16, 12), mode="crop", method="nearest")  # Scale 0.6: 24x12, rows 4..20.
  assert crop.shape == (16, 12, 1) and not crop.any()
  stretch = _resize(image, (16, 12), mode="stretch", method="nearest")
  assert stretch.shape == (16, 12, 1) and stretch[0].all() and stretch[-1].all()


def test_resize_filter_is_applied_with_antialiasing():
  stripes = np.zeros((64, 64, 1), np.uint8)
  stripes[:, ::2] = 255  # One-pixel stripes: antialiased shrinking averages them to grey.
  for method in ("bilinear", "area", "lanczos3"):
    out = _resize(stripes, (16, 16), method=method, mode="stretch")
    assert 100 < out.mean() < 155 and out.std() < 20, method


def test_processes_read_disjoint_rows_that_make_up_the_single_process_batch(
    smoke_config, monkeypatch):
  builder = sources.get_builder(smoke_config.data)
  single = pipeline.local_dataset(builder, smoke_config, start_step=4).as_numpy_iterator()
  expected = [next(single) for _ in range(3)]
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  per_process = []
  for index in (0, 1):
    monkeypatch.setattr(jax, "process_index", lambda index=index: index)
    ds = pipeline.local_dataset(builder, smoke_config, start_step=4).as_numpy_iterator()
    per_process.append([next(ds) for _ in range(3)])
  for step in range(3):
    first, second = per_process[0][step], per_process[1][step]
    assert first["image"].shape[0] == second["image"].shape[0] == 8
    for key in ("image", "label"):
      np.testing.assert_array_equal(np.concatenate([first[key], second[key]]),
                                    expected[step][key])


@pytest.mark.slow  # Two full preparations; the session's fmnist_data_dir waits on the same lock.
def test_processes_started_together_prepare_fashion_mnist_once(tmp_path):
  """Two processes find Fashion-MNIST unprepared in one data_dir at once (a sweep's parallel
  points on a fresh machine): one prepares it, the other waits and reads it; their logs
  hold no TFDS progress bars or prints."""
  code = ("import sys; from pgen.configs import fashion_mnist_dcgan; from pgen.data import sources; "
          "config = fashion_mnist_dcgan.get_config(); config.data.data_dir = sys.argv[1]; "
          "print(sources.get_builder(config.data).info.splits['train'].num_examples)")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
  for process in processes:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert out.split() == ["60000"]
    assert "\x1b" not in err and "Downloading and preparing" not in out + err
