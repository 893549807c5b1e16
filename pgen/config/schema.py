"""Every key pgen reads, declared once, and the rules that read several keys: the keys of
the run, data, objective, augmentation, feedback, evaluation and recovery here; the model
families declare theirs (pgen/models/). pgen.config fills in and checks a config by them.
"""

import ml_collections

from pgen import data, models
from pgen.core.config_keys import Key, above_up_to, at_least, between, by_name, greater_than, one_of
from pgen.data import options as data_options
from pgen.gan import augment, losses

# The config_version this pgen writes; configs without one are version 1. No default has
# changed since versions began, so a config of any version up to this one gets today's
# defaults for the keys it lacks. `resolve` refuses configs of a newer pgen. Version 4 added
# init.from and the model options of the official networks (minibatch_std_form,
# stored_noise_const, d_mapping_layers, resample_border).
VERSION = 4
# Keys an older pgen wrote under another name (version 3 renamed the first), read under
# today's: the same setting, so their runs load and train on.
RENAMED = {"model.conv_as_matmul": "model.grouped_conv_dense"}


def _distinct_names(keys) -> str | None:
  if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
    return "must name distinct features, e.g. (\"label\", \"colour\")"
  return None


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


_RUN_KEYS = (
    Key("config_version", VERSION, "Of the pgen that wrote the config (see VERSION)."),
    Key("seed", 0, "Seeds parameters, latents and the data order.", at_least(0)),
    Key("total_steps", 5000, "Generator updates; a resumed run continues up to this.",
        at_least(1)),
    Key("batch_size", 64, "Global batch: divided over processes, then devices.", at_least(1)),
)

_DATA_KEYS = (
    Key("data.name", "fashion_mnist",
        "A TFDS name, or a dataset made by `python -m pgen prepare`."),
    Key("data.split", "train", "The TFDS split trained on."),
    Key("data.resolution", 32,
        "A side or (height, width), e.g. (64, 48); the models need sides like 32, 64, "
        "(64, 48).", _resolution, kind=object),
    Key("data.resize", "pad",
        "How images get that shape: \"pad\" (keep the aspect, fit inside, fill with "
        "pad_value), \"crop\" (keep the aspect, fill, cut the overflow evenly) or \"stretch\" "
        "(ignore the aspect).", one_of(data_options.RESIZE_MODES)),
    Key("data.upscale", False,
        "\"pad\" only: enlarge smaller images too (False: centre them as is)."),
    Key("data.resize_filter", "bilinear",
        "tf.image.resize filter, antialiased when shrinking; FID depends on it, and the run "
        "record keeps it. Fashion-MNIST's 28x28 images fit in 32x32 and are never resized.",
        one_of(data_options.RESIZE_FILTERS)),
    Key("data.pad_value", 0,
        "Grey level of the padding; Fashion-MNIST's background is black.", between(0, 255)),
    Key("data.label_key", "label", "The ClassLabel feature that is the class; \"\" for none."),
    Key("data.label_keys", (),
        "ClassLabel features conditioned on jointly, e.g. (\"label\", \"colour\") from "
        "`prepare --labels` with a colour column: each combination is a class "
        "(\"label=dress,colour=red\"), embedded per attribute. Empty: data.label_key alone.",
        _distinct_names),
    Key("data.data_dir", None, "The TFDS data_dir; None = TFDS's default.", kind=str),
    Key("data.manual_dir", "/usr/share/datasets/fashion-mnist",
        "Where the four original IDX files are looked for when preparing Fashion-MNIST "
        "offline."),
    Key("data.download", True, "Try the normal TFDS download when no local files are found."),
    Key("data.shuffle_buffer", 60_000, "Whole dataset: a full shuffle each epoch.",
        at_least(1)),
    Key("data.cache", "auto",
        "Kept in memory: \"decoded\" (resized uint8 images; each process decodes every image "
        "once), \"encoded\" (the records), \"none\"; \"auto\": decoded if that fits in "
        "cache_max_mb, else encoded if that fits, else none.", one_of(data_options.CACHE_MODES)),
    Key("data.cache_max_mb", 1024, "Memory that data.cache=\"auto\" may fill.", at_least(0)),
    Key("data.synthetic_channels", 3,
        "data.name=\"synthetic\": random batches made on the device from the seed (no input "
        "pipeline, no TensorFlow), to measure the train step alone; of these channels.",
        one_of((1, 3))),
    Key("data.synthetic_classes", 10, "Classes of data.name=\"synthetic\"; 0 = unlabelled.",
        at_least(0)),
)

