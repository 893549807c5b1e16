"""StyleGAN2-ADA's official networks (NVlabs/stylegan2-ada-pytorch, `training/networks.py`)
in pgen: the config of the pgen StyleGAN2 that computes the same functions, and the
official weights as its variables.

    config = pgen.config.resolve(official_stylegan2.config(g_kwargs, d_kwargs, defaults()))
    image_shape, num_classes = official_stylegan2.data_shape(g_kwargs)
    generator, discriminator = models.build_models(config, image_shape, num_classes)
    g_variables = official_stylegan2.generator_variables(config, g_state)
    d_variables = official_stylegan2.discriminator_variables(config, d_state)
    ws = generator.apply(g_variables, z, labels, method="map_latents")   # G.mapping(z, c)
    images = generator.apply(g_variables, z, labels, truncation_psi=0.7)  # noise_mode const
    logits, _ = discriminator.apply(d_variables, images, labels)          # D(img, c)[:, 0]

`g_kwargs` / `d_kwargs` are the official Generator's and Discriminator's constructor
kwargs (a pickle's `init_kwargs`), `g_state` / `d_state` their state_dict()s as numpy arrays
by official name. Images are NHWC here and NCHW there; labels are class indices where the
official c is their one-hot row.

The official weights are stored before their run-time gains, as pgen's are, so most
tensors only change layout. What differs: the official up-sampling convolutions (each
block's conv0) convolve where pgen correlates (their kernels are mirrored); D's dense layer
after the last convolution flattens NCHW (its rows reordered for NHWC); the single `w_avg`
becomes the row of every class (pgen keeps one per class, which truncation pulls towards);
the `noise_const` buffers become the generator's batch_stats (model.stored_noise_const); D's
minibatch stddev is the official layer (model.minibatch_std_form="stylegan2_ada").
"""

from collections.abc import Mapping

import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen import models
from pgen.models.official import (Converted, OfficialState, WeightsMismatchError, assemble,
                                  expected_shapes, read_kwargs, square_side)

# Official settings that change precision or training only, not the function.
_PRECISION_AND_TRAINING = ("num_fp16_res", "fp16_channels_last", "freeze_layers", "w_avg_beta")
_LRELU = {"activation": "lrelu", "resample_filter": [1, 3, 3, 1]}


def _mapping_settings(kwargs: Mapping, where: str) -> dict:
  return read_kwargs(kwargs, where, read=("num_layers", "lr_multiplier", "embed_features",
                                          "layer_features"),
                     fixed={"activation": "lrelu"}, ignored=_PRECISION_AND_TRAINING)


def _generator_settings(kwargs: Mapping) -> dict:
  """The official Generator's settings that pgen's config holds, checked."""
  where = "the official Generator's kwargs"
  settings = read_kwargs(kwargs, where, required=(
      "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"),
      read=("mapping_kwargs", "synthesis_kwargs"))
  synthesis = read_kwargs(
      settings.get("synthesis_kwargs", {}), f"{where} synthesis_kwargs",
      read=("channel_base", "channel_max", "conv_clamp"),
      fixed={"architecture": "skip", "use_noise": True, "kernel_size": 3, **_LRELU},
      ignored=_PRECISION_AND_TRAINING)
  mapping = _mapping_settings(settings.get("mapping_kwargs", {}), f"{where} mapping_kwargs")
  for name in ("embed_features", "layer_features"):
    if mapping.get(name) not in (None, settings["w_dim"]):
      raise WeightsMismatchError(f"{where}: mapping_kwargs {name}={mapping[name]} is not "
                                 f"supported; pgen's mapping layers are w_dim wide.")
  return {**settings, **synthesis, "mapping_layers": mapping.get("num_layers", 8),
          "lr_multiplier": mapping.get("lr_multiplier", 0.01)}


