"""pgen's StyleGAN2 and R3GAN are the official networks: on the fixtures of
tests/data/official_parity (random weights of the official StyleGAN2-ADA and R3GAN
networks, inputs and the official outputs, made with the official code at the commits its
README names), pgen's networks built from the config that pgen.models.official_stylegan2 /
official_r3gan make of the official constructor kwargs, holding the converted weights,
reproduce every output within 1e-5 * max(1, max|official|), in float32 at "highest"
matmul precision. Conversion refuses what does not fit, naming it."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.models import build_models, official_r3gan, official_stylegan2, r3gan
from pgen.models.official import WeightsMismatchError

# A copy of the fixtures made with the official code (their README.md says how), so that a
# clean clone tests itself.
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                        "data", "official_parity")
STYLEGAN2_FIXTURES = ("sg2ada_g32_gray", "sg2ada_g64_rgb_cond")
CONVERTERS = {"sg2ada_g32_gray": official_stylegan2, "sg2ada_g64_rgb_cond": official_stylegan2,
              "r3gan_32_rgb": official_r3gan}


@functools.cache
def load(name: str):
  """(settings JSON, G state, D state, inputs and outputs) of fixture `name`."""
  path = os.path.join(FIXTURES, name)
  missing = [f"{path}{suffix}" for suffix in (".json", ".G.npz", ".D.npz", ".io.npz")
             if not os.path.isfile(f"{path}{suffix}")]
  assert not missing, f"The official parity fixtures are missing: {missing}."
  with open(f"{path}.json") as f:
    settings = json.load(f)
  arrays = [dict(np.load(f"{path}{suffix}")) for suffix in (".G.npz", ".D.npz", ".io.npz")]
  return settings, *arrays


@functools.cache
def converted(name: str):
  """(config, generator, discriminator, G variables, D variables, labels) of `name`."""
  settings, g_state, d_state, io = load(name)
  converter = CONVERTERS[name]
  g_kwargs, d_kwargs = settings["generator"]["kwargs"], settings["discriminator"]["kwargs"]
  config = config_lib.resolve(converter.config(g_kwargs, d_kwargs, config_lib.defaults()))
  image_shape, num_classes = converter.data_shape(g_kwargs)
  generator, discriminator = build_models(config, image_shape, num_classes)
  labels = jnp.asarray(io["labels"], jnp.int32) if num_classes else None
  return (config, generator, discriminator, converter.generator_variables(config, g_state),
          converter.discriminator_variables(config, d_state), labels)


def nhwc(images):
  return jnp.asarray(images).transpose(0, 2, 3, 1)


def nchw(images):
  return np.asarray(images).transpose(0, 3, 1, 2)


def assert_matches(outputs: dict, io: dict):
  """Every output within 1e-5 * max(1, max|official|) of the official one."""
  failures = []
  for key, ours in outputs.items():
    official = io[key]
    assert np.shape(ours) == official.shape, (key, np.shape(ours), official.shape)
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(official))))
    difference = float(np.max(np.abs(np.asarray(ours, np.float64) - official)))
    if not difference <= tolerance:
      failures.append(f"{key}: max |pgen - official| = {difference:.3g} > {tolerance:.3g}")
  assert not failures, failures


def compiled(function, *args):
  """function(*args) compiled as one program (much faster here than op by op), at float32's
  full matmul precision."""
  with jax.default_matmul_precision("highest"):
    return jax.jit(function)(*args)


def stylegan2_generator_outputs(name: str) -> dict:
  """G's outputs for each official call of the fixture (noise_mode "const" as there)."""
  _, generator, _, variables, _, labels = converted(name)
  io = load(name)[3]

  def outputs(variables, z, labels):
    apply = functools.partial(generator.apply, variables, z, labels)
    result = {"mapping_ws": apply(method="map_latents"),
              "mapping_ws_psi07": apply(truncation_psi=0.7, method="map_latents"),
              "G_img": apply(noise_mode="const"),
              "G_img_psi07": apply(truncation_psi=0.7, noise_mode="const")}
    if "G_img_noise_none" in io:
      result["G_img_noise_none"] = apply(noise_mode="none")
    return result

  result = compiled(outputs, variables, jnp.asarray(io["z"]), labels)
  return {key: nchw(value) if key.startswith("G_img") else value
          for key, value in result.items()}