_OBJECTIVE_KEYS = (
    Key("loss.name", "nonsaturating",
        "Or \"hinge\", \"wasserstein\", \"least_squares\", \"relativistic_pairing\" (RpGAN: "
        "R3GAN's, with R1 and R2) or \"relativistic_average\" (RaGAN); see pgen/gan/losses.py.",
        one_of(losses.LOSSES)),
    Key("loss.r1_weight", 0.0,
        "R1 penalty on real images (gamma; StyleGAN2 uses 0.01-10 by resolution); 0 = off.",
        at_least(0.0)),
    Key("loss.r2_weight", 0.0,
        "R2 penalty on generated images (gamma; R3GAN sets it equal to R1's); 0 = off.",
        at_least(0.0)),
    Key("loss.r1_every", 16, "Lazy R1 and R2: every k steps, weighted by k (StyleGAN2); 1 = "
        "every step (R3GAN).", at_least(1)),
    Key("loss.gp_weight", 0.0, "WGAN-GP gradient penalty (lambda, 10 in the paper); 0 = off.",
        at_least(0.0)),
    Key("loss.acgan_weight", 1.0, "Weight of the class cross-entropy with conditioning=\"acgan\".",
        at_least(0.0)),
    Key("loss.pl_weight", 0.0,
        "StyleGAN2's path-length regularization of G (weight 2 in the paper; stylegan2 only); "
        "0 = off.", at_least(0.0)),
    Key("loss.pl_every", 4, "Lazy path length: every k generator steps, weighted by k.",
        at_least(1)),
    Key("loss.pl_batch_shrink", 2, "The path-length batch is batch_size / this.", at_least(1)),
    Key("loss.pl_decay", 0.01, "Of the running mean of path lengths the penalty centres on.",
        between(0.0, 1.0)),
    Key("loss.lazy_regularization", "joint",
        "How the lazy regularizers (R1, path length) act on their k-th steps: \"joint\" (added "
        "to that step's loss: one optimizer step) or \"separate\" (StyleGAN2: an optimizer "
        "step of their own, with that network's Adam learning rate and betas scaled to "
        "c = k / (k + 1)).", one_of(("joint", "separate"))),
    Key("optim.g_learning_rate", 2e-4, "Adam learning rate of G.", at_least(0.0)),
    Key("optim.d_learning_rate", 2e-4,
        "TTUR: e.g. 4e-4 with g 1e-4 for hinge + spectral norm.", at_least(0.0)),
    Key("optim.g_betas", (0.5, 0.999), "Adam (b1, b2) of G.", _betas),
    Key("optim.d_betas", (0.5, 0.999), "Adam (b1, b2) of D; SNGAN uses (0.0, 0.9).", _betas),
    Key("optim.d_steps", 1, "Discriminator updates per generator update, each on new reals.",
        at_least(1)),
)

# Differentiable augmentation of everything D sees, real and fake (DiffAugment / ADA), and
# the EMA of the generator weights, which samples and evaluation use.
_AUGMENT_AND_EMA_KEYS = (
    Key("augment.policy", (),
        "DiffAugment: any of (\"translation\", \"cutout\", \"color\") (or "
        "\"translation,cutout\"); or ADA's pipeline by its groups, \"bgc\" (b: flips, "
        "90-degree turns, integer shifts; g: scaling, rotation, fractional shifts; c: "
        "colour); () = off.", augment.check_policy, kind=object),
    Key("augment.probability", 1.0,
        "Chance each transform hits an image (start value with ADA).", between(0.0, 1.0)),
    Key("augment.ada_target", 0.0,
        "ADA: > 0 adapts the probability so that E[sign(D(real))] stays near this (0.6); "
        "0 = fixed.", between(0.0, 1.0)),
    Key("augment.ada_interval", 4, "D updates between ADA's adjustments.", at_least(1)),
    Key("augment.ada_kimg", 100,
        "Thousands of images for ADA's probability to go from 0 to 1.", at_least(1e-3)),
    Key("augment.hflip", False,
        "Mirror real images at random: off by default, product photos carry text and logos."),
    Key("ema.half_life_images", 20_000,
        "Half-life of the EMA generator (StyleGAN2's ema_kimg: 10k images per 32 of batch).",
        at_least(0.0)),
    Key("ema.rampup", 0.05, "Half-life at most this fraction of the images seen; 0 = none.",
        at_least(0.0)),
)

