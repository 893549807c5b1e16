"""pgen's configuration: every key with its default, filled in and checked once, at load.

    config = resolve(get_config())                # a configs/*.py file's ConfigDict
    config = from_workdir("runs/fmnist")          # a run's config.json, from any pgen version

`defaults()` holds every key pgen reads, one comment each; a config file starts from it
and changes what its recipe needs. `resolve` fills in what a config lacks, rejects unknown
keys (naming the closest known one), checks every value's type and range, and returns a
locked ConfigDict, so nothing after it needs `.get(key, default)`. Configs carry
`config_version`: a config.json written before a default changed loads with the default
of its time (`DEFAULTS_OF_VERSION`), so an old run generates and resumes as it trained.
"""

import difflib
import json
import os
from typing import Any, Callable

import ml_collections

from pgen import augment, data, losses, models, recovery
from pgen.data import options as data_options
from pgen.errors import ConfigError, RunNotFoundError
from pgen.evaluation import extractors

# The config_version this pgen writes. Configs without one were written before versions
# existed (version 1).
VERSION = 2

# {version: {key: value}}: defaults as they were before `version` changed them, for configs
# of older versions. Empty while no default has changed since versions began.
DEFAULTS_OF_VERSION: dict[int, dict[str, Any]] = {}


def defaults() -> ml_collections.ConfigDict:
  """Every config key with its default: together, DCGAN on Fashion-MNIST at 32x32."""
  config = ml_collections.ConfigDict()
  config.config_version = VERSION  # Of the pgen that wrote the config; see DEFAULTS_OF_VERSION.
  config.seed = 0  # Seeds parameters, latents and the data order.
  config.total_steps = 5000  # Generator updates; a resumed run continues up to this.
  config.batch_size = 64  # Global batch: divided over processes, then devices.
  config.data = _data_defaults()
  config.model = _model_defaults()
  config.loss, config.optim = _objective_defaults()
  config.augment, config.ema = _augment_and_ema_defaults()
  config.eval = _eval_defaults()
  config.train = _train_defaults()
  config.log_every_steps = 100
  config.sample_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3  # Newest checkpoints kept; older ones are deleted.
  config.num_sample_images = 100  # Images in the fixed-latent sample grid.
  config.profile_steps = 0  # >0: write a profiler trace of that many steps on process 0.
  # Dense peak TFLOP/s of one device for `mfu`; None: pgen.performance's table by device kind.
  config.peak_tflops = ml_collections.FieldReference(None, field_type=float)
  # Reproducibility over speed: on GPUs XLA's deterministic ops (slower scatter and
  # reductions; see README, "On GPUs and TPUs"). CPU and TPU runs are deterministic already.
  config.deterministic = False
  return config


def _data_defaults() -> ml_collections.ConfigDict:
  data = ml_collections.ConfigDict()
  data.name = "fashion_mnist"  # A TFDS name, or a dataset made by `python -m pgen prepare`.
  data.split = "train"
  # A side or (height, width), e.g. (64, 48); the models need sides like 32, 64, (64, 48).
  data.resolution = ml_collections.FieldReference(32, field_type=object)
  # How images get that shape: "pad" (keep the aspect, fit inside, fill with pad_value),
  # "crop" (keep the aspect, fill, cut the overflow evenly) or "stretch" (ignore the aspect).
  data.resize = "pad"
  data.upscale = False  # "pad" only: enlarge smaller images too (False: centre them as is).
  # tf.image.resize filter, antialiased when shrinking; FID depends on it, and the run record
  # keeps it. Fashion-MNIST's 28x28 images fit in 32x32 and are never resized.
  data.resize_filter = "bilinear"
  data.pad_value = 0  # Grey level of the padding; Fashion-MNIST's background is black.
  data.label_key = "label"  # The ClassLabel feature that is the class; "" for none.
  # The TFDS data_dir; None = TFDS's default.
  data.data_dir = ml_collections.FieldReference(None, field_type=str)
  # Where the four original IDX files are looked for when preparing Fashion-MNIST offline.
  data.manual_dir = "/usr/share/datasets/fashion-mnist"
  data.download = True  # Try the normal TFDS download when no local files are found.
  data.shuffle_buffer = 60_000  # Whole dataset: a full shuffle each epoch.
  # Kept in memory: "decoded" (resized uint8 images; each process decodes every image once),
  # "encoded" (the records), "none"; "auto": decoded if that fits in cache_max_mb, else
  # encoded if that fits, else none.
  data.cache = "auto"
  data.cache_max_mb = 1024
  # data.name="synthetic": random batches made on the device from the seed (no input
  # pipeline, no TensorFlow), to measure the train step alone; of these channels and classes.
  data.synthetic_channels = 3
  data.synthetic_classes = 10
  return data


