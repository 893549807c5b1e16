"""Sample-quality metrics on feature vectors (float64, numpy/scipy).

    fd = frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    kid_mean, kid_std = kernel_distance(real, fake)
    pr = precision_recall_density_coverage(real, fake, k=5)

References: Heusel et al. 2017 (FID), Binkowski et al. 2018 (KID), Kynkaanniemi et al.
2019 (precision/recall), Naeem et al. 2020 (density/coverage).
"""

import numpy as np
import scipy.linalg


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and (unbiased) covariance, in float64."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians.

  When S1 S2 is near singular (too few samples for the feature size), its square root is
  taken after adding eps to both diagonals, as the reference implementation does.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))} in the Frechet "
                       "distance's matrix square root: use more samples.")
    covmean = covmean.real
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def kernel_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """Unbiased squared MMD with the cubic polynomial kernel, over random subsets: (mean, std)."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  n = min(len(real), len(fake), subset_size)
  d = real.shape[1]
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), n, replace=False)]
    y = fake[rng.choice(len(fake), n, replace=False)]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    mmd = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2 * kxy.mean())
    values.append(mmd)
  return float(np.mean(values)), float(np.std(values))


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
  return np.sqrt(np.maximum(sq, 0))


def _kth_neighbour_radius(features: np.ndarray, k: int) -> np.ndarray:
  """Distance from each point to its k-th nearest other point of the same set."""
  distances = _pairwise_distances(features, features)
  return np.partition(distances, k, axis=1)[:, k]  # Index 0 is the point itself.


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray,
                                      k: int = 5) -> dict[str, float]:
  """k-NN manifold metrics. Precision: fakes inside the real manifold; recall: reals inside
  the fake manifold; density and coverage: their outlier-robust counterparts."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  real_radius = _kth_neighbour_radius(real, k)
  fake_radius = _kth_neighbour_radius(fake, k)
  real_to_fake = _pairwise_distances(real, fake)  # (n_real, n_fake)
  inside_real = real_to_fake < real_radius[:, None]  # fake j inside real ball i
  precision = inside_real.any(axis=0).mean()
  recall = (real_to_fake < fake_radius[None, :]).any(axis=1).mean()
  density = inside_real.sum(axis=0).mean() / k
  coverage = (real_to_fake.min(axis=1) < real_radius).mean()
  return {"precision": float(precision), "recall": float(recall), "density": float(density),
          "coverage": float(coverage)}


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
  """exp(E_x KL(p(y|x) || p(y))) over splits: (mean, std)."""
  probs = np.asarray(probs, np.float64)
  scores = []
  for part in np.array_split(probs, num_splits):
    marginal = part.mean(axis=0, keepdims=True)
    kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def class_histogram(predicted: np.ndarray, num_classes: int) -> dict[str, float]:
  """Entropy of the predicted-class histogram (nats; log(num_classes) is uniform) and the
  share of the rarest class: low values signal mode collapse."""
  counts = np.bincount(predicted, minlength=num_classes).astype(np.float64)
  p = counts / counts.sum()
  entropy = -(p[p > 0] * np.log(p[p > 0])).sum() + 0.0  # + 0.0 turns -0.0 into 0.0.
  return {"class_entropy": float(entropy), "class_entropy_max": float(np.log(num_classes)),
          "rarest_class_share": float(p.min())}
