"""A run's train step cost (FLOPs, compile time, memory) in its run record and its
throughput in TensorBoard, on synthetic data."""

import json
import os

import jax

from pgen.training.loop import train_and_evaluate
from tests.helpers.synthetic import synthetic_config


def test_training_logs_and_records_the_step_s_cost(tmp_path):
  workdir = str(tmp_path / "run")
  train_and_evaluate(synthetic_config(), workdir)
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
