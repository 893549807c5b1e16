"""Metric correctness on constructed inputs with known answers."""

import numpy as np
import pytest
import scipy.linalg

from pgen.evaluation import metrics, scoring


def _random_covariance(rng, d):
  a = rng.normal(size=(d, 2 * d))
  return a @ a.T / (2 * d)


def test_frechet_distance_matches_an_independent_float64_formula():
  rng = np.random.default_rng(0)
  d = 16
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
  # Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), the symmetric form, via eigenvalues.
  root1 = scipy.linalg.sqrtm(s1).real
  eig = np.linalg.eigvalsh(root1 @ s2 @ root1)
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(
      np.sqrt(np.maximum(eig, 0)))
  assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
  assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_of_two_halves_of_one_sample_is_near_zero():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(40_000, 8)) @ rng.normal(size=(8, 8))
  fd = metrics.frechet_distance(*metrics.gaussian_stats(x[::2]), *metrics.gaussian_stats(x[1::2]))
  shifted = metrics.frechet_distance(*metrics.gaussian_stats(x[::2]),
                                     *metrics.gaussian_stats(x[1::2] + 1.0))
  scale = np.trace(np.cov(x, rowvar=False))
  assert fd < 1e-3 * scale  # The estimator's small-sample bias, nothing more.
  assert shifted == pytest.approx(8.0, rel=0.05)


def test_frechet_distance_survives_singular_covariances():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(10, 32))  # Fewer points than dimensions: rank-deficient covariances.
  y = rng.normal(size=(10, 32))
  assert np.isfinite(metrics.frechet_distance(*metrics.gaussian_stats(x),
                                              *metrics.gaussian_stats(y)))


def test_kernel_distance_is_unbiased_and_detects_a_shift():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16))
  mean, std = metrics.kernel_distance(a, b, num_subsets=50, subset_size=500)
  assert abs(mean) < 3 * std / np.sqrt(50) + 1e-4
  shifted, _ = metrics.kernel_distance(a, b + 0.5, num_subsets=50, subset_size=500)
  assert shifted > 20 * max(abs(mean), std)


def test_precision_recall_on_hand_built_clouds():
  rng = np.random.default_rng(4)
  centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
  real = np.concatenate([c + rng.normal(size=(200, 2)) for c in centers])
  same = metrics.precision_recall_density_coverage(real, real + 1e-9)
  assert same["precision"] == same["recall"] == same["coverage"] == 1.0
  # Fakes on two of the four modes: all realistic, half the modes covered.
  half = np.concatenate([c + rng.normal(size=(400, 2)) for c in centers[:2]])
  result = metrics.precision_recall_density_coverage(real, half)
  assert result["precision"] > 0.95
  assert result["recall"] == pytest.approx(0.5, abs=0.03)
  assert result["coverage"] == pytest.approx(0.5, abs=0.03)
  far = metrics.precision_recall_density_coverage(real, real + 1000.0)
  assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_kept_reference_radius_scores_exactly_as_one_computed_afresh(monkeypatch):
  """An Evaluator computes the reference's k-NN radii once (scoring.reference_radius) for
  all its calls: on more reals than the k-NN metrics take, the same numbers as score()."""
  monkeypatch.setattr(scoring, "_MANIFOLD_POINTS", 500)  # Their cost is quadratic in it.
  rng = np.random.default_rng(5)
  real = rng.normal(size=(600, 8)).astype(np.float32)
  fake = (rng.normal(size=(550, 8)) * 1.2 + 0.1).astype(np.float32)
  kept = scoring.score(real, fake, real_radius=scoring.reference_radius(real))
  assert kept == scoring.score(real, fake)
  assert 0 < kept["precision"] < 1 and 0 < kept["recall"] < 1


def test_class_histogram_and_classifier_score_flag_collapse():
  uniform = metrics.class_histogram(np.arange(1000) % 10, 10)
  assert uniform["class_entropy"] == pytest.approx(np.log(10))
  collapsed = metrics.class_histogram(np.full(1000, 3), 10)
  assert collapsed["class_entropy"] == 0.0 and collapsed["rarest_class_share"] == 0.0
  confident_diverse = np.eye(10)[np.arange(1000) % 10] * 0.99 + 0.001
  confident_one = np.eye(10)[np.full(1000, 3)] * 0.99 + 0.001
  assert metrics.inception_score(confident_diverse)[0] > 8
  assert metrics.inception_score(confident_one)[0] == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_is_one_for_identical_images_and_low_for_unrelated_ones():
  rng = np.random.default_rng(5)
  images = rng.integers(0, 256, (20, 32, 32, 1)).astype(np.uint8)
  np.testing.assert_allclose(metrics.ms_ssim(images, images), 1.0, atol=1e-9)
  unrelated = metrics.ms_ssim(images[:10], images[10:])
  assert np.all(unrelated < 0.2)
  blurred = (images.astype(float) + np.roll(images, 1, axis=1)) / 2
  similar = metrics.ms_ssim(images, blurred)
  assert np.all(similar > unrelated.max()) and np.all(similar < 1)
  assert metrics.ms_ssim_diversity(np.repeat(images[:1], 50, axis=0)) == pytest.approx(1.0)


def test_conditional_accuracy_per_class_and_worst_class():
  labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
  predicted = np.array([0, 0, 0, 1, 1, 0, 2, 2])
  result = metrics.conditional_accuracy(predicted, labels, num_classes=4)
  assert result["class_accuracy"] == 6 / 8
  assert result["class_accuracy/0"] == 0.75 and result["class_accuracy/1"] == 0.5
  assert result["class_accuracy/2"] == 1.0 and "class_accuracy/3" not in result  # Not asked for.
  assert result["class_accuracy_min"] == 0.5