def _model_defaults() -> ml_collections.ConfigDict:
  model = ml_collections.ConfigDict()
  # A family of pgen/models/: "dcgan", "resnet" (slower, stronger) or "stylegan2".
  model.name = "dcgan"
  model.latent_dim = 100
  model.g_width = 64  # Channels of the last generator block; doubled per block towards 4x4.
  model.d_width = 64  # Channels of the first discriminator block; doubled per block.
  model.max_width = 512  # ResNet only: cap on the doubled widths (BigGAN-style at 128px).
  # Class conditioning: "none", "projection" (projection D, the SNGAN/BigGAN choice) or
  # "acgan" (an auxiliary classifier head in D); both give G conditional BatchNorm.
  model.conditioning = "none"
  model.d_spectral_norm = False  # Spectral norm in D: the usual pairing with the hinge loss.
  model.g_spectral_norm = False  # Spectral norm in G too, as BigGAN does.
  # Minibatch stddev group size before D's last block (StyleGAN; against mode collapse); 0 = off.
  model.minibatch_std = 0
  # ResNet only: feature-map height where G and D get SAGAN self-attention; 0 = none.
  model.attention_resolution = 0
  # DCGAN only: how G doubles resolution: "subpixel" (2x2 conv + depth-to-space), "nearest"
  # (upsample + 3x3 conv) or "transpose" (DCGAN's 4x4 stride-2 transposed conv).
  model.upsample = "subpixel"
  # DCGAN only: how D halves it: "space_to_depth" (+ 2x2 conv) or "strided" (DCGAN's 4x4
  # stride-2 conv). Each pair has the same parameters and FLOPs; bench/RESULTS.md has speeds.
  model.downsample = "space_to_depth"
  # What the layers compute in: "float32", or "bfloat16" (mixed precision: parameters,
  # optimizer states and EMA stay float32; losses, logits, normalization statistics,
  # penalties and spectral norm's power iteration are float32).
  model.dtype = "float32"
  model.param_dtype = "float32"  # What parameters are stored in (float32 only, see dtype).
  # StyleGAN2 only (pgen/models/stylegan2.py); latent_dim is its z, minibatch_std its group.
  model.w_dim = 512  # Width of w, the mapping network's output.
  model.mapping_layers = 8  # Dense layers of the mapping network (StyleGAN2-ADA: 2 for small data).
  model.mapping_lr_multiplier = 0.01  # The mapping network learns at 1/100 of the rate.
  # A block of height h has min(channel_base // h, channel_max) channels (config F: 32768, 512).
  model.channel_base = 16384
  model.channel_max = 512
  # Every convolution's output clamped to +-conv_clamp (StyleGAN2-ADA: 256, for reduced
  # precision); 0 = off.
  model.conv_clamp = 0.0
  # Chance that a training batch takes the styles of a second z from a random layer on.
  model.style_mixing_probability = 0.9
  # Modulated convolutions as one grouped convolution over per-sample weights (True), or by
  # scaling activations around one shared convolution (False); the same function.
  model.fused_modconv = False
  return model