def _discriminator_settings(kwargs: Mapping) -> dict:
  """The official Discriminator's settings that pgen's config holds, checked."""
  where = "the official Discriminator's kwargs"
  settings = read_kwargs(kwargs, where, required=("c_dim", "img_resolution", "img_channels"),
                         read=("channel_base", "channel_max", "conv_clamp", "cmap_dim",
                               "block_kwargs", "mapping_kwargs", "epilogue_kwargs"),
                         fixed={"architecture": "resnet"}, ignored=_PRECISION_AND_TRAINING)
  channels_at_4 = min(settings.get("channel_base", 32768) // 4, settings.get("channel_max", 512))
  if settings.get("cmap_dim") not in (None, channels_at_4):
    raise WeightsMismatchError(f"{where}: cmap_dim={settings['cmap_dim']} is not supported; "
                               f"pgen projects onto the last block's {channels_at_4} channels.")
  read_kwargs(settings.get("block_kwargs", {}), f"{where} block_kwargs", fixed=_LRELU,
              ignored=_PRECISION_AND_TRAINING)
  epilogue = read_kwargs(settings.get("epilogue_kwargs", {}), f"{where} epilogue_kwargs",
                         read=("mbstd_group_size",),
                         fixed={"mbstd_num_channels": 1, "activation": "lrelu"})
  if epilogue.get("mbstd_group_size", 4) is None:
    raise WeightsMismatchError(f"{where}: epilogue_kwargs mbstd_group_size=None (the whole "
                               "batch) is not supported; pgen's groups have a fixed size.")
  mapping = _mapping_settings(settings.get("mapping_kwargs", {}), f"{where} mapping_kwargs")
  return {**settings, "mbstd_group_size": epilogue.get("mbstd_group_size", 4),
          "mapping_layers": mapping.get("num_layers", 8),
          "lr_multiplier": mapping.get("lr_multiplier", 0.01)}


def _shared(g: dict, d: dict, name: str, default=None):
  """A setting pgen's config holds once for both networks: theirs must agree."""
  value = g.get(name, default)
  if d.get(name, default) != value:
    raise WeightsMismatchError(
        f"The official Generator has {name}={value!r} and the Discriminator "
        f"{name}={d.get(name, default)!r}; pgen's config holds one value for both.")
  return value


def config(generator_kwargs: Mapping, discriminator_kwargs: Mapping,
           base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `base` (a complete config: pgen.config.defaults(), or a configs/*.py file's)
  whose model keys and data.resolution describe the official networks of these constructor
  kwargs; pass it through pgen.config.resolve. Raises WeightsMismatchError for official
  settings pgen has no equivalent of, naming them. The training keys stay `base`'s."""
  g = _generator_settings(generator_kwargs)
  d = _discriminator_settings(discriminator_kwargs)
  for name in ("c_dim", "img_resolution", "img_channels"):
    _shared(g, d, name)
  result = base.copy_and_resolve_references()
  model = result.model
  model.name = "stylegan2"
  model.latent_dim = g["z_dim"]
  model.w_dim = g["w_dim"]
  model.mapping_layers = g["mapping_layers"]
  # D's label mapping shares the rate (an unconditional D has none).
  model.mapping_lr_multiplier = float(
      _shared(g, d, "lr_multiplier") if g["c_dim"] else g["lr_multiplier"])
  model.d_mapping_layers = d["mapping_layers"] if g["c_dim"] else 0
  model.channel_base = _shared(g, d, "channel_base", 32768)
  model.channel_max = _shared(g, d, "channel_max", 512)
  model.conv_clamp = float(_shared(g, d, "conv_clamp") or 0.0)
  model.minibatch_std = d["mbstd_group_size"]
  model.minibatch_std_form = "stylegan2_ada"
  model.stored_noise_const = True
  model.conditioning = "projection" if g["c_dim"] else "none"
  model.g_spectral_norm = model.d_spectral_norm = False
  result.data.resolution = g["img_resolution"]
  return result


def data_shape(generator_kwargs: Mapping) -> tuple[tuple[int, int, int], int]:
  """((height, width, channels), number of classes) of the official generator's images."""
  g = _generator_settings(generator_kwargs)
  side = g["img_resolution"]
  return (side, side, g["img_channels"]), g["c_dim"]


def _dense(tensors: OfficialState, official: str, path: tuple, bias: bool = True) -> dict:
  """A FullyConnectedLayer's weight and bias at `path` of "params"."""
  converted = {("params", *path, "kernel"): tensors.dense(f"{official}.weight")}
  if bias:
    converted[("params", *path, "bias")] = tensors.same(f"{official}.bias")
  return converted


def _conv(tensors: OfficialState, official: str, path: tuple, bias: bool = True) -> dict:
  """A Conv2dLayer (D's layers) at `path` of "params"; its filter buffer checked."""
  tensors.check_filter(f"{official}.resample_filter")
  converted = {("params", *path, "kernel"): tensors.conv(f"{official}.weight")}
  if bias:
    converted[("params", *path, "bias")] = tensors.same(f"{official}.bias")
  return converted


def _mapping(tensors: OfficialState, path: tuple) -> dict:
  """A MappingNetwork's label embedding (if any) and its fc0, fc1, ... (as many as the
  official one has: a different count than pgen's shows up in `assemble`)."""
  names = ["embed"] if tensors.has("mapping.embed.weight") else []
  count = 0
  while tensors.has(f"mapping.fc{count}.weight"):
    count += 1
  converted = {}
  for name in names + [f"fc{i}" for i in range(count)]:
    converted.update(_dense(tensors, f"mapping.{name}", (*path, name)))
  return converted


def _synthesis_layer(tensors: OfficialState, official: str, path: tuple, up: bool) -> dict:
  """A SynthesisLayer: its style affine, (mirrored, if upsampling) weight, noise strength,
  bias and noise_const buffer."""
  tensors.check_filter(f"{official}.resample_filter")
  params = ("params", *path)
  return {**_dense(tensors, f"{official}.affine", (*path, "affine")),
          params + ("kernel",): tensors.conv(f"{official}.weight", flip=up),
          params + ("noise_strength",): tensors.same(f"{official}.noise_strength"),
          params + ("bias",): tensors.same(f"{official}.bias"),
          ("batch_stats", *path, "noise_const"): tensors.same(f"{official}.noise_const")}


def _synthesis(tensors: OfficialState, resolution: int) -> dict:
  """The synthesis network: the const input, then per block b4, b8, ... its layers and
  toRGB (pgen's b{res}x{res}_conv0, _conv1, _torgb)."""
  const = tensors.take("synthesis.b4.const")
  converted = {("params", "synthesis", "const"): Converted(const.transpose(1, 2, 0),
                                                           "synthesis.b4.const")}
  res = 4
  while res <= resolution:
    block, name = f"synthesis.b{res}", f"b{res}x{res}"
    tensors.check_filter(f"{block}.resample_filter")
    for conv in ("conv0", "conv1") if res > 4 else ("conv1",):
      converted.update(_synthesis_layer(tensors, f"{block}.{conv}",
                                        ("synthesis", f"{name}_{conv}"), up=conv == "conv0"))
    converted.update(_dense(tensors, f"{block}.torgb.affine",
                            ("synthesis", f"{name}_torgb", "affine")))
    converted.update({
        ("params", "synthesis", f"{name}_torgb", "kernel"): tensors.conv(
            f"{block}.torgb.weight"),
        ("params", "synthesis", f"{name}_torgb", "bias"): tensors.same(f"{block}.torgb.bias")})
    res *= 2
  return converted


def _num_classes(config: ml_collections.ConfigDict, tensors: OfficialState) -> int:
  """The classes of the label embedding a conditional config needs (0: unconditional; a
  state with an embedding then leaves it over)."""
  if config.model.conditioning == "none":
    return 0
  return tensors.shape("mapping.embed.weight")[1]


def generator_variables(config: ml_collections.ConfigDict,
                        state: Mapping[str, np.ndarray]) -> dict:
  """pgen's generator variables ({"params", "batch_stats"}) holding the official
  Generator's `state` (its state_dict, numpy arrays by official name), for the generator
  that models.build_models makes from `config` (see `config`)."""
  side = square_side(config, "stylegan2", "StyleGAN2-ADA")
  tensors = OfficialState(state, "StyleGAN2-ADA generator")
  channels = tensors.shape("synthesis.b4.torgb.weight")[0]
  num_classes = _num_classes(config, tensors)
  generator, _ = models.build_models(config, (side, side, channels), num_classes)
  labels = jnp.zeros((1,), jnp.int32) if num_classes else None
  expected = expected_shapes(generator, jnp.zeros((1, config.model.latent_dim)), labels)
  converted = {**_mapping(tensors, ("mapping",)), **_synthesis(tensors, side)}
  w_avg = tensors.take("mapping.w_avg")
  converted[("batch_stats", "mapping", "w_avg")] = Converted(
      np.tile(w_avg, (max(num_classes, 1), 1)), "mapping.w_avg")
  tensors.finish()
  return assemble(expected, converted, "generator")


def _discriminator_params(tensors: OfficialState, side: int) -> dict:
  """fromRGB, the residual blocks b{side} ... b8 and the epilogue b4 (pgen's from_rgb,
  b{res}x{res}, epilogue_conv, epilogue_fc, out)."""
  converted = _conv(tensors, f"b{side}.fromrgb", ("from_rgb",))
  res = side
  while res > 4:
    block, name = f"b{res}", f"b{res}x{res}"
    tensors.check_filter(f"{block}.resample_filter")
    converted.update(_conv(tensors, f"{block}.conv0", (name, "conv0")))
    converted.update(_conv(tensors, f"{block}.conv1", (name, "conv1")))
    converted.update(_conv(tensors, f"{block}.skip", (name, "skip"), bias=False))
    res //= 2
  converted.update(_conv(tensors, "b4.conv", ("epilogue_conv",)))
  fc = tensors.take("b4.fc.weight")  # [out, C * 4 * 4], flattened from NCHW.
  channels = fc.shape[1] // 16
  kernel = fc.reshape(-1, channels, 4, 4).transpose(2, 3, 1, 0).reshape(16 * channels, -1)
  converted[("params", "epilogue_fc", "kernel")] = Converted(kernel, "b4.fc.weight")
  converted[("params", "epilogue_fc", "bias")] = tensors.same("b4.fc.bias")
  converted.update(_dense(tensors, "b4.out", ("out",)))
  return converted


def discriminator_variables(config: ml_collections.ConfigDict,
                            state: Mapping[str, np.ndarray]) -> dict:
  """pgen's discriminator variables ({"params"}) holding the official Discriminator's
  `state` (its state_dict, numpy arrays by official name), for the discriminator that
  models.build_models makes from `config` (see `config`)."""
  side = square_side(config, "stylegan2", "StyleGAN2-ADA")
  tensors = OfficialState(state, "StyleGAN2-ADA discriminator")
  channels = tensors.shape(f"b{side}.fromrgb.weight")[1]
  num_classes = _num_classes(config, tensors)
  _, discriminator = models.build_models(config, (side, side, channels), num_classes)
  labels = jnp.zeros((1,), jnp.int32) if num_classes else None
  expected = expected_shapes(discriminator, jnp.zeros((1, side, side, channels)), labels)
  converted = _discriminator_params(tensors, side)
  converted.update(_mapping(tensors, ("label_mapping",)))
  tensors.finish()
  return assemble(expected, converted, "discriminator")
