"""The train step of every family lowered for CUDA and TPU on this CPU-only machine, in float32
and bfloat16: an op with no lowering for a GPU or TPU, or shardings that do not carry over,
fails here in the fast suite, before anyone is lent a device.

    pytest tests/unit/training/test_accelerator_lowering.py

JAX lowers for a platform it does not run: `jitted.trace(*args).lower(lowering_platforms=...)`
needs no GPU or TPU backend, since lowering does not compile. Every program a run meets is
lowered (one per combination of lazy regularizers in the config's cycle) from the abstract
state and batch, with the shardings pgen runs with on a 1-device mesh. The families: DCGAN
with the default job's lazy R1, the conditional ResNet (spectral norm, projection D,
DiffAugment with ADA) and StyleGAN2 (R1 and path length as their own steps, ADA's "bgc").

How a lowering shows its platform: for pgen's steps the CUDA and TPU texts are the same, and
differ from the CPU's only in the random-number generator: the CPU keeps Threefry's rounds in
a `stablehlo.while` loop, the accelerators unroll them. What XLA then does for the device
(fusion, memory, kernels) is past lowering; bench/bench_accelerator.py measures that on one.
"""

import functools
import re

import jax
import jax.numpy as jnp
import pytest

from pgen import config as config_lib, data
from pgen.configs import catalog_resnet64, fashion_mnist_dcgan, fashion_mnist_stylegan2
from pgen.core import sharding
from pgen.data import synthetic
from pgen.gan import state
from pgen.gan.step_spec import LazyPhases, StepOptions
from pgen.training import compiled_step

# family: (config module, image channels)
FAMILIES = {"dcgan": (fashion_mnist_dcgan, 1), "resnet": (catalog_resnet64, 3),
            "stylegan2": (fashion_mnist_stylegan2, 1)}
PLATFORMS = ("cuda", "tpu")
DTYPES = {"float32": "f32", "bfloat16": "bf16"}  # The config's name: StableHLO's.
# The programs of each family's lazy cycle. StyleGAN2's R1 steps (every 16th) are path-length
# steps (every 4th) too.
CYCLES = {"dcgan": {LazyPhases(), LazyPhases(r1=True)}, "resnet": {LazyPhases()},
          "stylegan2": {LazyPhases(), LazyPhases(path_length=True),
                        LazyPhases(r1=True, path_length=True)}}


def _config(family: str, dtype: str):
  """The family's smoke config, batch 8, on synthetic data (no TensorFlow). At 16 px the
  networks keep every kind of layer (two resolution blocks each way, from a 4x4 map) and
  trace and lower in half the time they take at 32 px."""
  module, channels = FAMILIES[family]
  config = module.get_config("smoke")
  if family == "dcgan":
    fashion_mnist_dcgan.use_default_recipe(config)  # Lazy R1 and minibatch std: two programs.
  config.data.name = data.SYNTHETIC
  config.data.resolution = 16
  config.data.synthetic_channels = channels
  config.batch_size = 8
  config.model.dtype = dtype
  config.eval.every_steps = 0
  return config_lib.resolve(config)


@functools.cache
def _traced_programs(family: str, dtype: str) -> dict:
  """{LazyPhases: jax.stages.Traced} of every program a run of `family` meets: traced once
  for both platforms (tracing costs about as much as lowering)."""
  config = _config(family, dtype)
  mesh = sharding.make_mesh()
  info = synthetic.input_info(config)
  setup = state.build(config, mesh, info.image_shape, info.num_classes)
  train_step = compiled_step.compile_train_step(config, setup, mesh)
  rows = data.images_per_step(config)
  split = sharding.batch_split(mesh)
  batch = {"image": jax.ShapeDtypeStruct((rows, *info.image_shape), jnp.uint8, sharding=split),
           "label": jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=split)}
  cycle = compiled_step.lazy_cycle(StepOptions.from_config(config, setup.num_classes))
  return {phases: train_step.trace(setup.abstract_state, batch, phases)
          for phases in cycle}


