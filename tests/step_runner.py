"""Runs a few train steps on fixed data and saves the state: a subprocess for device-count tests.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/step_runner.py OUT.npz
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import fashion_mnist_dcgan  # noqa: E402
from pgen import sharding  # noqa: E402
from pgen.train import build, compile_train_step  # noqa: E402

NUM_STEPS = 3


def main(out_path):
  config = fashion_mnist_dcgan.get_config("smoke")
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  step = compile_train_step(config, setup, mesh)
  state = setup.init()
  images = np.random.default_rng(0).uniform(-1, 1, (NUM_STEPS, config.batch_size, 32, 32, 1))
  for i in range(NUM_STEPS):
    batch = {"image": jax.device_put(images[i].astype(np.float32), sharding.batch_split(mesh)),
             "label": jax.device_put(np.zeros(config.batch_size, np.int32),
                                     sharding.batch_split(mesh))}
    state, metrics = step(state, batch)
  leaves = jax.tree_util.tree_flatten_with_path(state)[0]
  arrays = {jax.tree_util.keystr(path): sharding.to_host(x) for path, x in leaves}
  arrays.update({f"metric/{k}": sharding.to_host(v) for k, v in metrics.items()})
  np.savez(out_path, device_count=jax.device_count(), **arrays)


if __name__ == "__main__":
  main(sys.argv[1])
