"""The accelerator path on CPU: synthetic batches made on the device, MFU, per-backend
compiler options, the install warning (the step's cost in a run's logs:
tests/integration/test_step_cost.py)."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from absl import logging
from conftest import ROOT

from pgen import config as config_lib
from pgen.core import compiler, sharding
from pgen.data import open_dataset
from pgen.training import performance
from tests.helpers.synthetic import synthetic_config


def test_synthetic_batches_are_uint8_sharded_and_a_function_of_seed_and_step():
  config = synthetic_config()
  dataset = open_dataset(config)
  assert dataset.builder is None and dataset.info.image_shape == (32, 24, 3)
  assert dataset.info.num_classes == config.data.synthetic_classes == 10
  mesh = sharding.make_mesh()
  straight = dataset.batches(config, mesh, start_step=0)
  first = [next(straight) for _ in range(4)]
  assert first[0]["image"].dtype == np.uint8 and first[0]["image"].shape == (16, 32, 24, 3)
  assert first[0]["image"].sharding.spec == jax.sharding.PartitionSpec("data")
  assert 0 <= int(first[0]["label"].min()) and int(first[0]["label"].max()) < 10
  resumed = next(dataset.batches(config, mesh, start_step=2))
  np.testing.assert_array_equal(resumed["image"], first[2]["image"])
  assert not np.array_equal(first[0]["image"], first[1]["image"])


def test_synthetic_data_loads_no_tensorflow():
  code = ("import sys\n"
          "from pgen.configs import fashion_mnist_dcgan\n"
          "from pgen import config, data\n"
          "from pgen.core import sharding\n"
          "c = fashion_mnist_dcgan.get_config('smoke')\n"
          "c.data.name = 'synthetic'\n"
          "c = config.resolve(c)\n"
          "next(data.open_dataset(c).batches(c, sharding.make_mesh(), start_step=0))\n"
          "print('tensorflow' in sys.modules)\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split()[-1] == "False"


def test_synthetic_data_needs_no_evaluation():
  with pytest.raises(config_lib.ConfigError, match="set eval.every_steps=0"):
    synthetic_config(eval=dict(every_steps=10))


def test_a_device_without_a_known_peak_has_no_mfu_unless_one_is_given():
  assert performance.peak_tflops("cpu", "bfloat16") is None
  assert performance.peak_tflops("cpu", "bfloat16", override=100.0) == 100.0


def test_mfu_is_the_share_of_the_peak():
  tflops, mfu = performance.utilization(2e12, 0.01, 400.0)  # 2 TFLOP in 10 ms: 200 TFLOP/s.
  assert tflops == pytest.approx(200.0) and mfu == pytest.approx(0.5)
  assert performance.utilization(2e12, 0.01, None) == (pytest.approx(200.0), None)


def test_deterministic_ops_on_gpu_only(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert compiler.compiler_options(deterministic=True) == {"xla_gpu_deterministic_ops": True}
  assert compiler.compiler_options() is None
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  assert compiler.compiler_options(deterministic=True) is None


def test_an_accelerator_jax_does_not_use_is_warned_about(monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  monkeypatch.setattr(compiler, "accelerators_on_machine", lambda: ["/dev/nvidia0"])
  assert compiler.warn_if_accelerator_unused()
  assert "/dev/nvidia0" in warnings[0] and ".[cuda12]" in warnings[0]
  monkeypatch.setattr(compiler, "accelerators_on_machine", lambda: [])
  assert not compiler.warn_if_accelerator_unused()