# Cosine schedules over training images (pgen/gan/schedules.py; R3GAN's recipe): each value
# starts at its own key's and ends where these say.
_SCHEDULE_KEYS = (
    Key("schedule.images", 0,
        "Training images over which the scheduled values move (half a cosine); 0 = none move.",
        at_least(0)),
    Key("schedule.learning_rate_end", 1.0,
        "Both learning rates end at this fraction of optim.*_learning_rate (R3GAN: 0.25).",
        above_up_to(0.0, 1.0)),
    Key("schedule.gamma_end", 1.0,
        "R1's and R2's gamma end at this fraction of loss.r1_weight / r2_weight (R3GAN: 0.1).",
        above_up_to(0.0, 1.0)),
    Key("schedule.beta2_end", 0.0,
        "Both Adams' beta2 move from optim.*_betas[1] to this (R3GAN: 0.9 -> 0.99); 0 = "
        "constant.", between(0.0, 1.0)),
    Key("schedule.ema_from_zero", False,
        "The EMA half-life grows from 0 to ema.half_life_images (R3GAN)."),
    Key("schedule.augment_from_zero", False,
        "The augmentation probability grows from 0 to augment.probability (R3GAN; not with "
        "ADA)."),
)

# Fine-tuning towards what reviewers accept (pgen/feedback/acceptance.py; docs/feedback.md).
_FEEDBACK_KEYS = (
    Key("feedback.acceptance", None,
        "An acceptance model (`python -m pgen feedback fit`'s --out): G's loss gains "
        "-feedback.weight x the mean log P(accept) of its samples, the model frozen.", kind=str),
    Key("feedback.weight", 0.0, "Weight of that reward term; > 0 needs feedback.acceptance.",
        at_least(0.0)),
)

_EVAL_KEYS = (
    Key("eval.every_steps", 1000, "Metrics of EMA samples in TensorBoard; 0 turns them off.",
        at_least(0)),
    Key("eval.num_samples", 5000, "Generated images per evaluation.", at_least(2)),
    Key("eval.reference_split", "train", "Real images the samples are compared with."),
    Key("eval.num_reference", None,
        "Reference images used from that split; None = all (Inception on CPU: ~0.2 s an "
        "image).", at_least(2), kind=int),
    Key("eval.feature_extractor", "classifier",
        "Feature space of FD/KID/precision-recall: \"classifier\" (pgen's Fashion-MNIST "
        "classifier, Fashion-MNIST at 32x32 only), \"catalog\" (a classifier of the run's "
        "own dataset, trained on first use and cached; gives accuracy per attribute of "
        "conditional samples) or \"inception\" (the standard FID Inception-v3, pool3; needs "
        "the weights).", one_of(("classifier", "catalog", "inception"))),
    Key("eval.inception_weights", None,
        "Local path of pt_inception-2015-12-05-6726825d.pth (docs/evaluation.md says where to "
        "get it).", kind=str),
)

# Where a new run's weights start (pgen/training/init_from.py).
_INIT_KEYS = (
    Key("init.from", None,
        "A pgen workdir (its latest checkpoint, or PATH:STEP) or export whose G, D and EMA "
        "weights a new run starts from where names and shapes match (the rest fresh; the "
        "optimizer, step and ADA start fresh); same model family and resolution. Read only "
        "when the workdir has no checkpoint.", kind=str),
)

# What the run does when training fails (pgen/training/recovery.py).
_TRAIN_KEYS = (
    Key("train.on_nonfinite", "stop",
        "A NaN or infinite loss or gradient norm: \"stop\" (an error naming the step) or "
        "\"rollback\" (restore the newest checkpoint and resume at the failed step, skipping "
        "the batches that led there).", one_of(("stop", "rollback"))),
    Key("train.on_collapse", "ignore",
        "A collapse that in-training evaluation sees (the thresholds below): \"ignore\", "
        "\"stop\" or \"rollback\".", one_of(("ignore", "stop", "rollback"))),
    Key("train.collapse_fd_ratio", 0.0,
        "Collapse when an evaluation's FD exceeds this times the run's best; 0 = off.",
        lambda v: None if v == 0 or v > 1 else "must be 0 (off) or > 1"),
    Key("train.collapse_min_class_entropy", 0.0,
        "Collapse when the generated class histogram's entropy (nats; pgen's classifier, "
        "log 10 = 2.30 for uniform Fashion-MNIST) falls below this; 0 = off.", at_least(0.0)),
    Key("train.max_rollbacks", 3, "Then the run stops with an error that lists them.",
        at_least(0)),
    Key("train.rollback_lr_scale", 1.0,
        "Both learning rates are multiplied by this per rollback.", above_up_to(0, 1)),
)

