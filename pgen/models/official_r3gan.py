"""R3GAN's official networks (brownvc/R3GAN, `training/networks.py` wrapping
`R3GAN/Networks.py`) in pgen: the config of the pgen R3GAN that computes the same
functions, and the official weights as its variables.

    config = pgen.config.resolve(official_r3gan.config(g_kwargs, d_kwargs, defaults()))
    image_shape, num_classes = official_r3gan.data_shape(g_kwargs)
    generator, discriminator = models.build_models(config, image_shape, num_classes)
    g_variables = official_r3gan.generator_variables(config, g_state)   # {"params"}
    d_variables = official_r3gan.discriminator_variables(config, d_state)
    images = generator.apply(g_variables, z, labels)            # G(z, c), NHWC
    logits, _ = discriminator.apply(d_variables, images, labels)  # D(img, c)

`g_kwargs` / `d_kwargs` are the official wrappers' constructor kwargs (NoiseDimension,
WidthPerStage, ..., c_dim, img_resolution), `g_state` / `d_state` their state_dict()s as
numpy arrays by official name (with the wrappers' `Model.` prefix). Labels are class
indices where the official c is their one-hot row.

The layers correspond one to one (the official ones are PyTorch convolutions, pgen's 1x1
ones dense layers), except D's conditional output: the official D maps its features f by
a linear layer L to the embedding's width and takes the dot product with the label's
embedding M c; pgen's projection head computes w.f + b + e_y.f, so L and M become
e_y = L^T M[:, y] with w and b zero (the same logits). The official resampling pads with
zeros (model.resample_border="zeros").
"""

from collections.abc import Mapping

import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen import models
from pgen.models import r3gan
from pgen.models.official import (Converted, OfficialState, WeightsMismatchError, assemble,
                                  expected_shapes, read_kwargs, square_side)

_REQUIRED = ("WidthPerStage", "CardinalityPerStage", "BlocksPerStage", "ExpansionFactor",
             "c_dim", "img_resolution")
_FIXED = {"KernelSize": 3, "ResamplingFilter": [1, 2, 1]}


def _settings(kwargs: Mapping, network: str) -> dict:
  """An official network's settings, checked; widths and groups highest resolution first."""
  where = f"the official {network}'s kwargs"
  required = ("NoiseDimension", *_REQUIRED) if network == "Generator" else _REQUIRED
  settings = read_kwargs(kwargs, where, required=required,
                         read=("ConditionEmbeddingDimension",), fixed=_FIXED,
                         ignored=("FP16Stages",))
  order = slice(None, None, -1) if network == "Generator" else slice(None)  # G: 4x4 first.
  widths, groups = list(settings["WidthPerStage"])[order], list(settings["CardinalityPerStage"])
  blocks = set(settings["BlocksPerStage"])
  if len(blocks) != 1:
    raise WeightsMismatchError(f"{where}: BlocksPerStage={settings['BlocksPerStage']}; pgen "
                               "has as many blocks in every stage (model.blocks_per_stage).")
  side = settings["img_resolution"]
  if side != 4 * 2 ** (len(widths) - 1):
    raise WeightsMismatchError(f"{where}: {len(widths)} stages from 4x4 do not make "
                               f"img_resolution={side}.")
  return {**settings, "widths": widths, "groups": groups[order], "blocks": blocks.pop()}


def _plan(settings: dict, network: str, max_width: int) -> tuple[int, int]:
  """(width at the highest resolution, groups at the widest stage) that make pgen's
  widths and groups the official network's."""
  widths, groups = settings["widths"], settings["groups"]
  side = settings["img_resolution"]
  width = widths[0]
  cardinality = groups[widths.index(max(widths))]
  expansion = settings["ExpansionFactor"]
  if (r3gan.network_widths(width, max_width, (side, side)) != widths
      or r3gan.stage_groups(widths, expansion, cardinality) != groups):
    raise WeightsMismatchError(
        f"The official {network}'s WidthPerStage={settings['WidthPerStage']} and "
        f"CardinalityPerStage={settings['CardinalityPerStage']} are not pgen's: widths that "
        "double per stage from the highest resolution up to model.max_width, and as many "
        "channels a group in every stage.")
  return width, cardinality