def _objective_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """(loss, optim)."""
  loss, optim = ml_collections.ConfigDict(), ml_collections.ConfigDict()
  loss.name = "nonsaturating"  # Or "hinge", "wasserstein", "least_squares" (pgen/losses.py).
  # R1 penalty on real images (gamma; StyleGAN2 uses 0.01-10 by resolution); 0 = off.
  loss.r1_weight = 0.0
  loss.r1_every = 16  # Lazy R1: every k steps, weighted by k (StyleGAN2).
  loss.gp_weight = 0.0  # WGAN-GP gradient penalty (lambda, 10 in the paper); 0 = off.
  loss.acgan_weight = 1.0  # Weight of the class cross-entropy with conditioning="acgan".
  # StyleGAN2's path-length regularization of G (weight 2 in the paper; stylegan2 only); 0 = off.
  loss.pl_weight = 0.0
  loss.pl_every = 4  # Lazy: every k generator steps, weighted by k.
  loss.pl_batch_shrink = 2  # Its batch is batch_size / this.
  loss.pl_decay = 0.01  # Of the running mean of path lengths the penalty centres on.
  # How the lazy regularizers (R1, path length) act on their k-th steps: "joint" (added to
  # that step's loss: one optimizer step) or "separate" (StyleGAN2: an optimizer step of
  # their own, with that network's Adam learning rate and betas scaled to c = k / (k + 1)).
  loss.lazy_regularization = "joint"

  optim.g_learning_rate = 2e-4
  optim.d_learning_rate = 2e-4  # TTUR: e.g. 4e-4 with g 1e-4 for hinge + spectral norm.
  optim.g_betas = (0.5, 0.999)  # Adam (b1, b2) of G.
  optim.d_betas = (0.5, 0.999)  # Adam (b1, b2) of D; SNGAN uses (0.0, 0.9).
  optim.d_steps = 1  # Discriminator updates per generator update, each on new reals.
  return loss, optim


def _augment_and_ema_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """(augment, ema)."""
  # Differentiable augmentation of everything D sees, real and fake (DiffAugment / ADA).
  augment = ml_collections.ConfigDict()
  # DiffAugment: any of ("translation", "cutout", "color") (or "translation,cutout"); or
  # ADA's pipeline by its groups, "bgc" (b: flips, 90-degree turns, integer shifts; g:
  # scaling, rotation, fractional shifts; c: colour); () = off.
  augment.policy = ml_collections.FieldReference((), field_type=object)
  augment.probability = 1.0  # Chance each transform hits an image (start value with ADA).
  # ADA: > 0 adapts the probability so that E[sign(D(real))] stays near this (0.6); 0 = fixed.
  augment.ada_target = 0.0
  augment.ada_interval = 4  # D updates between adjustments.
  augment.ada_kimg = 100  # Thousands of images for the probability to go from 0 to 1.
  # Mirror real images at random: off by default, product photos carry text and logos.
  augment.hflip = False

  # EMA of the generator weights, which samples and evaluation use (StyleGAN2's ema_kimg).
  ema = ml_collections.ConfigDict()
  ema.half_life_images = 20_000  # StyleGAN2: 10k images per 32 of batch.
  ema.rampup = 0.05  # Half-life at most this fraction of the images seen; 0 = none.
  return augment, ema


def _eval_defaults() -> ml_collections.ConfigDict:
  eval_ = ml_collections.ConfigDict()
  eval_.every_steps = 1000  # Metrics of EMA samples in TensorBoard; 0 turns them off.
  eval_.num_samples = 5000  # Generated images per evaluation.
  eval_.reference_split = "train"  # Real images the samples are compared with.
  # Reference images used from that split; None = all (Inception on CPU: ~0.2 s an image).
  eval_.num_reference = ml_collections.FieldReference(None, field_type=int)
  # Feature space of FD/KID/precision-recall: "classifier" (pgen's Fashion-MNIST classifier,
  # Fashion-MNIST at 32x32 only) or "inception" (the standard FID Inception-v3, pool3; needs
  # the weights).
  eval_.feature_extractor = "classifier"
  # Local path of pt_inception-2015-12-05-6726825d.pth (README, Evaluation says where to get it).
  eval_.inception_weights = ml_collections.FieldReference(None, field_type=str)
  return eval_