def discriminator_outputs(name: str) -> dict:
  """D's logits on the official G images and on the random images, as the official shape."""
  _, _, discriminator, _, variables, labels = converted(name)
  io = load(name)[3]

  def outputs(variables, images, labels):
    return {f"D_logits_{key}": discriminator.apply(variables, nhwc(images[key]), labels)[0]
            for key in images}

  logits = compiled(outputs, variables, {key: io[key] for key in ("G_img", "random_img")},
                    labels)
  return {key: np.reshape(value, io[key].shape) for key, value in logits.items()}


@pytest.mark.parametrize("name", STYLEGAN2_FIXTURES)
def test_stylegan2_generator_is_the_official_one(name):
  assert_matches(stylegan2_generator_outputs(name), load(name)[3])


@pytest.mark.parametrize("name", (*STYLEGAN2_FIXTURES, "r3gan_32_rgb"))
def test_discriminator_is_the_official_one(name):
  assert_matches(discriminator_outputs(name), load(name)[3])


def test_r3gan_generator_is_the_official_one():
  _, generator, _, variables, _, labels = converted("r3gan_32_rgb")
  io = load("r3gan_32_rgb")[3]
  images = compiled(generator.apply, variables, jnp.asarray(io["z"]), labels)
  assert_matches({"G_img": nchw(images)}, io)


def test_r3gan_zero_border_resampling_is_the_official_resamplers():
  io = load("r3gan_32_rgb")[3]
  up = r3gan.upsample(jnp.ones((1, 4, 4, 1)), border="zeros")
  down = r3gan.downsample(jnp.ones((1, 8, 8, 1)), border="zeros")
  assert_matches({"probe_up_ones_4x4": nchw(up), "probe_down_ones_8x8": nchw(down)}, io)


@pytest.mark.parametrize("name", (*STYLEGAN2_FIXTURES, "r3gan_32_rgb"))
def test_the_config_selects_the_official_behaviour(name):
  config = converted(name)[0]
  if CONVERTERS[name] is official_stylegan2:
    assert config.model.minibatch_std_form == "stylegan2_ada"
    assert config.model.stored_noise_const
  else:
    assert config.model.resample_border == "zeros"


@pytest.mark.parametrize("network", ("generator", "discriminator"))
@pytest.mark.parametrize("name", ("sg2ada_g32_gray", "r3gan_32_rgb"))
def test_a_tensor_left_over_missing_or_misshapen_is_named(name, network):
  config = converted(name)[0]
  _, g_state, d_state, _ = load(name)
  state = g_state if network == "generator" else d_state
  convert = getattr(CONVERTERS[name], f"{network}_variables")
  with pytest.raises(WeightsMismatchError, match="extra.weight"):
    convert(config, {**state, "extra.weight": np.zeros(3)})
  dropped = sorted(state)[len(state) // 2]
  with pytest.raises(WeightsMismatchError, match=dropped.replace(".", "[.]")):
    convert(config, {k: v for k, v in state.items() if k != dropped})
  widened = max(state, key=lambda k: np.size(state[k]))
  with pytest.raises(WeightsMismatchError, match=widened.replace(".", "[.]")):
    convert(config, {**state, widened: np.concatenate([state[widened]] * 2)})


def test_official_settings_pgen_lacks_are_refused_by_name():
  settings = load("sg2ada_g32_gray")[0]
  g_kwargs = settings["generator"]["kwargs"]
  d_kwargs = dict(settings["discriminator"]["kwargs"], architecture="skip")
  with pytest.raises(WeightsMismatchError, match="architecture='skip'"):
    official_stylegan2.config(g_kwargs, d_kwargs, config_lib.defaults())
  g_kwargs = dict(g_kwargs, synthesis_kwargs=dict(g_kwargs["synthesis_kwargs"], channel_max=64))
  with pytest.raises(WeightsMismatchError, match="channel_max"):
    official_stylegan2.config(g_kwargs, settings["discriminator"]["kwargs"],
                              config_lib.defaults())
  r3gan_settings = load("r3gan_32_rgb")[0]
  g_kwargs = dict(r3gan_settings["generator"]["kwargs"], BlocksPerStage=[1, 2, 1, 1])
  with pytest.raises(WeightsMismatchError, match="BlocksPerStage"):
    official_r3gan.config(g_kwargs, r3gan_settings["discriminator"]["kwargs"],
                          config_lib.defaults())


def test_a_config_of_another_network_is_refused():
  config = converted("sg2ada_g32_gray")[0]
  with pytest.raises(WeightsMismatchError, match="model.name='stylegan2'"):
    official_r3gan.generator_variables(config, load("r3gan_32_rgb")[1])
