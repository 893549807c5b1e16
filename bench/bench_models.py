r"""Forward + backward speed of generator + discriminator pairs: prints a Markdown table.

    python bench/bench_models.py [--batch 64] [--resolution 32] [--min_seconds 20]
        [--only resnet_w64,dcgan]   # a subset of the variant names below
    python bench/bench_models.py --resolution 128 --batch 8 --only dcgan,resnet_w64,stylegan2

Times `jax.jit(jax.grad(loss))` with respect to both networks' parameters, where the loss
runs G on `batch` latents and D on the concatenation of `batch` real and `batch` fake
images, as the discriminator update of the train step does (the train step also runs D once
more on the fakes for the generator update, so it is slower than these numbers). Both
networks run with train=True (BatchNorm batch statistics, spectral-norm power iteration).
images/s counts generated images: batch / seconds per call.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from pgen.configs import fashion_mnist_dcgan  # noqa: E402
from pgen.models import build_models  # noqa: E402

# name -> config.model overrides
VARIANTS = {
    "dcgan": {},
    "dcgan_sn": {"d_spectral_norm": True},
    "resnet_w16": {"name": "resnet", "g_width": 16, "d_width": 16, "d_spectral_norm": True},
    "resnet_w32": {"name": "resnet", "g_width": 32, "d_width": 32, "d_spectral_norm": True},
    "resnet_w32_attn16": {"name": "resnet", "g_width": 32, "d_width": 32,
                          "d_spectral_norm": True, "attention_resolution": 16},
    "resnet_w64": {"name": "resnet", "g_width": 64, "d_width": 64, "d_spectral_norm": True},
    "resnet_w64_attn16": {"name": "resnet", "g_width": 64, "d_width": 64,
                          "d_spectral_norm": True, "attention_resolution": 16},
    "resnet_w128": {"name": "resnet", "g_width": 128, "d_width": 128, "d_spectral_norm": True},
    "resnet_w128_attn16": {"name": "resnet", "g_width": 128, "d_width": 128,
                           "d_spectral_norm": True, "attention_resolution": 16},
    # StyleGAN2 as configs/fashion_mnist_stylegan2.py (CPU-sized) and at StyleGAN2-ADA's
    # widths for up to 512 px (configs/catalog_stylegan2.py).
    "stylegan2_cpu": {"name": "stylegan2", "latent_dim": 128, "w_dim": 128, "mapping_layers": 2,
                      "channel_base": 512, "channel_max": 128, "minibatch_std": 4},
    "stylegan2": {"name": "stylegan2", "latent_dim": 512, "w_dim": 512, "mapping_layers": 2,
                  "channel_base": 16384, "channel_max": 512, "minibatch_std": 4},
}


def num_params(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def time_variant(overrides, batch, resolution, min_seconds):
  """Returns (G parameters, D parameters, compile seconds, seconds per call)."""
  config = fashion_mnist_dcgan.base()  # The families as pgen defines them.
  for key, value in overrides.items():
    config.model[key] = value
  image_shape = (resolution, resolution, 1)
  generator, discriminator = build_models(config, image_shape)
  g_key, d_key, z_key, x_key = jax.random.split(jax.random.PRNGKey(0), 4)
  z = jax.random.normal(z_key, (batch, config.model.latent_dim))
  real = jax.random.uniform(x_key, (batch, *image_shape), minval=-1.0, maxval=1.0)
  g_vars = generator.init(g_key, z, train=False)
  d_vars = discriminator.init(d_key, real, train=False)
  g_stats, d_stats = g_vars.get("batch_stats", {}), d_vars.get("batch_stats", {})

  rngs = {"noise": jax.random.PRNGKey(1), "mixing": jax.random.PRNGKey(2)}  # StyleGAN2's.

  def loss(g_params, d_params):
    fake, _ = generator.apply({"params": g_params, "batch_stats": g_stats}, z, train=True,
                              mutable=["batch_stats"], rngs=rngs)
    (logits, _), _ = discriminator.apply({"params": d_params, "batch_stats": d_stats},
                                         jnp.concatenate([real, fake]), train=True,
                                         mutable=["batch_stats"])
    logits_real, logits_fake = jnp.split(logits, 2)
    return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))

  grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
  start = time.perf_counter()
  jax.block_until_ready(grad_fn(g_vars["params"], d_vars["params"]))
  compile_s = time.perf_counter() - start
  jax.block_until_ready(grad_fn(g_vars["params"], d_vars["params"]))  # warm-up
  calls, start = 0, time.perf_counter()
  while calls < 3 or time.perf_counter() - start < min_seconds:
    grads = grad_fn(g_vars["params"], d_vars["params"])
    jax.block_until_ready(grads)
    calls += 1
  per_call_s = (time.perf_counter() - start) / calls
  return num_params(g_vars["params"]), num_params(d_vars["params"]), compile_s, per_call_s


def _images_per_s(value: float) -> str:
  return f"{value:.0f}" if value >= 10 else f"{value:.2g}"  # 256 px runs well under 1.


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--resolution", type=int, default=32)
  parser.add_argument("--min_seconds", type=float, default=20.0)
  parser.add_argument("--only", default="", help="Comma-separated variant names.")
  args = parser.parse_args()
  names = args.only.split(",") if args.only else list(VARIANTS)
  unknown = [name for name in names if name not in VARIANTS]
  if unknown:
    parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
  print(f"{args.resolution}x{args.resolution}x1, batch {args.batch} (G on {args.batch}, "
        f"D on {2 * args.batch}), {jax.devices()[0].platform}\n")
  print("| variant | model overrides | G params | D params | compile s | ms/call | images/s |")
  print("|---|---|---|---|---|---|---|")
  for name in names:
    g_params, d_params, compile_s, per_call_s = time_variant(
        VARIANTS[name], args.batch, args.resolution, args.min_seconds)
    overrides = ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "(default)"
    print(f"| {name} | {overrides} | {g_params / 1e6:.2f}M | {d_params / 1e6:.2f}M | "
          f"{compile_s:.1f} | {per_call_s * 1e3:.0f} | {_images_per_s(args.batch / per_call_s)} |",
          flush=True)


if __name__ == "__main__":
  main()
