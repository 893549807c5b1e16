"""Sample-quality metrics on feature vectors (float64, numpy/scipy).

    fd = frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    kid_mean, kid_std = kernel_distance(real, fake)
    pr = precision_recall_density_coverage(real, fake, k=5)

References: Heusel et al. 2017 (FID), Binkowski et al. 2018 (KID), Kynkaanniemi et al.
2019 (precision/recall), Naeem et al. 2020 (density/coverage).
"""

import numpy as np
import scipy.linalg

from pgen.data import options as data_options


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


def kth_neighbour_radius(features: np.ndarray, k: int) -> np.ndarray:
  """Distance from each point to its k-th nearest other point of the same set."""
  features = np.asarray(features, np.float64)
  distances = _pairwise_distances(features, features)
  return np.partition(distances, k, axis=1)[:, k]  # Index 0 is the point itself.


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5,
                                      real_radius: np.ndarray | None = None) -> dict[str, float]:
  """k-NN manifold metrics. Precision: fakes inside the real manifold; recall: reals inside
  the fake manifold; density and coverage: their outlier-robust counterparts.
  `real_radius`: kth_neighbour_radius(real, k), from a caller that scores many fakes against
  the same reals (a third of the work)."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real_radius is None:
    real_radius = kth_neighbour_radius(real, k)
  fake_radius = kth_neighbour_radius(fake, k)
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


def conditional_accuracy(predicted: np.ndarray, labels: np.ndarray,
                         num_classes: int) -> dict[str, float]:
  """How often the classifier sees the class a conditional generator was asked for: overall,
  for the worst class, and per class (`class_accuracy/<index>`)."""
  per_class = {c: float(np.mean(predicted[labels == c] == c))
               for c in range(num_classes) if np.any(labels == c)}
  return {"class_accuracy": float(np.mean(predicted == labels)),
          "class_accuracy_min": min(per_class.values()),
          **{f"class_accuracy/{c}": v for c, v in per_class.items()}}


def attribute_accuracy(class_logits: np.ndarray, labels: np.ndarray, sizes: tuple,
                       names) -> dict[str, float]:
  """How often the classifier sees each attribute of combined `labels` (attributes of
  `sizes` values, named `names`) as asked: is the red dress red, is it a dress."""
  predicted = data_options.attribute_values(np.asarray(class_logits).argmax(1), sizes)
  wanted = data_options.attribute_values(np.asarray(labels), sizes)
  return {name: float(np.mean(predicted[:, a] == wanted[:, a])) for a, name in enumerate(names)}


_MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
  x = np.arange(size) - (size - 1) / 2
  g = np.exp(-x ** 2 / (2 * sigma ** 2))
  return g / g.sum()


def _filter(x: np.ndarray, window: np.ndarray) -> np.ndarray:
  """Separable 'valid' filtering over axes 1 and 2 of (N, H, W, C)."""
  size = len(window)
  x = sum(window[i] * x[:, i:x.shape[1] - size + 1 + i] for i in range(size))
  return sum(window[i] * x[:, :, i:x.shape[2] - size + 1 + i] for i in range(size))


def ms_ssim(a: np.ndarray, b: np.ndarray, window_size: int = 7, sigma: float = 1.5) -> np.ndarray:
  """Multi-scale SSIM (Wang et al. 2003) of image pairs (N, H, W, C) in [0, 255]: (N,).

  Uses as many of the 5 standard scales as the image size allows for the window (three
  for 32x32 with a 7x7 window), with the standard weights renormalized.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  window = _gaussian_window(window_size, sigma)
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  scales = 1
  while scales < 5 and min(a.shape[1:3]) // 2 ** scales >= window_size:
    scales += 1
  weights = _MS_SSIM_WEIGHTS[:scales] / _MS_SSIM_WEIGHTS[:scales].sum()
  result = np.ones(len(a))
  for scale in range(scales):
    mu_a, mu_b = _filter(a, window), _filter(b, window)
    var_a = _filter(a * a, window) - mu_a ** 2
    var_b = _filter(b * b, window) - mu_b ** 2
    cov = _filter(a * b, window) - mu_a * mu_b
    contrast_structure = (2 * cov + c2) / (var_a + var_b + c2)
    if scale == scales - 1:
      luminance = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
      value = (luminance * contrast_structure).mean(axis=(1, 2, 3))
    else:
      value = contrast_structure.mean(axis=(1, 2, 3))
      n, h, w, c = a.shape
      a = a[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
      b = b[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    result *= np.maximum(value, 0) ** weights[scale]
  return result


def ms_ssim_diversity(images: np.ndarray, num_pairs: int = 1000, seed: int = 0) -> float:
  """Mean MS-SSIM of random distinct pairs: lower means more diverse samples."""
  rng = np.random.default_rng(seed)
  first = rng.integers(0, len(images), num_pairs)
  second = (first + rng.integers(1, len(images), num_pairs)) % len(images)
  return float(ms_ssim(images[first], images[second]).mean())
