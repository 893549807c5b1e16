"""Dataset resolution (offline Fashion-MNIST, clear errors) and the input pipeline."""

import gzip
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import IDX_DIR
from configs import fashion_mnist_dcgan
from pgen import sharding
from pgen.data import pipeline, sources


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


def test_unknown_dataset_name_suggests_the_close_one():
  with pytest.raises(sources.DatasetError, match="not a TFDS dataset.*fashion_mnist"):
    sources.get_builder(_config(name="fashion_mnst").data)


def test_batches_are_padded_scaled_and_sharded(smoke_config):
  builder = sources.get_builder(smoke_config.data)
  mesh = sharding.make_mesh()
  batch = next(pipeline.train_batches(builder, smoke_config, mesh, start_step=0))
  image = np.asarray(batch["image"])
  assert image.shape == (16, 32, 32, 1) and image.dtype == np.float32
  assert image.min() >= -1.0 and image.max() <= 1.0 and image.max() > 0.5
  # 28 -> 32 is padding of 2 background pixels (0 -> -1.0) on every side, never a resize.
  border = np.concatenate([image[:, :2].ravel(), image[:, -2:].ravel(),
                           image[:, :, :2].ravel(), image[:, :, -2:].ravel()])
  assert np.all(border == -1.0)
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


def test_image_larger_than_resolution_is_an_error(smoke_config):
  smoke_config.data.resolution = 16
  builder = sources.get_builder(smoke_config.data)
  with pytest.raises(ValueError, match="28x28, larger than data.resolution=16"):
    pipeline.input_info(builder, smoke_config)


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
