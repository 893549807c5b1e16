"""A prepared folder dataset end to end: non-square training, exact mid-epoch resume, and
per-process shards that are disjoint and complete."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from pgen.configs import folder_dcgan
from pgen.data import folder, pipeline, sources
from pgen.generation.generate import generate
from pgen.training.loop import train_and_evaluate
from tests.helpers import product_photos

NUM_IMAGES = 36  # 3 classes x 12, four different sizes and aspects.


@pytest.fixture(scope="module")
def catalog_data_dir(tmp_path_factory):
  src = str(tmp_path_factory.mktemp("catalog_src"))
  assert product_photos.make_catalog(src) == NUM_IMAGES
  out = str(tmp_path_factory.mktemp("catalog_tfds"))
  report = folder.prepare(src, "tiny_catalog", out=out, workers=2)
  assert report["counts"]["kept"] == NUM_IMAGES
  return out


@pytest.fixture
def config(catalog_data_dir):
  config = folder_dcgan.get_config("smoke")  # (32, 24) images: 32 high, 24 wide.
  config.data.name = "tiny_catalog"
  config.data.data_dir = catalog_data_dir
  config.batch_size = 8  # 4 steps per epoch.
  return config


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


# A StyleGAN2 run of minutes; the fast suite keeps non-square networks
# (unit/models/test_stylegan2.py) and non-square folder data (unit/data/test_prepare.py).
@pytest.mark.slow
def test_non_square_run_trains_and_samples_at_the_catalog_aspect(config, tmp_path):
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(config, workdir)
  assert int(state.step) == config.total_steps
  with open(os.path.join(workdir, "data_info.json")) as f:
    info = json.load(f)
  assert info["image_shape"] == [32, 24, 3] and info["class_names"] == ["bags", "shoes", "tops"]
  with open(os.path.join(workdir, "config.json")) as f:
    recorded = json.load(f)
  assert (recorded["data"]["resize"], recorded["data"]["resize_filter"]) == ("pad", "bilinear")
  # model.conditioning="auto" on three categories: the run is conditional, and records it.
  assert recorded["model"]["conditioning"] == "projection"
  # 16 samples in a 4x4 grid of 32x24 tiles with 1-pixel borders, enlarged 2x.
  grid = Image.open(os.path.join(workdir, "samples", "step_00000006.png"))
  assert grid.size == (2 * (4 * 25 + 1), 2 * (4 * 33 + 1)) and grid.mode == "RGB"
  generate(workdir, num=5, out=str(tmp_path / "s.npz"), class_name="shoes")
  samples = np.load(tmp_path / "s.npz")
  assert samples["images"].shape == (5, 32, 24, 3) and list(samples["labels"]) == [1] * 5


def test_resume_mid_epoch_equals_straight_through(config, tmp_path):
  config.total_steps = 10  # 2.5 epochs.
  straight = train_and_evaluate(config, str(tmp_path / "straight"))
  resumed_dir = str(tmp_path / "resumed")
  first_part = config.copy_and_resolve_references()
  first_part.total_steps = 6  # Stops at step 2 of epoch 1.
  assert int(train_and_evaluate(first_part, resumed_dir).step) == 6
  resumed = train_and_evaluate(config, resumed_dir)
  assert int(resumed.step) == int(straight.step) == 10
  for a, b in zip(_leaves(straight), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)


def test_pipeline_resumed_anywhere_continues_the_same_batches(config):
  builder = sources.get_builder(config.data)
  straight = pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator()
  order = [next(straight) for _ in range(11)]
  assert order[0]["image"].shape == (8, 32, 24, 3)
  for start in (2, 5, 9):  # Mid-epoch in epochs 0, 1 and 2.
    resumed = pipeline.local_dataset(builder, config, start_step=start).as_numpy_iterator()
    for expected in order[start:]:
      batch = next(resumed)
      np.testing.assert_array_equal(batch["image"], expected["image"])
      np.testing.assert_array_equal(batch["label"], expected["label"])


def _rows(batches):
  return [row.tobytes() for batch in batches for row in batch["image"]]


def test_two_processes_read_disjoint_complete_shards(config, monkeypatch):
  builder = sources.get_builder(config.data)
  steps = pipeline.input_info(builder, config).steps_per_epoch
  single = pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator()
  epoch = [next(single) for _ in range(steps)]
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  shards = []
  for index in (0, 1):
    monkeypatch.setattr(jax, "process_index", lambda index=index: index)
    ds = pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator()
    shards.append([next(ds) for _ in range(steps)])
  first, second = _rows(shards[0]), _rows(shards[1])
  assert not set(first) & set(second)  # Disjoint.
  # Complete: together they are the single process's epoch, row for row, and an epoch
  # holds every image at most once (the last NUM_IMAGES % batch_size wait for the next).
  for step in range(steps):
    for key in ("image", "label"):
      np.testing.assert_array_equal(
          np.concatenate([shards[0][step][key], shards[1][step][key]]), epoch[step][key])
  assert len(set(_rows(epoch))) == steps * config.batch_size == NUM_IMAGES - NUM_IMAGES % 8


@pytest.mark.slow
def test_catalog_toolbox_config_trains_class_conditionally_on_a_folder(catalog_data_dir,
                                                                        tmp_path):
  from pgen.configs import catalog_resnet64
  config = catalog_resnet64.get_config("smoke")
  config.data.name = "tiny_catalog"
  config.data.data_dir = catalog_data_dir
  config.batch_size = 8
  config.augment.ada_interval = 1
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(config, workdir)
  assert int(state.step) == config.total_steps
  assert float(state.augment.probability) > 0  # ADA moved p off its start value 0.
  paths = generate(workdir, num=4, out=str(tmp_path / "grid.png"))
  assert [os.path.basename(p) for p in paths] == [
      "grid_bags.png", "grid_shoes.png", "grid_tops.png"]
  assert np.asarray(Image.open(paths[0])).shape[-1] == 3  # RGB
