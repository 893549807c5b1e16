"""Shared fixtures: the real Fashion-MNIST prepared once from its IDX files, tiny configs."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import fashion_mnist_dcgan  # noqa: E402

IDX_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory):
  """Reference features are cached here for the session instead of in ~/.cache/pgen."""
  path = str(tmp_path_factory.mktemp("pgen_cache"))
  os.environ["PGEN_CACHE_DIR"] = path
  return path


@pytest.fixture(scope="session")
def fmnist_data_dir(tmp_path_factory):
  """A TFDS data_dir holding fashion_mnist, prepared offline from the Debian package's files."""
  if not os.path.isdir(IDX_DIR):
    pytest.fail(f"{IDX_DIR} is missing: run `apt-get install dataset-fashion-mnist` (.ci/run does).")
  from pgen.data import sources
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  config = fashion_mnist_dcgan.get_config()
  config.data.data_dir = data_dir
  config.data.download = False
  sources.get_builder(config.data)
  return data_dir


@pytest.fixture
def smoke_config(fmnist_data_dir):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.data_dir = fmnist_data_dir
  config.data.download = False
  return config
