"""The shipped classifier and the evaluate command on real Fashion-MNIST images."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pgen.data import pipeline, sources
from pgen.evaluation import classifier, evaluate, scoring
from pgen.generation import generate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def test_split(fmnist_data_dir):
  from pgen.configs import fashion_mnist_dcgan
  config = fashion_mnist_dcgan.get_config()
  config.data.data_dir = fmnist_data_dir
  builder = sources.get_builder(config.data)
  return config, builder, *pipeline.load_split(builder, config, "test")


def test_shipped_classifier_accuracy_is_the_recorded_one(test_split):
  _, _, images, labels = test_split
  record = json.load(open(classifier.RECORD))
  assert record["sha256"] == classifier.weights_sha256()
  _, logits = classifier.classify(images)
  accuracy = float((logits.argmax(1) == labels).mean())
  assert accuracy == pytest.approx(record["test_accuracy"], abs=2e-4)
  assert accuracy >= 0.92


def test_real_images_score_well_noise_and_collapse_score_badly(test_split):
  config, builder, images, labels = test_split
  config = config.copy_and_resolve_references()
  config.eval.num_reference = 4000
  evaluator = scoring.Evaluator(config, builder)  # Reference: 4000 of the train images.
  real = evaluator(images[:2000])
  noise = evaluator(np.random.default_rng(0).integers(0, 256, images[:2000].shape, np.uint8))
  collapsed = evaluator(images[labels == 7])  # Sneakers only.
  assert real["fd"] < 0.05 * noise["fd"] and real["fd"] < 0.1 * collapsed["fd"]
  assert real["precision"] > 0.6 and real["recall"] > 0.6
  assert real["class_entropy"] > 0.98 * real["class_entropy_max"]
  assert collapsed["class_entropy"] < 0.2 and collapsed["recall"] < 0.2
  # Noise collapses to one point in feature space: k-NN precision is fooled by the one
  # real outlier whose ball holds it (a known weakness); recall, coverage and density are not.
  assert noise["recall"] == 0.0 and noise["coverage"] < 0.01 and noise["density"] < 0.5
  assert collapsed["ms_ssim"] > real["ms_ssim"]  # One class: samples look more alike.
  assert set(real) >= {"kid", "kid_std", "density", "coverage", "classifier_score", "ms_ssim",
                       "feature_extractor", "reference", "num_samples"}


def test_evaluate_command_prints_every_metric_and_is_repeatable(smoke_run_copy, capsys):
  workdir = smoke_run_copy
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "evaluate", "--workdir", workdir, "--num", "300"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  capsys.readouterr()
  evaluate.print_table(generate.evaluate_checkpoint(workdir, num=300))  # Again, in this process.
  outputs = [result.stdout, capsys.readouterr().out]
  assert outputs[0] == outputs[1]
  for name in ("fd", "kid", "ms_ssim", "precision", "recall", "density", "coverage", "class_entropy",
               "classifier_score", "nearest_train_l2_min", "feature_extractor", "reference"):
    assert name in outputs[0]
  assert "num_samples" in outputs[0] and "300" in outputs[0]
  metrics = json.load(open(os.path.join(workdir, "metrics_00000006.json")))
  assert metrics["step"] == 6 and metrics["num_samples"] == 300
  assert os.path.isfile(os.path.join(workdir, "memorization_00000006.png"))


@pytest.mark.slow  # The best checkpoint: the next test; eval metrics: metrics.jsonl's test.
def test_training_evaluates_and_keeps_the_best_checkpoint(smoke_config, tmp_path):
  from clu.metric_writers import summary_writer  # noqa: F401  (tensorboard event reading below)
  from tensorboard.backend.event_processing import event_accumulator

  from pgen.training import checkpointing
  from pgen.training.loop import train_and_evaluate
  workdir = str(tmp_path / "run")
  smoke_config.eval.every_steps = 3
  smoke_config.checkpoint_every_steps = 3
  smoke_config.keep_checkpoints = 1
  smoke_config.total_steps = 9
  train_and_evaluate(smoke_config, workdir)
  events = event_accumulator.EventAccumulator(workdir, size_guidance={"tensors": 0})
  events.Reload()
  fds = {e.step: float(np.asarray(__import__("tensorflow").make_ndarray(e.tensor_proto)))
         for e in events.Tensors("eval/fd")}
  assert sorted(fds) == [3, 6, 9] and all(np.isfinite(v) and v > 0 for v in fds.values())
  assert "eval/recall" in events.Tags()["tensors"]
  best = min(fds, key=fds.get)
  kept = checkpointing.create_manager(workdir, read_only=True).all_steps()
  assert sorted(kept) == sorted({best, 9})


def test_the_best_evaluation_is_checkpointed_whatever_the_intervals_and_kept_across_restarts(
    smoke_config, tmp_path):
  """Evaluations every 2 steps, checkpoints every 6: each new best FD is checkpointed when it
  is evaluated; a restart whose evaluations are all worse keeps that checkpoint and knows its
  FD."""
  from pgen.training import checkpointing
  from pgen.training.loop import train_and_evaluate
  workdir = str(tmp_path / "run")
  smoke_config.eval.every_steps = 2
  smoke_config.checkpoint_every_steps = 6
  smoke_config.keep_checkpoints = 1
  fds = {}

  def recording(parts, offset=0.0):
    def evaluator(images, labels):
      result = real(images, labels)
      result["fd"] += offset
      fds[len(fds) * 2 + 2] = result["fd"]
      return result

    real = parts.evaluator
    parts.evaluator = evaluator
    return parts

  train_and_evaluate(smoke_config, workdir, instrument=recording)
  best = min(fds, key=fds.get)
  manager = checkpointing.create_manager(workdir, read_only=True)
  assert sorted(manager.all_steps()) == sorted({best, 6})
  assert checkpointing.best_fd(manager) == pytest.approx(fds[best])

  smoke_config.total_steps = 10  # Resumed: evaluations at 8 and 10, worse than any before.
  train_and_evaluate(smoke_config, workdir,
                     instrument=lambda parts: recording(parts, offset=1e6))
  manager = checkpointing.create_manager(workdir, read_only=True)
  assert sorted(fds) == [2, 4, 6, 8, 10]
  assert sorted(manager.all_steps()) == sorted({best, 10})
  assert checkpointing.best_fd(manager) == pytest.approx(fds[best])
