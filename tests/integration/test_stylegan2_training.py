"""StyleGAN2 trained end to end on Fashion-MNIST: exact resume with every piece of its
state in play, and what generate and export do with a StyleGAN2 run."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from pgen.configs import fashion_mnist_stylegan2
from pgen.generation import export, generators
from pgen.generation.generate import generate
from pgen.training.loop import train_and_evaluate

pytestmark = pytest.mark.usefixtures("fast_compile")  # Runs are compared with each other.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(data_dir, total_steps=6):
  """The smoke StyleGAN2, conditional, with R1 and path length on steps 0, 2, 4 and ADA's
  probability adapting from 0.5: every piece of its state changes within 6 steps."""
  config = fashion_mnist_stylegan2.get_config("smoke")
  config.data.data_dir, config.data.download = data_dir, False
  config.data.split = "train[:40]"  # Two batches per epoch: resume crosses epochs.
  config.model.conditioning = "projection"
  config.loss.r1_every = config.loss.pl_every = 2
  config.augment.probability, config.augment.ada_interval = 0.5, 1
  config.total_steps = total_steps
  return config


@pytest.fixture(scope="module")
def sg2_run(fmnist_data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sg2") / "run")
  state = train_and_evaluate(_config(fmnist_data_dir), workdir)
  return workdir, state


def _leaves(state):
  return {jax.tree_util.keystr(path): np.asarray(x)
          for path, x in jax.tree_util.tree_flatten_with_path(state)[0]}


@pytest.mark.slow  # Minutes of compiling: the fast suite lowers these programs instead.
def test_stop_and_resume_equals_straight_through_with_noise_mixing_w_avg_pl_and_ada(
    sg2_run, fmnist_data_dir, tmp_path):
  _, straight = sg2_run
  workdir = str(tmp_path / "resumed")
  assert int(train_and_evaluate(_config(fmnist_data_dir, total_steps=3), workdir).step) == 3
  resumed = train_and_evaluate(_config(fmnist_data_dir), workdir)
  want, got = _leaves(straight), _leaves(resumed)
  assert want.keys() == got.keys()
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  assert float(straight.path_length_mean) > 0  # Moved, and checkpointed (resume equals it).
  assert np.abs(want[".g_batch_stats['mapping']['w_avg']"]).sum() > 0
  assert float(straight.augment.probability) != 0.5


@pytest.mark.slow
def test_generate_truncates_mixes_styles_and_export_builds_the_options_in(sg2_run, tmp_path):
  workdir, _ = sg2_run
  plain = np.load(generate(workdir, 8, str(tmp_path / "plain.npz"))[0])
  truncated = np.load(generate(workdir, 8, str(tmp_path / "t.npz"),
                               options=generators.RenderOptions(truncation=0.0))[0])
  assert not np.array_equal(plain["images"], truncated["images"])
  same_class = truncated["images"][truncated["labels"] == truncated["labels"][0]]
  assert all(np.array_equal(same_class[0], image) for image in same_class)

  result = subprocess.run(
      [sys.executable, "-m", "pgen", "generate", "--workdir", workdir, "--style_mixing", "2x3",
       "--out", str(tmp_path / "mixing.png"), "--truncation", "0.7"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ,
                                                                     JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  grid = Image.open(tmp_path / "mixing.png")
  assert grid.size == (2 * (4 * 33 + 1), 2 * (3 * 33 + 1))  # 4x3 tiles of 32 px, enlarged 2x.

  out = str(tmp_path / "export")
  record = export.export(workdir, out, options=generators.RenderOptions(truncation=0.7))
  assert record["truncation"] == 0.7 and record["noise_mode"] is None
  assert json.load(open(os.path.join(out, "export.json")))["truncation"] == 0.7
  z = generators.latents_for_seeds(generators.load(out), [1, 2])
  labels = np.asarray([4, 4], np.int32)
  np.testing.assert_array_equal(
      generators.load(out).render(z, labels),
      generators.load(workdir, options=generators.RenderOptions(truncation=0.7)).render(z,
                                                                                       labels))
  with pytest.raises(ValueError, match="exported with truncation=0.7.*export the run again"):
    generators.load(out, options=generators.RenderOptions(truncation=0.5))


def _pgen_error(*args):
  result = subprocess.run([sys.executable, "-m", "pgen", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
  [line] = [line for line in result.stderr.splitlines() if ": error: " in line]
  return line


def test_stylegan2_options_on_a_dcgan_run_are_one_line_errors(smoke_run, tmp_path):
  assert "--truncation needs a StyleGAN2 run" in _pgen_error(
      "generate", "--workdir", smoke_run, "--num", "4", "--out", str(tmp_path / "g.png"),
      "--truncation", "0.7")
  assert "--style_mixing needs the workdir of a StyleGAN2 run" in _pgen_error(
      "generate", "--workdir", smoke_run, "--style_mixing", "2x2", "--out",
      str(tmp_path / "m.png"))
  assert "loss.pl_weight=2.0 needs model.name='stylegan2'" in _pgen_error(
      "train", "--config", os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py:smoke"),
      "--workdir", str(tmp_path / "w"), "--config.loss.pl_weight=2.0")