def _train_defaults() -> ml_collections.ConfigDict:
  """What the run does when training fails (pgen/recovery.py)."""
  train = ml_collections.ConfigDict()
  # A NaN or infinite loss or gradient norm: "stop" (an error naming the step) or
  # "rollback" (restore the newest checkpoint and resume at the failed step, skipping the
  # batches that led there).
  train.on_nonfinite = "stop"
  # A collapse that in-training evaluation sees (the thresholds below): "ignore", "stop" or
  # "rollback".
  train.on_collapse = "ignore"
  # Collapse when an evaluation's FD exceeds this times the run's best; 0 = off.
  train.collapse_fd_ratio = 0.0
  # Collapse when the generated class histogram's entropy (nats; pgen's classifier, log 10
  # = 2.30 for uniform Fashion-MNIST) falls below this; 0 = off.
  train.collapse_min_class_entropy = 0.0
  train.max_rollbacks = 3  # Then the run stops with an error that lists them.
  train.rollback_lr_scale = 1.0  # Both learning rates are multiplied by this per rollback.
  return train


# ---- Checks of single values: each returns None, or what the value must be.

Check = Callable[[Any], str | None]


def at_least(minimum) -> Check:
  return lambda value: None if value >= minimum else f"must be >= {minimum}"


def greater_than(minimum) -> Check:
  return lambda value: None if value > minimum else f"must be > {minimum}"


def between(low, high) -> Check:
  return lambda value: None if low <= value <= high else f"must be in [{low}, {high}]"


def one_of(choices) -> Check:
  return lambda value: None if value in choices else f"is unknown; choose one of {tuple(choices)}"


def _resolution(value) -> str | None:
  try:
    data_options.target_size(value)
  except ValueError:
    return "must be a side (e.g. 64) or (height, width) (e.g. \"(64, 48)\")"
  return None


def _betas(value) -> str | None:
  if len(value) == 2 and all(0.0 <= b < 1.0 for b in value):
    return None
  return "must be two Adam betas (b1, b2), each in [0, 1)"


# Keys without a rule only need a value of their default's type. The model keys every family
# reads, and what a family does not support, are checked by pgen/models/.
RULES: dict[str, Check] = {
    "seed": at_least(0),
    "total_steps": at_least(1),
    "batch_size": at_least(1),
    "data.resolution": _resolution,
    "data.resize": one_of(data_options.RESIZE_MODES),
    "data.resize_filter": one_of(data_options.RESIZE_FILTERS),
    "data.pad_value": between(0, 255),
    "data.shuffle_buffer": at_least(1),
    "data.cache": one_of(data_options.CACHE_MODES),
    "data.cache_max_mb": at_least(0),
    "loss.name": one_of(losses.LOSSES),
    "loss.r1_weight": at_least(0.0),
    "loss.r1_every": at_least(1),
    "loss.gp_weight": at_least(0.0),
    "loss.acgan_weight": at_least(0.0),
    "loss.pl_weight": at_least(0.0),
    "loss.pl_every": at_least(1),
    "loss.pl_batch_shrink": at_least(1),
    "loss.pl_decay": between(0.0, 1.0),
    "loss.lazy_regularization": one_of(("joint", "separate")),
    "optim.g_learning_rate": at_least(0.0),
    "optim.d_learning_rate": at_least(0.0),
    "optim.g_betas": _betas,
    "optim.d_betas": _betas,
    "optim.d_steps": at_least(1),
    "augment.policy": augment.check_policy,
    "augment.probability": between(0.0, 1.0),
    "augment.ada_target": between(0.0, 1.0),
    "augment.ada_interval": at_least(1),
    "augment.ada_kimg": at_least(1e-3),
    "ema.half_life_images": at_least(0.0),
    "ema.rampup": at_least(0.0),
    "eval.every_steps": at_least(0),
    "eval.num_samples": at_least(2),
    "eval.num_reference": at_least(2),
    "eval.feature_extractor": one_of(extractors.EXTRACTORS),
    "log_every_steps": at_least(1),
    "sample_every_steps": at_least(1),
    "checkpoint_every_steps": at_least(1),
    "keep_checkpoints": at_least(1),
    "num_sample_images": at_least(1),
    "profile_steps": at_least(0),
    "peak_tflops": greater_than(0.0),
    "data.synthetic_channels": one_of((1, 3)),
    "data.synthetic_classes": at_least(0),
    "model.dtype": one_of(("float32", "bfloat16")),
    "model.param_dtype": one_of(("float32",)),
    "train.on_nonfinite": one_of(recovery.NONFINITE_POLICIES),
    "train.on_collapse": one_of(recovery.COLLAPSE_POLICIES),
    "train.collapse_fd_ratio": lambda v: None if v == 0 or v > 1 else "must be 0 (off) or > 1",
    "train.collapse_min_class_entropy": at_least(0.0),
    "train.max_rollbacks": at_least(0),
    "train.rollback_lr_scale": lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
    "model.w_dim": at_least(1),
    "model.mapping_layers": at_least(1),
    "model.mapping_lr_multiplier": lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
    "model.channel_base": at_least(1),
    "model.channel_max": at_least(1),
    "model.conv_clamp": at_least(0.0),
    "model.style_mixing_probability": between(0.0, 1.0),
}


