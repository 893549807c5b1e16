"""The XLA compiler options pgen compiles its heavy functions with, per backend.

    step = compiler.jit(step_fn, in_shardings=..., out_shardings=...)   # jax.jit + options
    step = compiler.jit(step_fn, deterministic=True, ...)               # reproducibility runs

CPU: jaxlib 0.10 hands convolutions and matrix products to YNNPACK fusions by default. For
pgen's convolutional networks XLA's own (Eigen) kernels are much faster on x86, mostly in
the convolutions' weight gradients (bench/RESULTS.md, "XLA's Eigen convolutions", has the
train step and Inception-v3 with and without them). So the train step, the sampler and the
Inception network are compiled with those fusions off. The shipped Fashion-MNIST classifier
is not: it measured faster with them on. A `--xla_cpu_experimental_ynn_fusion_type=...` of
your own in XLA_FLAGS takes precedence (pgen then adds nothing).

GPU: `deterministic=True` (config.deterministic) turns on XLA's deterministic ops, which
makes scatter and some reductions slower (docs/scaling.md). No speed flag is
set: none has been measured to help pgen's steps on a GPU yet (bench/bench_accelerator.py
is the place to measure one). TPU: nothing; its runs are deterministic already.
"""

import glob
import os

import jax
from absl import logging

YNN_FUSION_FLAG = "xla_cpu_experimental_ynn_fusion_type"
GPU_DETERMINISTIC_FLAG = "xla_gpu_deterministic_ops"


def compiler_options(deterministic: bool = False) -> dict | None:
  """Options for jax.jit on the default backend (looked up now: call after
  `jax.distributed.initialize`, never at import time)."""
  backend = jax.default_backend()
  options = {}
  if backend == "cpu" and YNN_FUSION_FLAG not in os.environ.get("XLA_FLAGS", ""):
    options[YNN_FUSION_FLAG] = ""  # The empty list: no YNNPACK fusions.
  if backend == "gpu" and deterministic:
    options[GPU_DETERMINISTIC_FLAG] = True
  return options or None


def jit(fun, *, deterministic: bool = False, **kwargs):
  """`jax.jit(fun, **kwargs)` with `compiler_options(deterministic)`."""
  return jax.jit(fun, compiler_options=compiler_options(deterministic), **kwargs)


def accelerators_on_machine() -> list[str]:
  """Device files of NVIDIA GPUs and TPUs on this machine, whether or not JAX can use them."""
  return sorted(glob.glob("/dev/nvidia[0-9]*") + glob.glob("/dev/accel[0-9]*") +
                glob.glob("/dev/vfio/[0-9]*"))


def warn_if_accelerator_unused() -> bool:
  """Warns (and returns True) when the machine has a GPU or TPU but JAX runs on the CPU:
  the most common install mistake, a jax without the accelerator's plugin."""
  found = accelerators_on_machine()
  if jax.default_backend() != "cpu" or not found:
    return False
  logging.warning(
      "This machine has accelerator devices (%s) but JAX runs on the CPU. Install the JAX "
      "build for them: pip install -e '.[cuda12]' or '.[cuda13]' for NVIDIA GPUs (by the CUDA "
      "major version of the driver), '.[tpu]' for TPUs; `python -c \"import jax; "
      "print(jax.devices())\"` should then list them.", ", ".join(found[:4]))
  return True
