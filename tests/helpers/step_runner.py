"""Runs a few train steps on fixed data and saves the state: a subprocess for device-count tests.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/helpers/step_runner.py OUT \
        [VARIANT [MESH_SIZES [smooth]]]

VARIANT (see `configure`) turns on groups of the GAN toolbox on the smoke config;
MESH_SIZES ("1,8") runs once on the first that many devices for each size, writing
OUT_<size>.npz (default: all devices); `smooth` swaps the models' ReLUs for smooth
look-alikes (see `smooth`).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import chex  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

from pgen import config as config_lib, data  # noqa: E402
from pgen.configs import fashion_mnist_dcgan, fashion_mnist_stylegan2  # noqa: E402
from pgen.core import sharding
from pgen.gan import objectives
from pgen.gan.state import build  # noqa: E402
from pgen.gan.step_spec import StepSpec  # noqa: E402
from pgen.models import build_models  # noqa: E402
from pgen.training.compiled_step import TrainStep, jit_train_step, lazy_cycle  # noqa: E402

NUM_STEPS = 3
NUM_CLASSES = 10
VARIANTS = ("default", "projection_r1_ada", "acgan_gp_resnet", "stylegan2_ada")


def configure(variant: str):
  """The smoke config with a group of toolbox options on."""
  config = fashion_mnist_dcgan.get_config("smoke")
  if variant == "projection_r1_ada":
    config.loss.name = "hinge"
    config.model.conditioning = "projection"
    config.model.d_spectral_norm = True
    config.model.minibatch_std = 4
    config.loss.r1_weight = 1.0
    config.loss.r1_every = 2
    config.optim.d_steps = 2
    config.optim.d_betas = (0.0, 0.9)
    config.augment.policy = ("translation", "cutout", "color")
    config.augment.probability = 0.5
    config.augment.ada_target = 0.6
    config.augment.ada_interval = 1
    config.augment.hflip = True
  elif variant == "acgan_gp_resnet":
    config.loss.name = "wasserstein"
    config.model.name = "resnet"
    config.model.conditioning = "acgan"
    config.model.g_spectral_norm = True
    config.model.attention_resolution = 16
    config.loss.gp_weight = 10.0
  elif variant == "stylegan2_ada":
    # Noise, style mixing, w_avg, R1 and path length as separate steps (both in steps 0 and
    # 2), ADA's pipeline with its probability adapting.
    config = fashion_mnist_stylegan2.get_config("smoke")
    config.model.conditioning = "projection"
    config.loss.r1_every = 2
    config.loss.pl_every = 2
    config.augment.probability = 0.5
    config.augment.ada_target = 0.6
    config.augment.ada_interval = 1
  elif variant != "default":
    raise ValueError(f"Unknown variant {variant!r}; choose from {VARIANTS}.")
  return config_lib.resolve(config)


def smooth(activation):
  """A SiLU-based look-alike of ReLU or leaky ReLU (a functools.partial of it).

  A kink turns the rounding differences of sharded reductions into a jump: a
  pre-activation within rounding of 0 that lands on the other side changes one sample's
  share (1/16 of the batch) of every gradient behind that unit, and Adam's normalized step
  flips sign wherever the gradient is smaller than that share (seen: 418 of 16384 elements
  of G's first kernel, acgan_gp_resnet under one XLA:CPU kernel choice; with SiLU the same
  run agreed to 2e-5). Elementwise functions cannot depend on the sharding, so comparing
  smooth models at float tolerance still checks every sharded reduction.
  """
  if activation is nn.relu:
    return jax.nn.silu
  assert activation.func is nn.leaky_relu, activation
  slope = activation.keywords["negative_slope"]
  return lambda x: slope * x + (1 - slope) * jax.nn.silu(x)


def smooth_models(config, image_shape, num_classes):
  """The config's networks with every ReLU and leaky ReLU made smooth (through their kits)."""
  return tuple(model.clone(kit=model.kit.replace(activation=smooth(model.kit.activation)))
               for model in build_models(config, image_shape, num_classes))


def main(out_prefix, variant="default", mesh_sizes=None, activations="relu"):
  if activations not in ("relu", "smooth"):
    raise ValueError(f"Unknown activations {activations!r}; choose 'relu' or 'smooth'.")
  for size in (mesh_sizes or str(jax.device_count())).split(","):
    run_steps(f"{out_prefix}_{size}.npz", configure(variant), jax.devices()[:int(size)],
              activations)


def run_steps(out_path, config, devices, activations):
  mesh = Mesh(np.asarray(devices), (sharding.DATA_AXIS,))
  models = smooth_models(config, (32, 32, 1), NUM_CLASSES) if activations == "smooth" else None
  setup = build(config, mesh, (32, 32, 1), NUM_CLASSES, models=models)
  spec = StepSpec.create(config, setup, mesh)
  chex.clear_trace_counter()  # Counted per mesh: each compiles its own step.

  # Traced (so compiled) once per program of the lazy-regularization cycle, or chex raises.
  @chex.assert_max_traces(n=len(lazy_cycle(spec.options)))
  def traced_once(state, batch, phases):
    return objectives.train_step(state, batch, phases, spec=spec)

  step = TrainStep(jit_train_step(traced_once, setup.abstract_state, mesh), spec.options)
  state = setup.init()
  initial = _flat(state)
  rows = data.images_per_step(config)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (NUM_STEPS, rows, 32, 32, 1)).astype(np.uint8)
  labels = rng.integers(0, NUM_CLASSES, (NUM_STEPS, rows)).astype(np.int32)
  for i in range(NUM_STEPS):
    batch = {"image": jax.device_put(images[i], sharding.batch_split(mesh)),
             "label": jax.device_put(labels[i], sharding.batch_split(mesh))}
    state, metrics = step.at(i)(state, batch)
  arrays = _flat(state)
  arrays.update({f"initial/{k}": v for k, v in initial.items()})
  arrays.update({f"metric/{k}": sharding.to_host(v) for k, v in metrics.items()})
  np.savez(out_path, device_count=mesh.size, **arrays)


def _flat(state):
  """{'.g_params['Dense_0']['kernel']': array, ...} on the host."""
  leaves = jax.tree_util.tree_flatten_with_path(state)[0]
  return {jax.tree_util.keystr(path): sharding.to_host(x) for path, x in leaves}


if __name__ == "__main__":
  main(*sys.argv[1:])