def _functions(text: str, name: str) -> list[str]:
  """The bodies of the module's private functions named `name` (or `name_<n>`)."""
  return [f for f in text.split("\n  func.func ")
          if re.match(rf"private @{name}(_\d+)?\(", f)]


def _main_arguments(text: str) -> list[str]:
  """The attributes of each argument of the module's entry point."""
  signature = next(line for line in text.splitlines() if "func.func public @main(" in line)
  return re.split(r"%arg\d+: ", signature.split(") -> ")[0])[1:]


def _convolution_types(text: str) -> set[str]:
  """The element types the convolutions take and give (f32, bf16, ...)."""
  return {element for line in text.splitlines() if "stablehlo.convolution" in line
          for element in re.findall(r"tensor<(?:\d+x)*(\w+)>", line.rsplit(" : ", 1)[1])}


def _assert_unrolled_random_bits(text: str, unrolled: bool):
  """The platform's mark on the text: CPUs keep Threefry's rounds in a loop, accelerators
  unroll them (JAX lowers the hash per platform; the rest of pgen's step lowers alike)."""
  threefry = _functions(text, "threefry2x32")
  assert threefry, "no Threefry: every step draws latents and augmentations"
  assert all(("stablehlo.while" not in f) == unrolled for f in threefry)


def test_the_configs_cover_the_toolbox():
  """What the lowerings below claim to cover is in the configs they lower."""
  dcgan, resnet, stylegan2 = (_config(family, "float32") for family in FAMILIES)
  assert dcgan.loss.r1_weight > 0 and dcgan.model.minibatch_std
  assert resnet.model.d_spectral_norm and resnet.model.conditioning == "projection"
  assert isinstance(resnet.augment.policy, tuple) and resnet.augment.ada_target > 0
  assert stylegan2.loss.r1_weight > 0 and stylegan2.loss.pl_weight > 0
  assert stylegan2.loss.lazy_regularization == "separate"
  assert stylegan2.augment.policy == "bgc" and stylegan2.augment.ada_target > 0


def test_a_cpu_lowering_keeps_the_random_bits_rolled():
  """The platform check below tells the CPU's lowering from an accelerator's."""
  traced = next(iter(_traced_programs("dcgan", "float32").values()))
  _assert_unrolled_random_bits(traced.lower(lowering_platforms=("cpu",)).as_text(), False)


# StyleGAN2 in bfloat16 is the costliest to trace (half a minute): `slow`; the fast suite
# keeps StyleGAN2 in float32 and the other families in bfloat16.
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("family, dtype", [
    (family, dtype) if (family, dtype) != ("stylegan2", "bfloat16")
    else pytest.param(family, dtype, marks=pytest.mark.slow)
    for family in FAMILIES for dtype in DTYPES])
def test_train_step_lowers_for_the_accelerator(family, dtype, platform):
  """Each program of the lazy cycle lowers for `platform`, with the accelerator's lowering
  rules, pgen's mesh and shardings, the state donated, and every convolution in `dtype`."""
  programs = _traced_programs(family, dtype)
  assert set(programs) == CYCLES[family]
  for phases, traced in programs.items():
    text = traced.lower(lowering_platforms=(platform,)).as_text()
    assert "mhlo.num_partitions = 1 : i32" in text, phases
    assert 'sdy.mesh @mesh = <["data"=1]>' in text, phases
    _assert_unrolled_random_bits(text, True)
    arguments = _main_arguments(text)
    batch = [a for a in arguments if '{"data"}' in a]
    assert any("xui8>" in a for a in batch), phases  # The images, split over the devices.
    # The state's buffers are donated: each non-batch argument aliases an output.
    assert all("tf.aliasing_output" in a for a in arguments if a not in batch), phases
    assert _convolution_types(text) == {DTYPES[dtype]}, phases
