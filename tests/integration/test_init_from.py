"""init.from: a new run starts from another run's weights where names and shapes match, the
rest (and the optimizer, step, ADA) fresh; the source is recorded; a resumed run resumes
itself; another family or resolution is refused."""

import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.core import sharding
from pgen.errors import ConfigError
from pgen.gan.state import build
from pgen.training import checkpointing, init_from
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fresh_state(config, num_classes=10):
  config = config_lib.resolve(config)
  setup = build(config, sharding.make_mesh(), (32, 32, 1), num_classes)
  return config, setup, setup.init()


def _same(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_a_run_of_the_same_model_copies_every_weight_and_starts_the_rest_fresh(
    smoke_config, smoke_run):
  smoke_config.init["from"] = smoke_run + ":3"
  config, setup, fresh = _fresh_state(smoke_config)
  state, record = init_from.start_from(config, fresh, setup.image_shape)
  _, _, _, source = checkpointing.restore_run_state(smoke_run, 3)
  for part in init_from.COPIED_PARTS:
    assert _same(getattr(state, part), getattr(source, part)), part
  assert record["fresh"] == [] and len(record["copied"]) == len(
      jax.tree.leaves([getattr(fresh, part) for part in init_from.COPIED_PARTS]))
  assert record["step"] == 3 and record["sha256"] == checkpointing.checkpoint_sha256(
      smoke_run, 3)
  assert int(state.step) == 0 and _same(state.g_opt_state, fresh.g_opt_state)
  assert _same(state.augment, fresh.augment)


def test_a_conditional_run_keeps_what_fits_and_lists_the_rest(smoke_config, smoke_run):
  smoke_config.init["from"] = smoke_run
  smoke_config.model.conditioning = "projection"  # The source is unconditional.
  config, setup, fresh = _fresh_state(smoke_config)
  state, record = init_from.start_from(config, fresh, setup.image_shape)
  assert record["step"] == 6 and record["copied"] and record["fresh"]
  assert all("absent in the source" in name or "shape" in name for name in record["fresh"])
  assert any("embed" in name.lower() for name in record["fresh"]), record["fresh"]
  assert not _same(state.d_params, fresh.d_params)  # Copied where it fits.


@pytest.mark.parametrize("key, value, message", [
    ("model.name", "resnet", "its model is dcgan, this run's is resnet"),
    ("data.resolution", 64, "its images are 32x32, this run's 64x64"),
])
def test_another_family_or_resolution_is_refused(smoke_config, smoke_run, key, value,
                                                  message):
  smoke_config.init["from"] = smoke_run
  section, name = key.split(".")
  smoke_config[section][name] = value
  config = config_lib.resolve(smoke_config)
  image_shape = (value, value, 1) if name == "resolution" else (32, 32, 1)
  with pytest.raises(ConfigError, match=message):
    init_from.start_from(config, None, image_shape)


def test_training_records_the_source_and_a_resume_no_longer_reads_it(smoke_config, smoke_run,
                                                                      tmp_path):
  """From the command line, as the docs show it; then resumed in process."""
  source = str(tmp_path / "source")
  shutil.copytree(smoke_run, source)
  workdir = str(tmp_path / "run")
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "train", "--config", "fashion_mnist_dcgan:smoke",
       "--workdir", workdir, f"--config.init.from={source}", "--config.total_steps=3",
       f"--config.data.data_dir={smoke_config.data.data_dir}", "--config.data.download=False"],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  [record_path] = glob.glob(os.path.join(workdir, "run_record", "start_*.json"))
  with open(record_path) as f:
    record = json.load(f)["init_from"]
  assert record["source"] == source and record["step"] == 6 and record["fresh"] == []
  shutil.rmtree(source)  # A resumed run resumes itself: the source is no longer needed.
  smoke_config.init["from"] = source
  smoke_config.total_steps = 6
  assert int(train_and_evaluate(smoke_config, workdir).step) == 6


def test_the_key_is_set_from_the_command_line():
  config = config_lib.load(os.path.join(ROOT, "pgen", "configs", "fashion_mnist_dcgan.py:smoke"),
                           ["--config.init.from=runs/summer:1200"])
  assert config.init["from"] == "runs/summer:1200"
  assert init_from.parse(config.init["from"]) == ("runs/summer", 1200)
  assert init_from.parse("runs/summer") == ("runs/summer", None)
