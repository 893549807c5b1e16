"""The jitted train step: device-count invariance, a single compilation, loss signs."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import fashion_mnist_dcgan
from pgen import sharding
from pgen.train import build, compile_train_step

HERE = os.path.dirname(os.path.abspath(__file__))


def _run_steps(tmp_path, devices):
  out = tmp_path / f"state_{devices}.npz"
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, os.path.join(HERE, "step_runner.py"), str(out)], env=env,
                 check=True, capture_output=True, timeout=300)
  return np.load(out)


def test_one_and_eight_devices_give_the_same_state(tmp_path):
  one, eight = _run_steps(tmp_path, 1), _run_steps(tmp_path, 8)
  assert int(one["device_count"]) == 1 and int(eight["device_count"]) == 8
  names = [n for n in one.files if n != "device_count"]
  assert any("g_batch_stats" in n for n in names) and any("ema_g_params" in n for n in names)
  for name in names:
    np.testing.assert_allclose(one[name], eight[name], rtol=1e-4, atol=1e-5, err_msg=name)
  assert int(eight[".step"]) == 3


def test_step_compiles_once_and_updates_everything():
  config = fashion_mnist_dcgan.get_config("smoke")
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  step = compile_train_step(config, setup, mesh)
  state = setup.init()
  before = jax.tree.map(np.asarray, state)
  for i in range(3):
    batch = {"image": jnp.full((config.batch_size, 32, 32, 1), 0.1 * i, jnp.float32),
             "label": jnp.zeros((config.batch_size,), jnp.int32)}
    state, _ = step(state, batch)
  assert step._cache_size() == 1
  assert int(state.step) == 3
  for field in ("g_params", "d_params", "ema_g_params", "g_batch_stats"):
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), getattr(before, field),
                           getattr(state, field))
    assert all(jax.tree.leaves(changed)), field


def test_batch_not_divisible_by_devices_is_a_clear_error():
  code = ("import jax; from pgen import sharding; "
          "sharding.check_batch_size(12, sharding.make_mesh())")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(HERE), timeout=120)
  assert result.returncode != 0
  assert "batch_size=12 does not divide over the 8 devices" in result.stderr
  assert "multiple of 8, e.g. 8 or 16" in result.stderr


@pytest.mark.parametrize("loss", ["hinge", "wasserstein", "least_squares"])
def test_every_loss_runs_in_the_step(loss):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.loss.name = loss
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  step = compile_train_step(config, setup, mesh)
  batch = {"image": jnp.zeros((config.batch_size, 32, 32, 1), jnp.float32),
           "label": jnp.zeros((config.batch_size,), jnp.int32)}
  state, metrics = step(setup.init(), batch)
  assert int(state.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
