r"""StyleGAN2 with ADA on Fashion-MNIST at 32x32, narrow enough to train on 2 CPU cores.

    python -m pgen train --config configs/fashion_mnist_stylegan2.py --workdir runs/sg2
    python -m pgen generate --workdir runs/sg2 --num 100 --out grid.png --truncation 0.7
    python -m pgen generate --workdir runs/sg2 --style_mixing 4x6 --out mixing.png
    python -m pgen train --config configs/fashion_mnist_stylegan2.py:fast --workdir runs/sg2f

The recipe is StyleGAN2-ADA's (`use_stylegan2`): mapping network at 1/100 of the learning
rate, style mixing 0.9, lazy R1 every 16 D steps with gamma from the resolution and batch
(`r1_gamma`), path-length regularization every 4 G steps, both as separate optimizer steps
with Adam corrected for them, Adam (0, 0.99) at 0.0025, EMA of 10k images per 32 of batch,
ADA's "bgc" pipeline whose probability adapts to E[sign D(real)] = 0.6. Everything not set
here is pgen's defaults (`base` in configs/fashion_mnist_dcgan.py). The widths are sized for 2 CPU
cores (bench/RESULTS.md); on an accelerator use channel_base 16384 (StyleGAN2-ADA's for
small images) and w_dim 512.
"""

import ml_collections

from pgen.configs import fashion_mnist_dcgan


def r1_gamma(height: int, width: int, batch_size):
  """StyleGAN2-ADA's rule for R1's gamma: 0.0002 * resolution^2 / batch (the resolution of
  a non-square frame taken as its larger side, as its square training crop would be).
  `batch_size` may be a reference to the config's, so the gamma follows an override."""
  return 0.0002 * max(height, width) ** 2 / batch_size


def use_stylegan2(config: ml_collections.ConfigDict, height: int, width: int) -> None:
  """StyleGAN2-ADA's recipe at height x width; the other StyleGAN2 configs apply it too.
  R1's gamma and the EMA half-life follow batch_size, also when --config.batch_size sets it
  (for another resolution, set loss.r1_weight by r1_gamma's rule)."""
  batch_size = config.get_ref("batch_size")
  config.model.name = "stylegan2"
  config.model.mapping_layers = 2  # StyleGAN2-ADA's choice below 1024 px (8 in the paper).
  config.model.mapping_lr_multiplier = 0.01
  config.model.style_mixing_probability = 0.9
  config.model.minibatch_std = 4
  config.model.conv_clamp = 256.0  # StyleGAN2-ADA clamps every convolution (for bf16 too).
  config.loss.name = "nonsaturating"
  config.loss.r1_weight = r1_gamma(height, width, batch_size.to_float())
  config.loss.r1_every = 16
  config.loss.pl_weight = 2.0
  config.loss.pl_every = 4
  config.loss.pl_batch_shrink = 2
  config.loss.lazy_regularization = "separate"
  config.optim.g_learning_rate = 0.0025
  config.optim.d_learning_rate = 0.0025
  config.optim.g_betas = (0.0, 0.99)
  config.optim.d_betas = (0.0, 0.99)
  config.ema.half_life_images = batch_size * 10_000 // 32  # StyleGAN2-ADA: 10k images per 32.
  config.ema.rampup = 0.05
  config.augment.policy = "bgc"
  config.augment.probability = 0.0  # ADA starts at 0 and adapts.
  config.augment.ada_target = 0.6
  config.augment.ada_interval = 4
  config.augment.ada_kimg = 500  # StyleGAN2-ADA: p can go from 0 to 1 in 500k images.


def use_small_budget(config: ml_collections.ConfigDict) -> None:
  """What learns fastest per minute in a run of minutes on a few CPU cores (bench/QUALITY.md,
  the `stylegan2_fast` rows; bench/RESULTS.md has the probes that chose it): four times
  the learning rates, and neither path-length regularization nor ADA, which cost a fifth
  of the images per second and did not pay it back in those probes (60k training images
  do not overfit in a few hundred thousand seen)."""
  config.optim.g_learning_rate = config.optim.d_learning_rate = 0.01
  config.loss.pl_weight = 0.0
  config.augment.policy = ()
  config.augment.ada_target = 0.0


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  if variant not in ("", "smoke", "fast"):
    raise ValueError(f"Unknown config variant {variant!r}; choose 'smoke' or 'fast'.")
  config = fashion_mnist_dcgan.base("smoke" if variant == "smoke" else "")
  if variant == "smoke":
    use_stylegan2(config, 32, 32)
    config.model.latent_dim = 16
    config.model.w_dim = 16
    config.model.channel_base = 128
    config.model.channel_max = 16
    return config
  config.batch_size = 32
  use_stylegan2(config, 32, 32)
  config.model.latent_dim = 128
  config.model.w_dim = 128
  # 4x4: 128 channels, 8x8: 64, 16x16: 32, 32x32: 16 (bench/RESULTS.md has the speed of
  # each width).
  config.model.channel_base = 512
  config.model.channel_max = 128
  config.total_steps = 20_000
  if variant == "fast":
    use_small_budget(config)
  return config
