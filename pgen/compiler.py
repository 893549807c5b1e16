"""The XLA compiler options pgen compiles its heavy functions with.

    step = compiler.jit(step_fn, in_shardings=..., out_shardings=...)  # jax.jit + options

On CPU, jaxlib 0.10 hands convolutions and matrix products to YNNPACK fusions by default.
For pgen's convolutional networks XLA's own (Eigen) kernels are much faster on x86: the
default config trains 1.4x faster (183-189 -> 262-267 images/s on a 2-core VM, mostly the
convolutions' weight gradients) and Inception-v3 features come ~3x faster
(bench/RESULTS.md). So the train step, the sampler and the Inception network are compiled
with those fusions off. The shipped Fashion-MNIST classifier is not: it measured faster
with them on.

A `--xla_cpu_experimental_ynn_fusion_type=...` of your own in XLA_FLAGS takes precedence
(pgen then adds nothing). Other backends get no options.
"""

import os

import jax

YNN_FUSION_FLAG = "xla_cpu_experimental_ynn_fusion_type"


def compiler_options() -> dict[str, str] | None:
  """Options for jax.jit on the default backend (looked up now: call after
  `jax.distributed.initialize`, never at import time)."""
  if jax.default_backend() != "cpu" or YNN_FUSION_FLAG in os.environ.get("XLA_FLAGS", ""):
    return None
  return {YNN_FUSION_FLAG: ""}  # The empty list: no YNNPACK fusions.


def jit(fun, **kwargs):
  """`jax.jit(fun, **kwargs)` with `compiler_options()`."""
  return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
