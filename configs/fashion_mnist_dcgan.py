r"""DCGAN on Fashion-MNIST at 32x32: pgen's default job.

    python -m pgen train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist
    python -m pgen train --config configs/fashion_mnist_dcgan.py:smoke --workdir /tmp/smoke

The `smoke` variant shrinks everything so a run takes seconds (tests use it).
"""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds parameters, latents and the data order.
  config.total_steps = 5000  # Generator updates; a resumed run continues up to this.
  config.batch_size = 64  # Global batch: divided over processes, then devices.

  config.data = ml_collections.ConfigDict()
  config.data.name = "fashion_mnist"  # A TFDS name, or a dataset made by `python -m pgen prepare`.
  config.data.split = "train"
  # A side or (height, width), e.g. (64, 48); the models need sides like 32, 64, (64, 48).
  config.data.resolution = ml_collections.FieldReference(32, field_type=object)
  # How images get that shape: "pad" (keep the aspect, fit inside, fill with pad_value),
  # "crop" (keep the aspect, fill, cut the overflow evenly) or "stretch" (ignore the aspect).
  config.data.resize = "pad"
  config.data.upscale = False  # "pad" only: enlarge smaller images too (False: centre them as is).
  # tf.image.resize filter, antialiased when shrinking; FID depends on it, and the run record
  # keeps it. Fashion-MNIST's 28x28 images fit in 32x32 and are never resized.
  config.data.resize_filter = "bilinear"
  config.data.pad_value = 0  # Grey level of the padding; Fashion-MNIST's background is black.
  config.data.label_key = "label"  # The ClassLabel feature that is the class; "" for none.
  config.data.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS data_dir; None = TFDS default.
  # Where the four original IDX files are looked for when preparing offline.
  config.data.manual_dir = "/usr/share/datasets/fashion-mnist"
  config.data.download = True  # Try the normal TFDS download when no local files are found.
  config.data.shuffle_buffer = 60_000  # Whole dataset: a full shuffle each epoch.
  # Kept in memory: "decoded" (resized uint8 images; each process decodes every image once),
  # "encoded" (the records), "none"; "auto": decoded if that fits in cache_max_mb, else
  # encoded if that fits, else none.
  config.data.cache = "auto"
  config.data.cache_max_mb = 1024

  config.model = ml_collections.ConfigDict()
  config.model.name = "dcgan"  # Or "resnet" (SNGAN/BigGAN residual blocks; slower, stronger).
  config.model.latent_dim = 100
  config.model.g_width = 64  # Channels of the last generator block; doubled per block towards 4x4.
  config.model.d_width = 64  # Channels of the first discriminator block; doubled per block.
  config.model.max_width = 512  # ResNet only: cap on the doubled widths (BigGAN-style at 128px).
  # Class conditioning: "none", "projection" (projection D, the SNGAN/BigGAN choice) or
  # "acgan" (an auxiliary classifier head in D); both give G conditional BatchNorm.
  config.model.conditioning = "none"
  config.model.d_spectral_norm = False  # Spectral norm in D: the usual pairing with the hinge loss.
  config.model.g_spectral_norm = False  # Spectral norm in G too, as BigGAN does.
  # Minibatch stddev group size before D's last block (StyleGAN; against mode collapse); 0 = off.
  config.model.minibatch_std = 0
  # ResNet only: feature-map height where G and D get SAGAN self-attention; 0 = none.
  config.model.attention_resolution = 0
  # How G doubles resolution: "subpixel" (2x2 conv + depth-to-space), "nearest"
  # (upsample + 3x3 conv) or "transpose" (DCGAN's 4x4 stride-2 transposed conv).
  config.model.upsample = "subpixel"
  # How D halves it: "space_to_depth" (+ 2x2 conv) or "strided" (DCGAN's 4x4 stride-2 conv).
  # Each pair has the same parameters and FLOPs; bench/RESULTS.md has the speeds on CPU.
  config.model.downsample = "space_to_depth"

  config.loss = ml_collections.ConfigDict()
  config.loss.name = "nonsaturating"  # Or "hinge", "wasserstein", "least_squares" (pgen/losses.py).
  # R1 penalty on real images (gamma; StyleGAN2 uses 0.01-10 by resolution); 0 = off.
  config.loss.r1_weight = 0.0
  config.loss.r1_every = 16  # Lazy R1: every k steps, weighted by k (StyleGAN2).
  config.loss.gp_weight = 0.0  # WGAN-GP gradient penalty (lambda, 10 in the paper); 0 = off.
  config.loss.acgan_weight = 1.0  # Weight of the class cross-entropy with conditioning="acgan".

  config.optim = ml_collections.ConfigDict()
  config.optim.g_learning_rate = 2e-4
  config.optim.d_learning_rate = 2e-4  # TTUR: e.g. 4e-4 with g 1e-4 for hinge + spectral norm.
  config.optim.g_betas = (0.5, 0.999)  # Adam (b1, b2) of G.
  config.optim.d_betas = (0.5, 0.999)  # Adam (b1, b2) of D; SNGAN uses (0.0, 0.9).
  config.optim.d_steps = 1  # Discriminator updates per generator update, each on new reals.

  # Differentiable augmentation of everything D sees, real and fake (DiffAugment / ADA).
  config.augment = ml_collections.ConfigDict()
  config.augment.policy = ()  # Any of ("translation", "cutout", "color"); () = off.
  config.augment.probability = 1.0  # Chance each transform hits an image (start value with ADA).
  # ADA: > 0 adapts the probability so that E[sign(D(real))] stays near this (0.6); 0 = fixed.
  config.augment.ada_target = 0.0
  config.augment.ada_interval = 4  # D updates between adjustments.
  config.augment.ada_kimg = 100  # Thousands of images for the probability to go from 0 to 1.
  # Mirror real images at random: off by default, product photos carry text and logos.
  config.augment.hflip = False

  # EMA of the generator weights, which samples and evaluation use (StyleGAN2's ema_kimg).
  config.ema = ml_collections.ConfigDict()
  config.ema.half_life_images = 20_000  # StyleGAN2: 10k images per 32 of batch.
  config.ema.rampup = 0.05  # Half-life at most this fraction of the images seen; 0 = none.

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 1000  # Metrics of EMA samples in TensorBoard; 0 turns them off.
  config.eval.num_samples = 5000  # Generated images per evaluation.
  config.eval.reference_split = "train"  # Real images the samples are compared with.
  # Reference images used from that split; None = all (Inception on CPU: ~0.2 s an image).
  config.eval.num_reference = ml_collections.FieldReference(None, field_type=int)
  # Feature space of FD/KID/precision-recall: "classifier" (pgen's Fashion-MNIST classifier,
  # 32x32 only) or "inception" (the standard FID Inception-v3, pool3; needs the weights).
  config.eval.feature_extractor = "classifier"
  # Local path of pt_inception-2015-12-05-6726825d.pth (README, Evaluation says where to get it).
  config.eval.inception_weights = ml_collections.FieldReference(None, field_type=str)

  config.log_every_steps = 100
  config.sample_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3  # Newest checkpoints kept; older ones are deleted.
  config.num_sample_images = 100  # Images in the fixed-latent sample grid.
  config.profile_steps = 0  # >0: write a profiler trace of that many steps on process 0.

  if variant == "smoke":
    config.total_steps = 6
    config.batch_size = 16
    config.model.latent_dim = 16
    config.model.g_width = 8
    config.model.d_width = 8
    config.data.shuffle_buffer = 256
    config.log_every_steps = 2
    config.sample_every_steps = 3
    config.checkpoint_every_steps = 3
    config.num_sample_images = 16
    config.eval.every_steps = 0
    config.eval.num_samples = 200
    config.eval.reference_split = "test"
  elif variant:
    raise ValueError(f"Unknown config variant {variant!r}; the only variant is 'smoke'.")
  return config