_PERIODIC_KEYS = (
    Key("log_every_steps", 100, "Steps between metric logs.", at_least(1)),
    Key("sample_every_steps", 1000, "Steps between sample grids.", at_least(1)),
    Key("checkpoint_every_steps", 1000, "Steps between checkpoints.", at_least(1)),
    Key("keep_checkpoints", 3, "Newest checkpoints kept; older ones are deleted.", at_least(1)),
    Key("num_sample_images", 100, "Images in the fixed-latent sample grid.", at_least(1)),
    Key("profile_steps", 0, ">0: write a profiler trace of that many steps on process 0.",
        at_least(0)),
    Key("peak_tflops", None,
        "Dense peak TFLOP/s of one device for `mfu`; None: pgen.training.performance's table by "
        "device kind.", greater_than(0.0), kind=float),
    Key("deterministic", False,
        "Reproducibility over speed: on GPUs XLA's deterministic ops (slower scatter and "
        "reductions; see docs/scaling.md). CPU and TPU runs are deterministic "
        "already."),
)

# Every key, by its dotted name.
KEYS = by_name((*_RUN_KEYS, *_DATA_KEYS, *models.config_keys(), *_OBJECTIVE_KEYS,
                *_AUGMENT_AND_EMA_KEYS, *_SCHEDULE_KEYS, *_FEEDBACK_KEYS, *_EVAL_KEYS,
                *_INIT_KEYS, *_TRAIN_KEYS, *_PERIODIC_KEYS))


def _path_length_batch_divides(config: ml_collections.ConfigDict) -> str | None:
  shrink = config.loss.pl_batch_shrink
  if not config.loss.pl_weight or config.batch_size % shrink == 0:
    return None
  return (f"loss.pl_batch_shrink={shrink} must divide batch_size={config.batch_size} (the "
          "path-length batch is batch_size / it).")


def _synthetic_data_not_evaluated(config: ml_collections.ConfigDict) -> str | None:
  if config.data.name != data.SYNTHETIC or not config.eval.every_steps:
    return None
  return ("data.name='synthetic' has no real images to evaluate against; set "
          "eval.every_steps=0 (synthetic data measures the train step alone).")


# Rules that read several keys, run in order once every key is in range.
def _schedules_have_a_length(config: ml_collections.ConfigDict) -> str | None:
  schedule = config.schedule
  moved = [name for name, unmoved in (("learning_rate_end", 1.0), ("gamma_end", 1.0),
                                      ("beta2_end", 0.0), ("ema_from_zero", False),
                                      ("augment_from_zero", False))
           if schedule[name] != unmoved]
  if schedule.images > 0 or not moved:
    return None
  return (f"schedule.{moved[0]}={schedule[moved[0]]!r} moves a value over schedule.images, "
          "which is 0; set schedule.images to the training images the schedule spans (e.g. "
          "total_steps x batch_size).")


def _augment_schedule_without_ada(config: ml_collections.ConfigDict) -> str | None:
  if not config.schedule.augment_from_zero or (
      config.augment.policy and not config.augment.ada_target):
    return None
  return ("schedule.augment_from_zero needs an augment.policy with a fixed probability "
          f"(augment.policy={config.augment.policy!r}, augment.ada_target="
          f"{config.augment.ada_target}); set a policy and ada_target=0, or turn the schedule "
          "off.")


def _feedback_weight_and_model_together(config: ml_collections.ConfigDict) -> str | None:
  feedback = config.feedback
  if (feedback.weight > 0) == (feedback.acceptance is not None):
    return None
  if feedback.acceptance is None:
    return (f"feedback.weight={feedback.weight} rewards what an acceptance model accepts, but "
            "feedback.acceptance is not set; give the directory `python -m pgen feedback fit` "
            "wrote.")
  return (f"feedback.acceptance={feedback.acceptance!r} is set but feedback.weight is 0, so it "
          "would change nothing; set feedback.weight (e.g. 1.0).")


RULES = (*models.config_rules(), _path_length_batch_divides, _synthetic_data_not_evaluated,
         _schedules_have_a_length, _augment_schedule_without_ada,
         _feedback_weight_and_model_together)
