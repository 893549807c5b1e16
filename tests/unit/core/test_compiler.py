"""pgen's XLA compiler options: on CPU, convolutions compile to XLA's own kernels, and a
user's XLA_FLAGS setting wins."""

import jax
import jax.numpy as jnp

from pgen.core import compiler


def _conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _compiled_text(jitted):
  return jitted.lower(jnp.ones((8, 16, 16, 32)), jnp.ones((3, 3, 32, 32))).compile().as_text()


def test_convolutions_compile_without_ynnpack_fusions(monkeypatch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert "ynn_fusion" in _compiled_text(jax.jit(_conv))  # jaxlib's default, for contrast.
  assert "ynn_fusion" not in _compiled_text(compiler.jit(_conv))


def test_a_users_xla_flag_takes_precedence(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", f"--{compiler.YNN_FUSION_FLAG}=individual_convolution")
  assert compiler.compiler_options() is None
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  assert compiler.compiler_options() == {compiler.YNN_FUSION_FLAG: ""}