def _flat(tree: dict, prefix: str = "") -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      flat.update(_flat(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def _typed_value(key: str, value, default):
  """`value` in the type of `default` (a value, or a FieldReference for keys that may be
  None or of several types): lists become tuples, ints floats where floats are expected;
  else a ConfigError naming `key`."""
  if isinstance(default, ml_collections.FieldReference):
    expected, optional = default.get_type(), default.get() is None
  else:
    expected, optional = type(default), False
  if value is None and optional:
    return None
  if expected is object:  # A union the key's rule checks (data.resolution).
    return tuple(value) if isinstance(value, list) else value
  if expected is tuple and isinstance(value, (tuple, list)):
    return tuple(value)
  if expected is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
    return value
  kind = {bool: "True or False", int: "an integer", float: "a number", str: "a string",
          tuple: "a tuple"}.get(expected, expected.__name__)
  raise ConfigError(f"{key}={value!r} must be {kind}{' or None' if optional else ''}.")


def resolve(config) -> ml_collections.ConfigDict:
  """The complete, checked and locked config for `config` (a ConfigDict or a plain dict,
  e.g. a config.json); raises ConfigError naming the first bad key."""
  given = _flat(config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
  version = given.pop("config_version", 1)
  if not isinstance(version, int) or not 1 <= version <= VERSION:
    raise ConfigError(f"config_version={version!r}: this pgen reads config versions 1 to "
                      f"{VERSION}; a newer pgen wrote this config, so upgrade pgen to use it.")
  result = defaults()
  known = _flat(result.to_dict(preserve_field_references=True))
  for newer in sorted(v for v in DEFAULTS_OF_VERSION if v > version):
    for key, value in DEFAULTS_OF_VERSION[newer].items():
      given.setdefault(key, value)
  for key, value in given.items():
    if key not in known:
      close = difflib.get_close_matches(key, list(known), n=1)
      hint = f"; did you mean {close[0]}?" if close else ""
      raise ConfigError(f"{key} is not a pgen config key{hint} (pgen/config.py lists them all).")
    section, _, name = key.rpartition(".")
    node = result
    for part in filter(None, section.split(".")):
      node = node[part]
    node[name] = _typed_value(key, value, known[key])
  for key, value in _flat(result.to_dict()).items():
    problem = RULES[key](value) if key in RULES and value is not None else None
    if problem:
      raise ConfigError(f"{key}={value!r} {problem}.")
  models.check_config(result)
  if result.data.name == data.SYNTHETIC and result.eval.every_steps:
    raise ConfigError("data.name='synthetic' has no real images to evaluate against; set "
                      "eval.every_steps=0 (synthetic data measures the train step alone).")
  result.lock()
  return result


def from_workdir(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run in `workdir` was (last) started with."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise RunNotFoundError(
        f"{path} is missing: {workdir} is not a pgen training workdir (train writes it at "
        "start). Pass the --workdir of a `python -m pgen train` run.")
  with open(path) as f:
    return resolve(json.load(f))
