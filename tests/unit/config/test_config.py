"""The config layer: defaults filled in, every key checked once at load, old configs load."""

import importlib
import json
import os

import ml_collections
import pytest
from conftest import ROOT, TESTS_DIR

from pgen import config as config_lib, models
from pgen.configs import fashion_mnist_dcgan
from pgen.core import config_keys
from pgen.errors import ConfigError

V1_CONFIG = os.path.join(TESTS_DIR, "data", "v1_workdir", "config.json")


def _override(**flat):
  """The default config with `flat` ({"model.name": ...}) set, as a plain dict (a config
  file or a config.json can hold values of any type)."""
  tree = fashion_mnist_dcgan.get_config().to_dict()
  for key, value in flat.items():
    *sections, name = key.split(".")
    node = tree
    for section in sections:
      node = node[section]
    node[name] = value
  return tree


def test_every_shipped_config_resolves_and_is_locked():
  configs_dir = os.path.join(ROOT, "pgen", "configs")
  names = sorted(f[:-3] for f in os.listdir(configs_dir) if f.endswith(".py") and f[0] != "_")
  assert len(names) >= 8
  for name in names:
    module = __import__(f"pgen.configs.{name}", fromlist=["get_config"])
    for variant in ("", "smoke"):
      config = config_lib.resolve(module.get_config(variant))
      assert config.config_version == config_lib.VERSION
      with pytest.raises(AttributeError):
        config.new_key = 1  # Locked: a mistyped key cannot be added.


def test_stylegan2_s_small_budget_variant_changes_its_rates_and_drops_path_length_and_ada():
  from pgen.configs import fashion_mnist_stylegan2
  shipped = config_lib.flat(config_lib.resolve(fashion_mnist_stylegan2.get_config()).to_dict())
  fast = config_lib.flat(config_lib.resolve(fashion_mnist_stylegan2.get_config("fast")).to_dict())
  changed = {k: (shipped[k], fast[k]) for k in shipped if shipped[k] != fast[k]}
  assert changed == {"optim.g_learning_rate": (0.0025, 0.01),
                     "optim.d_learning_rate": (0.0025, 0.01),
                     "loss.pl_weight": (2.0, 0.0), "augment.policy": ("bgc", ()),
                     "augment.ada_target": (0.6, 0.0)}
  with pytest.raises(ValueError, match="Unknown config variant 'fats'; choose 'smoke' or 'fast'"):
    fashion_mnist_stylegan2.get_config("fats")


@pytest.mark.parametrize("module, variants", [
    ("fashion_mnist_dcgan", "'smoke' or 'classic'"), ("fashion_mnist_r3gan", "'smoke'"),
    ("cifar10_dcgan", "'smoke'")])
def test_an_unknown_variant_is_refused_with_the_config_s_own_variants(module, variants):
  config_module = importlib.import_module(f"pgen.configs.{module}")
  with pytest.raises(ValueError, match=f"Unknown config variant 'fats'; choose {variants}\\.$"):
    config_module.get_config("fats")


@pytest.mark.parametrize("flat, message", [
    ({"model.name": "vae"},
     r"model.name='vae' is unknown; choose one of \('dcgan', 'resnet', 'stylegan2', 'r3gan'\)"),
    ({"model.conditioning": "concat"}, r"model.conditioning='concat' is unknown; choose one of"),
    ({"model.d_spectral_norm": 1}, r"model.d_spectral_norm=1 must be True or False"),
    ({"model.minibatch_std": -1}, r"model.minibatch_std=-1 must be an integer >= 0"),
    ({"model.minibatch_std": 5}, r"minibatch_std=5 must divide batch_size=64"),
    ({"model.g_width": 0}, r"model.g_width=0 must be an integer >= 1"),
    ({"model.upsample": "bilinear"}, r"model.upsample='bilinear' is unknown; choose one of"),
    ({"model.attention_resolution": 16}, r"attention_resolution=16 is only supported by .*resnet"),
    ({"augment.policy": ("translation", "rotate")}, r"unknown transforms \['rotate'\]"),
    ({"loss.name": "relativistic"}, r"loss.name='relativistic' is unknown; choose one of"),
    ({"loss.r1_every": 0}, r"loss.r1_every=0 must be >= 1"),
    ({"optim.d_betas": (0.5,)}, r"optim.d_betas=\(0.5,\) must be two Adam betas"),
    ({"data.resolution": (64, 0)}, r"data.resolution=\(64, 0\) must be a side"),
    ({"data.resize": "fit"}, r"data.resize='fit' is unknown; choose one of"),
    ({"data.pad_value": 300}, r"data.pad_value=300 must be in \[0, 255\]"),
    ({"batch_size": 2.5}, r"batch_size=2.5 must be an integer"),
    ({"total_steps": "10"}, r"total_steps='10' must be an integer"),
    ({"eval.num_reference": "all"}, r"eval.num_reference='all' must be an integer or None"),
    ({"eval.feature_extractor": "clip"}, r"eval.feature_extractor='clip' is unknown"),
    ({"data.resolution": 36}, r"data.resolution=36x36 is not supported by the convolutional"),
    ({"model.name": "resnet", "model.attention_resolution": 12},
     r"attention_resolution=12 is not a feature-map height .* 32x32; .* one of \(8, 16\)"),
    ({"model.name": "stylegan2", "model.g_spectral_norm": True},
     r"model.g_spectral_norm=True is not supported by model.name='stylegan2'"),
    ({"model.name": "stylegan2", "loss.pl_weight": 2.0, "loss.pl_batch_shrink": 3},
     r"loss.pl_batch_shrink=3 must divide batch_size=64"),
    ({"loss.pl_weight": 2.0}, r"loss.pl_weight=2.0 needs model.name='stylegan2'"),
])
def test_bad_values_are_errors_naming_the_key(flat, message):
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(_override(**flat))