def config(generator_kwargs: Mapping, discriminator_kwargs: Mapping,
           base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `base` (a complete config: pgen.config.defaults(), or a configs/*.py file's)
  whose model keys and data.resolution describe the official networks of these constructor
  kwargs; pass it through pgen.config.resolve. Raises WeightsMismatchError for official
  settings pgen has no equivalent of, naming them. The training keys stay `base`'s."""
  g = _settings(generator_kwargs, "Generator")
  d = _settings(discriminator_kwargs, "Discriminator")
  for name in ("ExpansionFactor", "blocks", "c_dim", "img_resolution"):
    if g[name] != d[name]:
      raise WeightsMismatchError(f"The official Generator has {name}={g[name]!r} and the "
                                 f"Discriminator {d[name]!r}; pgen's config holds one value.")
  if g["c_dim"] and g.get("ConditionEmbeddingDimension") != g["NoiseDimension"]:
    raise WeightsMismatchError(
        f"The official Generator's ConditionEmbeddingDimension="
        f"{g.get('ConditionEmbeddingDimension')} is not supported: pgen embeds the label "
        f"as long as z (NoiseDimension={g['NoiseDimension']}).")
  max_width = max(g["widths"] + d["widths"])
  g_width, g_cardinality = _plan(g, "Generator", max_width)
  d_width, d_cardinality = _plan(d, "Discriminator", max_width)
  if g_cardinality != d_cardinality:
    raise WeightsMismatchError(f"The official Generator has {g_cardinality} groups at its "
                               f"widest stage and the Discriminator {d_cardinality}; pgen's "
                               "model.cardinality is one value.")
  result = base.copy_and_resolve_references()
  model = result.model
  model.name = "r3gan"
  model.latent_dim = g["NoiseDimension"]
  model.g_width, model.d_width, model.max_width = g_width, d_width, max_width
  model.expansion = g["ExpansionFactor"]
  model.cardinality = g_cardinality
  model.blocks_per_stage = g["blocks"]
  model.resample_border = "zeros"
  model.minibatch_std = 0
  model.conditioning = "projection" if g["c_dim"] else "none"
  model.g_spectral_norm = model.d_spectral_norm = False
  result.data.resolution = g["img_resolution"]
  return result


def data_shape(generator_kwargs: Mapping) -> tuple[tuple[int, int, int], int]:
  """((height, width, channels), number of classes) of the official generator's images
  (always RGB)."""
  g = _settings(generator_kwargs, "Generator")
  side = g["img_resolution"]
  return (side, side, 3), g["c_dim"]


def _block(tensors: OfficialState, official: str, path: tuple) -> dict:
  """A ResidualBlock: LinearLayer1 -> NonLinearity1 -> LinearLayer2 (grouped 3x3) ->
  NonLinearity2 -> LinearLayer3 (pgen's expand, act1, grouped, act2, project)."""
  params = ("params", *path)
  linear = f"{official}.LinearLayer{{}}.Layer.weight"
  return {params + ("expand", "kernel"): tensors.dense(linear.format(1)),
          params + ("act1", "bias"): tensors.same(f"{official}.NonLinearity1.Bias"),
          params + ("grouped", "kernel"): tensors.conv(linear.format(2)),
          params + ("act2", "bias"): tensors.same(f"{official}.NonLinearity2.Bias"),
          params + ("project", "kernel"): tensors.dense(linear.format(3))}


def _resampler(tensors: OfficialState, official: str, index: int, expected: Mapping) -> dict:
  """An Upsample/DownsampleLayer (pgen's Resample_<index>): its filter buffer checked, its
  1x1 convolution where pgen's network changes the width (`expected` has it)."""
  tensors.check_filter(f"{official}.Resampler.Kernel")
  path = ("params", f"Resample_{index}", "project", "kernel")
  if path not in expected:
    return {}
  return {path: tensors.dense(f"{official}.LinearLayer.Layer.weight")}


def _count(tensors: OfficialState, prefix: str, start: int = 0) -> int:
  """How many residual blocks `prefix`.Layers.<start>, <start + 1>, ... are."""
  count = 0
  while tensors.has(f"{prefix}.Layers.{start + count}.LinearLayer1.Layer.weight"):
    count += 1
  return count


def _stages(tensors: OfficialState) -> int:
  count = 0
  while any(name.startswith(f"Model.MainLayers.{count}.") for name in tensors.tensors):
    count += 1
  return count


def _labels_and_module(config, tensors: OfficialState, image_channels: int, which: int):
  """(image side, labels for init, pgen's generator (which=0) or discriminator (1))."""
  side = square_side(config, "r3gan", "R3GAN")
  num_classes = (0 if config.model.conditioning == "none"
                 else tensors.shape("Model.EmbeddingLayer.weight")[1])
  network = models.build_models(config, (side, side, image_channels), num_classes)[which]
  return side, (jnp.zeros((1,), jnp.int32) if num_classes else None), network


def generator_variables(config: ml_collections.ConfigDict,
                        state: Mapping[str, np.ndarray]) -> dict:
  """pgen's generator variables ({"params"}) holding the official Generator's `state` (its
  state_dict, numpy arrays by official name), for the generator that models.build_models
  makes from `config` (see `config`)."""
  tensors = OfficialState(state, "R3GAN generator")
  channels = tensors.shape("Model.AggregationLayer.Layer.weight")[0]
  _, labels, generator = _labels_and_module(config, tensors, channels, 0)
  expected = expected_shapes(generator, jnp.zeros((1, config.model.latent_dim)), labels)
  converted = {("params", "to_image", "kernel"): tensors.dense(
      "Model.AggregationLayer.Layer.weight")}
  if labels is not None:
    converted[("params", "class_embedding", "embedding")] = tensors.dense(
        "Model.EmbeddingLayer.weight")
  basis = "Model.MainLayers.0.Layers.0"
  converted[("params", "GenerativeBasis_0", "basis")] = Converted(
      tensors.take(f"{basis}.Basis").transpose(1, 2, 0), f"{basis}.Basis")
  converted[("params", "GenerativeBasis_0", "Dense_0", "kernel")] = tensors.dense(
      f"{basis}.LinearLayer.weight")
  block = 0
  for stage in range(_stages(tensors)):
    prefix = f"Model.MainLayers.{stage}"
    if stage:
      converted.update(_resampler(tensors, f"{prefix}.Layers.0", stage - 1, expected))
    for j in range(1, 1 + _count(tensors, prefix, start=1)):
      converted.update(_block(tensors, f"{prefix}.Layers.{j}", (f"ResidualBlock_{block}",)))
      block += 1
  tensors.finish()
  return assemble(expected, converted, "generator")


def _head(tensors: OfficialState, official: str, conditional: bool) -> dict:
  """The DiscriminativeBasis's linear layer L, and the label embedding M, as pgen's head:
  unconditional, its dense layer is L; conditional, the embedding of class y is
  L^T M[:, y] and the dense layer is zero (the official head has no bias)."""
  linear = tensors.take(f"{official}.LinearLayer.weight")  # [outputs, C]
  zero_bias = Converted(np.zeros((1,), np.float32), "(none: the official D has no bias)")
  if not conditional:
    return {("params", "Dense_0", "kernel"): Converted(linear.T, f"{official}.LinearLayer"),
            ("params", "Dense_0", "bias"): zero_bias}
  embedding = tensors.take("Model.EmbeddingLayer.weight")  # [outputs, classes]
  folded = embedding.astype(np.float64).T @ linear.astype(np.float64)  # [classes, C]
  source = f"Model.EmbeddingLayer.weight and {official}.LinearLayer.weight"
  return {("params", "class_embedding", "embedding"): Converted(folded, source),
          ("params", "Dense_0", "kernel"): Converted(
              np.zeros((linear.shape[1], 1), np.float32), "(none: folded into the embedding)"),
          ("params", "Dense_0", "bias"): zero_bias}


def discriminator_variables(config: ml_collections.ConfigDict,
                            state: Mapping[str, np.ndarray]) -> dict:
  """pgen's discriminator variables ({"params"}) holding the official Discriminator's
  `state` (its state_dict, numpy arrays by official name), for the discriminator that
  models.build_models makes from `config` (see `config`)."""
  tensors = OfficialState(state, "R3GAN discriminator")
  channels = tensors.shape("Model.ExtractionLayer.Layer.weight")[1]
  side, labels, discriminator = _labels_and_module(config, tensors, channels, 1)
  expected = expected_shapes(discriminator, jnp.zeros((1, side, side, channels)), labels)
  converted = {("params", "from_image", "kernel"): tensors.dense(
      "Model.ExtractionLayer.Layer.weight")}
  block = 0
  stages = _stages(tensors)
  for stage in range(stages):
    prefix = f"Model.MainLayers.{stage}"
    count = _count(tensors, prefix)
    for j in range(count):
      converted.update(_block(tensors, f"{prefix}.Layers.{j}", (f"ResidualBlock_{block}",)))
      block += 1
    if stage < stages - 1:
      converted.update(_resampler(tensors, f"{prefix}.Layers.{count}", stage, expected))
    else:
      basis = f"{prefix}.Layers.{count}"
      converted[("params", "basis")] = tensors.conv(f"{basis}.Basis.weight")
      converted.update(_head(tensors, basis, labels is not None))
  tensors.finish()
  return assemble(expected, converted, "discriminator")
