"""The accelerator path on CPU: synthetic batches made on the device, the step's cost and
MFU in the logs and the run record, per-backend compiler options, the install warning."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from absl import logging

from configs import fashion_mnist_dcgan
from pgen import compiler, config as config_lib, performance, sharding
from pgen.data import open_dataset
from pgen.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _synthetic_config(**overrides):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.name = "synthetic"
  config.data.resolution = (32, 24)
  for key, value in overrides.items():
    config[key] = value
  return config_lib.resolve(config)


def test_synthetic_batches_are_uint8_sharded_and_a_function_of_seed_and_step():
  config = _synthetic_config()
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
          "from configs import fashion_mnist_dcgan\n"
          "from pgen import config, data, sharding\n"
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
    _synthetic_config(eval=dict(every_steps=10))


def test_training_logs_and_records_the_step_s_cost(tmp_path):
  workdir = str(tmp_path / "run")
  train_and_evaluate(_synthetic_config(), workdir)
  with open(os.path.join(workdir, "run_record", "start_000.json")) as f:
    cost = json.load(f)["train_step"]
  assert cost["flops_per_step"] > 1e6 and cost["compile_s"] > 0
  assert cost["peak_memory_bytes"] > 0 and cost["device_kind"] == jax.devices()[0].device_kind
  assert cost["peak_tflops"] is None  # A CPU: no peak in the table, so no MFU.
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(workdir, size_guidance={"tensors": 0})
  events.Reload()
  tags = events.Tags()["tensors"]
  assert {"images_per_s", "tflops_per_device", "input_wait_fraction"} <= set(tags)
  assert "mfu" not in tags


@pytest.mark.parametrize("device_kind, dtype, expected", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4), ("NVIDIA H100 PCIe", "bfloat16", 756.0),
    ("NVIDIA H200", "float32", 494.7), ("NVIDIA A100-SXM4-80GB", "bfloat16", 312.0),
    ("NVIDIA L4", "bfloat16", 121.0), ("TPU v4", "bfloat16", 275.0),
    ("TPU v5 lite", "float32", 197.0), ("TPU v5", "bfloat16", 459.0),
    ("TPU v6 lite", "bfloat16", 918.0), ("cpu", "bfloat16", None)])
def test_peak_table_by_device_kind(device_kind, dtype, expected):
  assert performance.peak_tflops(device_kind, dtype) == expected
  assert performance.peak_tflops(device_kind, dtype, override=100.0) == 100.0


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