# A value of the right type that each rule refuses.
REFUSED = {
    "seed": -1, "total_steps": 0, "batch_size": 0,
    "data.resolution": (48,), "data.resize": "fit", "data.resize_filter": "cubic",
    "data.pad_value": -1, "data.shuffle_buffer": 0, "data.cache": "disk",
    "data.cache_max_mb": -1, "loss.name": "relativistic", "loss.r1_weight": -1.0,
    "loss.r1_every": 0, "loss.r2_weight": -0.5, "loss.gp_weight": -1.0, "loss.acgan_weight": -1.0,
    "optim.g_learning_rate": -1e-4, "optim.d_learning_rate": -1e-4,
    "optim.g_betas": (0.5, 1.0), "optim.d_betas": (0.5, 0.9, 0.1), "optim.d_steps": 0,
    "augment.policy": ("blur",), "augment.probability": 1.5, "augment.ada_target": -0.1,
    "augment.ada_interval": 0, "augment.ada_kimg": 0, "ema.half_life_images": -1,
    "ema.rampup": -0.1, "schedule.images": -1, "schedule.learning_rate_end": 0.0,
    "schedule.gamma_end": 1.5, "schedule.beta2_end": 1.2, "eval.every_steps": -1,
    "eval.num_samples": 1,
    "eval.num_reference": 1, "eval.feature_extractor": "clip", "log_every_steps": 0,
    "sample_every_steps": 0, "checkpoint_every_steps": 0, "keep_checkpoints": 0,
    "num_sample_images": 0, "profile_steps": -1, "peak_tflops": 0.0,
    "data.synthetic_channels": 2, "data.synthetic_classes": -1, "model.dtype": "float16",
    "model.param_dtype": "bfloat16", "model.w_dim": 0, "model.mapping_layers": 0,
    "model.mapping_lr_multiplier": 0.0, "model.channel_base": 0, "model.channel_max": 0,
    "model.conv_clamp": -1.0, "model.style_mixing_probability": 1.1, "loss.pl_weight": -2.0,
    "loss.pl_every": 0, "loss.pl_batch_shrink": 0, "loss.pl_decay": 1.5,
    "loss.lazy_regularization": "sometimes", "train.on_nonfinite": "retry",
    "train.on_collapse": "panic", "train.collapse_fd_ratio": 0.5,
    "train.collapse_min_class_entropy": -1.0, "train.max_rollbacks": -1,
    "train.rollback_lr_scale": 1.5, "model.name": "vae", "model.latent_dim": 0,
    "model.g_width": 0, "model.d_width": 0, "model.max_width": 0,
    "model.conditioning": "concat", "model.minibatch_std": -1,
    "model.attention_resolution": -1, "model.upsample": "bilinear",
    "model.downsample": "avgpool", "model.expansion": 0, "model.cardinality": 0,
    "model.blocks_per_stage": 0, "feedback.weight": -1.0,
    "data.label_keys": ("label", "label"),
    "model.d_mapping_layers": -1, "model.minibatch_std_form": "official",
    "model.resample_border": "reflect",
}


def test_every_rule_refuses_a_value_out_of_its_range_naming_the_key():
  assert REFUSED.keys() == {name for name, key in config_lib.KEYS.items() if key.check}
  for key, value in REFUSED.items():
    with pytest.raises(ConfigError, match=f"^{key.replace('.', '[.]')}="):
      config_lib.resolve(_override(**{key: value}))


