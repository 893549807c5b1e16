"""The smoke config on `data.name="synthetic"`: batches made on the device, no dataset."""

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan


def synthetic_config(**overrides):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.name = "synthetic"
  config.data.resolution = (32, 24)
  for key, value in overrides.items():
    config[key] = value
  return config_lib.resolve(config)
