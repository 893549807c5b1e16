"""Mixed precision (model.dtype="bfloat16"): float32 where it matters, bf16 in the layers,
and training that reaches what float32 reaches."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen import config as config_lib
from pgen.configs import catalog_resnet64, fashion_mnist_dcgan
from pgen.core import sharding
from pgen.data import sources
from pgen.evaluation import scoring
from pgen.gan.state import build
from pgen.generation import generators
from pgen.training.compiled_step import compile_train_step
from pgen.training.loop import train_and_evaluate

FAMILIES = ("dcgan", "resnet")


def _config(family: str, dtype: str):
  config = fashion_mnist_dcgan.get_config("smoke")
  if family == "resnet":  # With DiffAugment, as the catalog configs train it.
    catalog_resnet64.use_sngan(config)
    config.augment.policy = ("translation", "cutout")
  config.model.dtype = dtype
  config.loss.r1_weight, config.loss.r1_every = 1.0, 1  # R1 in the step, every step.
  return config_lib.resolve(config)


def _run_steps(config, steps=3):
  mesh = sharding.make_mesh()
  setup = build(config, mesh, (32, 32, 1), num_classes=10)
  step = compile_train_step(config, setup, mesh)
  state = setup.init()
  rng = np.random.default_rng(0)
  for _ in range(steps):
    batch = {"image": jnp.asarray(rng.integers(0, 256, (16, 32, 32, 1)), jnp.uint8),
             "label": jnp.asarray(rng.integers(0, 10, (16,)), jnp.int32)}
    state, metrics = step(state, batch)
  return step, state, metrics, batch


@pytest.mark.usefixtures("fast_compile_test")
@pytest.mark.parametrize("family", [  # The fast suite keeps one family.
    pytest.param(f, marks=pytest.mark.slow) if f == "resnet" else f for f in FAMILIES])
def test_bfloat16_trains_with_float32_parameters_optimizer_and_losses(family):
  """Every family: finite losses, and parameters, Adam states, EMA, BatchNorm and spectral
  norm statistics stay float32; the step's convolutions are bf16 as lowered for XLA."""
  step, state, metrics, batch = _run_steps(_config(family, "bfloat16"), steps=2)
  assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
  assert all(v.dtype == jnp.float32 for k, v in metrics.items() if "loss" in k or "logit" in k)
  for name in ("g_params", "d_params", "ema_g_params", "g_opt_state", "d_opt_state",
               "g_batch_stats", "d_batch_stats"):
    dtypes = {x.dtype for x in jax.tree.leaves(getattr(state, name))
              if jnp.issubdtype(x.dtype, jnp.floating)}
    assert dtypes <= {jnp.dtype(jnp.float32)}, (name, dtypes)
  program = step.lower(state, batch).as_text()
  convolutions = re.findall(r"stablehlo.convolution.*", program)
  assert convolutions and all("bf16" in c for c in convolutions)
  # XLA:CPU then computes them in float32 (it has no bf16 convolution kernels); GPUs and
  # TPUs keep them in bf16.


@pytest.mark.usefixtures("fast_compile_test")
def test_float32_programs_have_no_bfloat16():
  step, state, _, batch = _run_steps(_config("dcgan", "float32"), steps=1)
  assert "bf16" not in step.lower(state, batch).as_text()


@pytest.mark.slow
def test_bfloat16_reaches_the_frechet_distance_of_float32(fmnist_data_dir, tmp_path):
  """400 steps of a width-32 DCGAN from the same seed in each precision on the real data:
  bf16's FD (pgen's classifier, 2000 samples) at most 25% above float32's. Measured
  (bench/RESULTS.md, "Mixed precision on CPU"): float32 seeds 0-2 give 323-353, bf16 seeds
  0-1 give 394 and 388 (+12% and +18% over their float32 runs; with only G in bf16 the FD
  is float32's, the lag comes from D), an untrained generator 664. 25% holds bf16's known
  lag with room for chance, and fails a bf16 path that stops learning."""
  fds = {}
  for dtype in ("float32", "bfloat16"):
    config = fashion_mnist_dcgan.get_config("smoke")
    config.data.data_dir = fmnist_data_dir
    config.batch_size, config.total_steps = 64, 400
    config.model.g_width = config.model.d_width = 32
    config.model.latent_dim = 100
    config.model.dtype = dtype
    config.checkpoint_every_steps = config.sample_every_steps = 400
    config.log_every_steps = 100
    config.eval.reference_split, config.eval.num_reference = "test", 2000
    workdir = str(tmp_path / dtype)
    train_and_evaluate(config, workdir)
    images = generators.sample(generators.from_checkpoint(workdir), 2000)
    config = config_lib.resolve(config)
    fds[dtype] = scoring.Evaluator(config, sources.get_builder(config.data))(images)["fd"]
  assert np.isfinite(list(fds.values())).all()
  assert fds["bfloat16"] <= 1.25 * fds["float32"], fds