def test_every_key_refuses_a_value_of_another_type_naming_the_key():
  defaults = config_lib.defaults().to_dict(preserve_field_references=True)
  for key, default in config_lib.flat(defaults).items():
    kind = default.get_type() if isinstance(default, ml_collections.FieldReference) else type(
        default)
    wrong = 3 if kind in (str, tuple) else "three"
    with pytest.raises(ConfigError, match=f"^{key.replace('.', '[.]')}="):
      config_lib.resolve(_override(**{key: wrong}))


def test_unknown_key_suggests_the_closest():
  with pytest.raises(ConfigError, match=r"model.g_widht is not a pgen config key; did you mean "
                                        r"model.g_width\?"):
    config_lib.resolve(_override(**{"model.g_widht": 8}))


def test_unknown_family_key_suggests_the_closest():
  with pytest.raises(ConfigError, match=r"model.mapping_layer is not a pgen config key; did you "
                                        r"mean model.mapping_layers\?"):
    config_lib.resolve(_override(**{"model.mapping_layer": 2}))


def test_every_key_in_the_defaults_is_declared_with_a_doc():
  assert set(config_lib.flat(config_lib.defaults().to_dict())) == set(config_lib.KEYS)
  undocumented = [name for name, key in config_lib.KEYS.items() if len(key.doc.strip()) < 10]
  assert not undocumented


@pytest.mark.parametrize("family", models.FAMILIES)
def test_a_family_s_own_keys_are_in_the_defaults(family):
  defaults = config_lib.flat(config_lib.defaults().to_dict())
  own = models.family(family).CONFIG_KEYS
  assert own
  for key in own:
    assert config_lib.KEYS[key.name] is key
    assert defaults[key.name] == key.default


@pytest.mark.parametrize("flat, message", [
    ({"model.name": "stylegan2", "model.mapping_layers": 0},
     r"^model[.]mapping_layers=0 must be >= 1[.]$"),
    ({"model.name": "stylegan2", "model.mapping_lr_multiplier": 1.5},
     r"^model[.]mapping_lr_multiplier=1.5 must be in \(0, 1\][.]$"),
    ({"model.downsample": "avgpool"},
     r"^model[.]downsample='avgpool' is unknown; choose one of \('space_to_depth', 'strided'\)"),
    ({"model.name": "resnet", "model.max_width": 0},
     r"^model[.]max_width=0 must be an integer >= 1[.]$"),
])
def test_a_family_key_out_of_range_is_named_with_its_rule(flat, message):
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(_override(**flat))


def test_keys_are_declared_once():
  key = config_lib.KEYS["model.w_dim"]
  with pytest.raises(ValueError, match="model.w_dim is declared twice"):
    config_keys.by_name([key, key])


def test_values_take_their_default_type():
  config = config_lib.resolve(_override(**{"optim.g_betas": [0.0, 0.9], "loss.r1_weight": 1,
                                           "data.resolution": [64, 48]}))
  assert config.optim.g_betas == (0.0, 0.9)
  assert isinstance(config.loss.r1_weight, float)
  assert config.data.resolution == (64, 48)


def test_a_config_json_of_today_s_first_version_loads_complete():
  """A workdir's config.json from before config versions (version 1)."""
  with open(V1_CONFIG) as f:
    raw = json.load(f)
  assert "config_version" not in raw
  config = config_lib.resolve(raw)
  assert config.config_version == config_lib.VERSION
  assert config.model.g_width == 8 and config.optim.g_betas == (0.5, 0.999)


def test_a_key_an_older_pgen_wrote_under_another_name_loads_as_today_s():
  """Version 2 called R3GAN's CPU form of the grouped convolution model.conv_as_matmul."""
  raw = {"config_version": 2, "model": {"name": "r3gan", "conv_as_matmul": True}}
  config = config_lib.resolve(raw)
  assert config.model.grouped_conv_dense is True
  assert "conv_as_matmul" not in config.model


def test_a_config_from_a_newer_pgen_is_refused():
  with pytest.raises(ConfigError, match="a newer pgen wrote this config, so upgrade pgen"):
    config_lib.resolve(_override(config_version=config_lib.VERSION + 1))


def test_resolve_accepts_a_config_dict_and_is_idempotent():
  config = config_lib.resolve(fashion_mnist_dcgan.get_config("smoke"))
  again = config_lib.resolve(config)
  assert again.to_dict() == config.to_dict()
  assert isinstance(again, ml_collections.ConfigDict)
