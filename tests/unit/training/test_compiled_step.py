"""The jitted train step: device-count invariance, a single compilation, loss signs."""

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, TESTS_DIR

from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.gan.state import build
from pgen.training.compiled_step import compile_train_step
from tests.helpers import step_runner


def _run_steps(tmp_path, devices, variant, mesh_sizes, activations="relu", fast_compile=False):
  """Runs step_runner in a process with `devices` CPU devices, once on a mesh of each of
  `mesh_sizes`; returns their states. `fast_compile`: without most XLA optimizations (the
  meshes are compared with each other, so both compile alike)."""
  out = tmp_path / f"state_{variant}_{devices}"
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS=str(int(fast_compile)))
  args = [str(out), variant, ",".join(map(str, mesh_sizes)), activations]
  result = subprocess.run([sys.executable, os.path.join(TESTS_DIR, "helpers", "step_runner.py"), *args],
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  return [np.load(f"{out}_{size}.npz") for size in mesh_sizes]


def _assert_same_state(one, eight):
  """Equal within float tolerance."""
  assert int(one["device_count"]) == 1 and int(eight["device_count"]) == 8
  names = [n for n in one.files if n != "device_count"]
  assert any("g_batch_stats" in n for n in names) and any("ema_g_params" in n for n in names)
  for name in names:
    # Adam's moments are raw gradients, where sharded reductions' rounding shows most.
    rtol, atol = (1e-3, 2e-4) if "opt_state" in name else (1e-4, 1e-5)
    np.testing.assert_allclose(one[name], eight[name], rtol=rtol, atol=atol, err_msg=name)
  assert int(eight[".step"]) == step_runner.NUM_STEPS


def _assert_compiled_once_and_trained(run, variant):
  """Finite metrics, and every parameter (and EMA, batch and spectral-norm statistics, ADA
  probability) moved. (step_runner fails if the step is traced twice.)"""
  config = step_runner.configure(variant)
  metrics = {n: float(run[n]) for n in run.files if n.startswith("metric/")}
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  fields = ["g_params", "d_params", "ema_g_params", "g_batch_stats"]
  if config.model.d_spectral_norm:
    fields.append("d_batch_stats")  # Power-iteration vectors advance every D update.
  names = [n for n in run.files if n.split("[")[0].lstrip(".") in fields]
  assert names
  for name in names:
    if (name.startswith(".d_params") and name.endswith("['bias']")
        and config.loss.name in ("hinge", "wasserstein")):
      continue  # These losses' gradient for D's output bias is 0 when no hinge saturates.
    assert not np.array_equal(run[f"initial/{name}"], run[name]), f"{name} did not change"
  if config.augment.ada_target:
    # sign(D(real)) averages k/16 over a batch of 16, never the target 0.6: p moves.
    assert float(run[".augment.probability"]) != config.augment.probability


def test_one_and_eight_devices_give_the_same_state(tmp_path):
  """The default config on meshes of 1 and 8 devices (of one 8-device process)."""
  one, eight = _run_steps(tmp_path, 8, "default", [1, 8], fast_compile=True)
  _assert_same_state(one, eight)
  _assert_compiled_once_and_trained(eight, "default")


@pytest.mark.slow  # The fast suite lowers StyleGAN2's programs and trains and resumes it.
def test_stylegan2_compiles_once_per_program_and_gives_the_same_state_on_one_and_eight_devices(
    tmp_path):
  """StyleGAN2 with noise, style mixing, w_avg, R1 and path length as their own steps and
  ADA's pipeline adapting, on meshes of 1 and 8 devices (smooth activations, see
  step_runner.smooth): one compilation per program of the lazy cycle."""
  one, eight = _run_steps(tmp_path, 8, "stylegan2_ada", [1, 8], activations="smooth",
                          fast_compile=True)
  _assert_same_state(one, eight)
  _assert_compiled_once_and_trained(eight, "stylegan2_ada")
  assert float(eight["metric/path_length_penalty"]) > 0 and float(eight["metric/r1_penalty"]) > 0
  assert float(eight[".path_length_mean"]) > 0


@pytest.mark.slow
def test_a_one_device_process_and_an_eight_device_process_give_the_same_state(tmp_path):
  """The default config, in a 1-device and an 8-device process. With smooth activations:
  the two processes compile their programs apart, and a ReLU kink can turn their different
  rounding into a jump (seen on one machine: 8% in a G BatchNorm bias) that says nothing
  about the sharding (step_runner.smooth)."""
  [one], [eight] = (_run_steps(tmp_path, 1, "default", [1], activations="smooth"),
                    _run_steps(tmp_path, 8, "default", [8], activations="smooth"))
  _assert_same_state(one, eight)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["projection_r1_ada", "acgan_gp_resnet"])  # StyleGAN2: above.
def test_toolbox_compiles_once_and_gives_the_same_state_on_one_and_eight_devices(
    tmp_path, variant):
  """Every toolbox option trains, compiles once and is sharding-invariant (both meshes in
  one 8-device process). With smooth activations: a ReLU kink can turn rounding into a
  jump that says nothing about the sharding (step_runner.smooth)."""
  one, eight = _run_steps(tmp_path, 8, variant, [1, 8], activations="smooth")
  _assert_same_state(one, eight)
  _assert_compiled_once_and_trained(eight, variant)


def test_batch_not_divisible_by_devices_is_a_clear_error():
  code = ("import jax; from pgen.core import sharding; "
          "sharding.check_batch_size(12, sharding.make_mesh())")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
  assert result.returncode != 0
  assert "batch_size=12 does not divide over the 8 devices" in result.stderr
  assert "multiple of 8, e.g. 8 or 16" in result.stderr


@pytest.mark.usefixtures("fast_compile_test")
@pytest.mark.parametrize("loss", ["hinge", "wasserstein", "least_squares"])
def test_every_loss_runs_in_the_step(loss):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.loss.name = loss
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1))
  step = compile_train_step(config, setup, mesh)
  batch = {"image": jnp.zeros((config.batch_size, 32, 32, 1), jnp.uint8),
           "label": jnp.zeros((config.batch_size,), jnp.int32)}
  state, metrics = step(setup.init(), batch)
  assert int(state.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
