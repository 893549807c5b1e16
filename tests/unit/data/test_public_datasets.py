"""The public dataset configs, through the real get_builder and pipeline on mocked TFDS data.

There is no internet here: `tfds.testing.mock_data` stands in for the download and yields
random examples of each dataset's real features (random sizes where the real images vary).
"""

import importlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pgen.configs import fashion_mnist_dcgan
from pgen.data import options, pipeline, sources


@pytest.fixture(autouse=True)
def ordered_mock_boxes(monkeypatch):
  """mock_data draws the corners of cars196's boxes independently, so min > max for most of
  them and BBoxFeature rejects the example; order each pair as a real box has it."""
  original = tfds.features.BBoxFeature.encode_example

  def ordered(self, bbox):
    if isinstance(bbox, np.ndarray):
      (ymin, ymax), (xmin, xmax) = sorted(bbox[[0, 2]]), sorted(bbox[[1, 3]])
      bbox = np.array([ymin, xmin, ymax, xmax], bbox.dtype)
    return original(self, bbox)

  monkeypatch.setattr(tfds.features.BBoxFeature, "encode_example", ordered)


def _flat_keys(config, prefix=""):
  keys = set()
  for key, value in config.items():
    keys |= _flat_keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
  return keys


@pytest.mark.parametrize("module, shape, num_classes, label_range", [
    ("stanford_online_products_dcgan", (32, 32, 3), 12, 12),  # super_class_id, not class_id.
    ("cars196_dcgan", (24, 32, 3), 196, 196),
    ("cifar10_dcgan", (32, 32, 3), 10, 10),
])
def test_public_config_reads_its_dataset(module, shape, num_classes, label_range, tmp_path):
  config = importlib.import_module(f"pgen.configs.{module}").get_config("smoke")
  config.data.data_dir = str(tmp_path)
  assert _flat_keys(config) == _flat_keys(fashion_mnist_dcgan.get_config("smoke"))
  with tfds.testing.mock_data(num_examples=48):
    builder = sources.get_builder(config.data)
    info = pipeline.input_info(builder, config)
    assert info.image_shape == shape and info.num_classes == num_classes
    assert info.num_examples == 48 and info.steps_per_epoch == 3 and info.cache == "decoded"
    batches = pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator()
    batch = next(batches)
  assert batch["image"].shape == (config.batch_size, *shape)
  assert batch["image"].dtype == np.uint8
  assert batch["label"].min() >= 0 and batch["label"].max() < label_range


def test_full_size_configs_name_their_datasets_and_shapes():
  expected = {"stanford_online_products_dcgan": ("stanford_online_products", 64, "super_class_id"),
              "cars196_dcgan": ("cars196", (48, 64), "label"),
              "cifar10_dcgan": ("cifar10", 32, "label"),
              "folder_dcgan": ("my_catalog", (64, 48), "label")}
  for module, (name, resolution, label_key) in expected.items():
    config = importlib.import_module(f"pgen.configs.{module}").get_config()
    assert (config.data.name, config.data.resolution, config.data.label_key) == (
        name, resolution, label_key)
    assert _flat_keys(config) == _flat_keys(fashion_mnist_dcgan.get_config())
    assert config.data.resize in options.RESIZE_MODES
    assert config.data.resize_filter in options.RESIZE_FILTERS


def test_mock_images_of_varying_size_are_resized_per_image(tmp_path):
  config = importlib.import_module("pgen.configs.stanford_online_products_dcgan").get_config("smoke")
  config.data.data_dir = str(tmp_path)
  config.data.resize = "crop"
  with tfds.testing.mock_data(num_examples=32):
    builder = sources.get_builder(config.data)
    sizes = {ex["image"].shape for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
    batch = next(pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator())
  assert len(sizes) > 5  # The mock draws sizes at random, like real catalog photos.
  assert batch["image"].shape == (16, 32, 32, 3)
  assert np.all(batch["image"].std(axis=(1, 2, 3)) > 12)  # Filled, no padding.
