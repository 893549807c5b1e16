"""Class-conditional training: labels flow from the dataset, generate --class, and the
shipped classifier recognizes the requested class in samples of a short real run."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from pgen.evaluation import classifier
from pgen.generation import generators
from pgen.generation.generate import generate
from pgen.training.loop import train_and_evaluate


def _acgan_run(data_dir, workdir, steps: int, width: int, variant: str = "") -> str:
  """An AC-GAN conditional DCGAN trained on the real Fashion-MNIST (AC-GAN learns the classes
  fastest; the projection SNGAN config needs minutes, see bench/QUALITY.md)."""
  from pgen.configs import fashion_mnist_dcgan
  config = fashion_mnist_dcgan.get_config(variant)
  config.data.data_dir = data_dir
  config.data.download = False
  config.model.conditioning = "acgan"
  config.model.g_width = width
  config.model.d_width = width
  config.total_steps = steps
  config.eval.every_steps = 0
  config.log_every_steps = 100
  config.sample_every_steps = steps
  config.checkpoint_every_steps = steps
  config.ema.half_life_images = 5_000
  train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="module")
def conditional_run(fmnist_data_dir, tmp_path_factory):
  """A few steps: enough for grids per class and --class, not for recognizable classes."""
  return _acgan_run(fmnist_data_dir, str(tmp_path_factory.mktemp("conditional")), 4, 8, "smoke")


def _class_names(workdir):
  with open(os.path.join(workdir, "data_info.json")) as f:
    return json.load(f)["class_names"]


@pytest.mark.slow
def test_classifier_recognizes_the_requested_class(fmnist_data_dir, tmp_path):
  run = _acgan_run(fmnist_data_dir, str(tmp_path / "run"), 1200, 32)
  names = _class_names(run)
  assert names[8] == "Bag"
  generator = generators.from_checkpoint(run)
  labels = np.arange(500, dtype=np.int32) % len(names)
  images = generators.sample(generator, 500, labels=labels)
  assert generator.step == 1200
  _, logits = classifier.classify(images)
  predicted = logits.argmax(axis=1)
  per_class = [np.mean(predicted[labels == c] == c) for c in range(len(names))]
  # A 1200-step run already puts the asked-for class in most samples (chance: 10%).
  assert np.mean(predicted == labels) > 0.6, dict(zip(names, per_class))


def test_generate_writes_one_grid_per_class_and_honours_class(conditional_run, tmp_path):
  paths = generate(conditional_run, num=9, out=str(tmp_path / "grid.png"))
  assert [os.path.basename(p) for p in paths] == [
      f"grid_{n.replace('/', '_').replace(' ', '_')}.png" for n in _class_names(conditional_run)]
  assert Image.open(paths[0]).size == Image.open(paths[-1]).size

  by_name = np.load(generate(conditional_run, num=12, out=str(tmp_path / "bag.npz"),
                             class_name="Bag")[0])
  by_index = np.load(generate(conditional_run, num=12, out=str(tmp_path / "8.npz"),
                              class_name="8")[0])
  assert np.all(by_name["labels"] == 8) and by_name["images"].shape == (12, 32, 32, 1)
  np.testing.assert_array_equal(by_name["images"], by_index["images"])

  with pytest.raises(ValueError, match="^class=Hat is not a class of this run"):
    generate(conditional_run, num=4, out=str(tmp_path / "x.png"), class_name="Hat")


def test_class_of_an_unconditional_run_is_a_clear_error(smoke_run, tmp_path):
  with pytest.raises(ValueError, match="^class needs a class-conditional run"):
    generate(smoke_run, num=4, out=str(tmp_path / "x.png"), class_name="Bag")
