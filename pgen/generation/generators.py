"""A trained generator as `generate` and `evaluate` use it: from a run's checkpoint or from
an export directory, the same `render(z, labels) -> uint8 images` either way.

    generator = load("runs/fmnist")              # a workdir: its latest checkpoint
    generator = load("exports/fmnist")           # an export (export.json): no pgen model code
    images = sample(generator, 64, seed=0)       # latents drawn from the seed
    images = generator.render(latents_for_seeds(generator, [7, 8, 9]), None)
    generator = load("runs/sg2", options=RenderOptions(truncation=0.7))  # StyleGAN2 only
    images = generator.mix_styles(z_coarse, z_fine, None, 4)   # StyleGAN2 checkpoints

Loading from a checkpoint needs the run's config.json and data_info.json, not its dataset;
loading from an export needs only jax (the function is serialized StableHLO). Neither
imports TensorFlow.
"""

import dataclasses
import hashlib
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pgen import models
from pgen.core import chunks, compiler, pixels, sharding, workdir as workdir_files
from pgen.data import options as data_options
from pgen.errors import ArgumentError, RunNotFoundError
from pgen.gan import sampling
from pgen.models import modulated
from pgen.training import checkpointing

EXPORT_FUNCTION = "generator.stablehlo"
SAMPLE_CHUNK = 500  # Images rendered at once: bounds memory for any number of samples.
MAX_SEED = 2**32 - 1  # Latents are drawn from uint32 seeds: a larger one would wrap.


# The fold_in constant of the noise that noise_mode="random" draws from the latents.
RANDOM_NOISE_STREAM = 0x4E01


@dataclasses.dataclass(frozen=True)
class RenderOptions:
  """What a StyleGAN2 generator may be asked for beyond z and labels (the defaults render
  as the model trains its sample grids: no truncation, each layer's fixed noise)."""
  truncation: float | None = None  # psi: w pulled towards w_avg (per class when conditional).
  noise_mode: str | None = None  # "const", "random" (drawn from the latents) or "none".

  def record(self) -> dict:
    return {"truncation": self.truncation, "noise_mode": self.noise_mode}

  def check(self, model_name: str, source: str) -> None:
    """ArgumentError for an option the family's generator does not have."""
    supported = models.generation_options(model_name)
    for option, value, what in (("truncation", self.truncation, "a w to truncate"),
                                ("noise_mode", self.noise_mode, "noise inputs")):
      if value is not None and option not in supported:
        raise ArgumentError(f"{option} needs a StyleGAN2 run (model.name='stylegan2'); "
                            f"{source} is a {model_name!r} run, whose generator has no {what}.",
                            argument=option)
    if self.noise_mode is not None and self.noise_mode not in modulated.NOISE_MODES:
      raise ArgumentError(f"noise_mode={self.noise_mode} is unknown; choose one of "
                          f"{modulated.NOISE_MODES}.", argument="noise_mode")

  def generator_kwargs(self, z) -> dict:
    """The generator's keyword arguments for latents `z`; random noise is drawn from them,
    so the same latents give the same images (render_function draws it image by image)."""
    kwargs = {}
    if self.truncation is not None:
      kwargs["truncation_psi"] = self.truncation
    if self.noise_mode is not None:
      kwargs["noise_mode"] = self.noise_mode
    if self.noise_mode == "random":
      bits = jnp.sum(jax.lax.bitcast_convert_type(jnp.asarray(z, jnp.float32), jnp.uint32))
      kwargs["rngs"] = {"noise": jax.random.fold_in(
          jax.random.PRNGKey(RANDOM_NOISE_STREAM), bits)}
    return kwargs


@dataclasses.dataclass(frozen=True)
class TrainedGenerator:
  render: Callable  # (z (N, latent_dim) float32, labels (N,) int32 or None) -> uint8 NHWC
  latent_dim: int
  image_shape: tuple  # (H, W, C)
  class_names: tuple  # The dataset's classes (empty when it has none).
  conditional: bool
  step: int  # Training step of the weights.
  source: str  # The workdir or export directory.
  config: ml_collections.ConfigDict | None = None  # The run's (None for an export).
  options: RenderOptions = RenderOptions()  # Of `render` (an export's are fixed at export).
  # StyleGAN2 checkpoints: (z_coarse, z_fine, labels, cutoff) -> uint8 images whose first
  # `cutoff` ws come from z_coarse and the rest from z_fine; None otherwise.
  mix_styles: Callable | None = None
  num_ws: int = 0  # StyleGAN2: how many ws its synthesis network takes.
  # SHA-256 naming exactly this function: an export's serialized StableHLO, or a
  # checkpoint's files with the render options (reviews record which generator they judged).
  identity: str = ""


def ema_variables(state) -> dict:
  """The EMA generator's variables in a train state."""
  return {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}


def render_function(setup, variables, options: RenderOptions = RenderOptions()) -> Callable:
  """The pure `(z, labels) -> uint8 images` of `setup`'s generator with `variables`; an
  unconditional generator ignores `labels`."""
  conditional = bool(setup.num_classes)

  def render(z, labels):
    return sampling.render_images(setup.generator, variables, z, labels if conditional else None,
                                 **options.generator_kwargs(z))

  if options.noise_mode != "random":
    return render

  def render_each(z, labels):  # Each image's noise from its own latent, not the batch's.
    labels = jnp.zeros((z.shape[0],), jnp.int32) if labels is None else labels
    return jax.vmap(lambda z1, label: render(z1[None], label[None])[0])(z, labels)

  return render_each


def style_mixing_function(setup, variables, options: RenderOptions = RenderOptions()):
  """StyleGAN2's `(z_coarse, z_fine, labels, cutoff) -> uint8 images`: ws [0, cutoff) from
  z_coarse, the rest from z_fine (both truncated alike); `cutoff` is static."""
  conditional = bool(setup.num_classes)
  truncation = {} if options.truncation is None else {"truncation_psi": options.truncation}

  def mix(z_coarse, z_fine, labels, cutoff):
    labels = labels if conditional else None
    coarse, fine = (setup.generator.apply(variables, z, labels, method="map_latents",
                                          **truncation) for z in (z_coarse, z_fine))
    ws = jnp.where(jnp.arange(coarse.shape[1])[None, :, None] < cutoff, coarse, fine)
    synthesis = {k: v for k, v in options.generator_kwargs(z_coarse).items()
                 if k in ("noise_mode", "rngs")}
    return pixels.to_uint8(setup.generator.apply(variables, ws, method="synthesize",
                                                 **synthesis))

  return mix


def from_state(setup, state, *, config: ml_collections.ConfigDict, image_shape: tuple,
               class_names: tuple, source: str,
               options: RenderOptions = RenderOptions()) -> TrainedGenerator:
  """The EMA generator of a train `state` (of `setup`, pgen.gan.state.build's)."""
  options.check(config.model.name, source)
  variables = ema_variables(state)
  render = compiler.jit(render_function(setup, variables, options))
  mix_styles, num_ws = None, 0
  if "truncation" in models.generation_options(config.model.name):
    mix = compiler.jit(style_mixing_function(setup, variables, options), static_argnums=(3,))
    mix_styles, num_ws = lambda *args: np.asarray(mix(*args)), setup.generator.num_ws  # noqa: E731
  return TrainedGenerator(
      render=lambda z, labels: np.asarray(render(z, labels)),
      latent_dim=config.model.latent_dim, image_shape=tuple(image_shape),
      class_names=tuple(class_names), conditional=bool(setup.num_classes),
      step=int(sharding.to_host(state.step)), source=source, config=config, options=options,
      mix_styles=mix_styles, num_ws=num_ws)


def checkpoint_identity(workdir: str, step: int, options: RenderOptions) -> str:
  """The identity of a checkpoint's EMA generator rendered with `options`."""
  digest = hashlib.sha256(checkpointing.checkpoint_sha256(workdir, step).encode())
  digest.update(json.dumps(options.record(), sort_keys=True).encode())
  return digest.hexdigest()


def from_checkpoint(workdir: str, step: int | None = None,
                    options: RenderOptions = RenderOptions()) -> TrainedGenerator:
  config, info, setup, state = checkpointing.restore_run_state(workdir, step)
  generator = from_state(setup, state, config=config, image_shape=info["image_shape"],
                         class_names=info["class_names"], source=workdir, options=options)
  return dataclasses.replace(generator,
                             identity=checkpoint_identity(workdir, generator.step, options))


def from_export(directory: str, options: RenderOptions = RenderOptions()) -> TrainedGenerator:
  with open(os.path.join(directory, workdir_files.EXPORT_INFO)) as f:
    info = json.load(f)
  baked = RenderOptions(info.get("truncation"), info.get("noise_mode"))
  for option, asked, fixed in (("truncation", options.truncation, baked.truncation),
                               ("noise_mode", options.noise_mode, baked.noise_mode)):
    if asked is not None and asked != fixed:
      raise ArgumentError(
          f"{option}={asked}: {directory} was exported with {option}={fixed}, which its "
          f"function has built in; export the run again with {option}={asked}, or leave "
          f"{option} out.", argument=option)
  with open(os.path.join(directory, EXPORT_FUNCTION), "rb") as f:
    serialized = f.read()
  exported = jax.export.deserialize(bytearray(serialized))
  sizes = tuple(info.get("label_sizes", ()))

  def render(z, labels):
    labels = np.zeros((len(z),), np.int32) if labels is None else np.asarray(labels)
    if sizes:  # The function takes each attribute's value.
      labels = data_options.attribute_values(labels, sizes)
    return np.asarray(exported.call(jnp.asarray(z, jnp.float32), jnp.asarray(labels, jnp.int32)))

  return TrainedGenerator(
      render=render, latent_dim=info["latent_dim"], image_shape=tuple(info["image_shape"]),
      class_names=tuple(info["class_names"]), conditional=info["conditional"],
      step=info["source_step"], source=directory, options=baked,
      identity=hashlib.sha256(serialized).hexdigest())


def is_export(path: str) -> bool:
  return workdir_files.is_export(path)


def load(path: str, step: int | None = None,
         options: RenderOptions = RenderOptions()) -> TrainedGenerator:
  """An export directory (it holds export.json) or a training workdir."""
  if is_export(path):
    if step is not None:
      raise RunNotFoundError(f"{path} is an export of step {step}'s weights only; --step "
                             "applies to training workdirs.")
    return from_export(path, options)
  return from_checkpoint(path, step, options)


def sample(generator: TrainedGenerator, num: int, *, seed: int = 0,
           labels: np.ndarray | None = None) -> np.ndarray:
  """`num` images from latents drawn from `seed` (chunk i of SAMPLE_CHUNK images uses
  fold_in(key, i)); a conditional generator's `labels` (num,) default to evenly spread
  classes."""
  if num <= 0:
    raise ArgumentError(f"num={num} must be positive.", argument="num")
  check_seeds(seed, 1)
  if generator.conditional and labels is None:
    labels = sampling.balanced_labels(num, len(generator.class_names))
  key = jax.random.PRNGKey(seed)

  def chunk(index, rows):  # rows: the chunk's labels (dummies when unconditional)
    z = jax.random.normal(jax.random.fold_in(key, index), (len(rows), generator.latent_dim))
    return generator.render(z, rows if generator.conditional else None)

  rows = labels if labels is not None else np.zeros((num,), np.int32)
  return chunks.map_chunks(chunk, [rows], SAMPLE_CHUNK)


def check_seeds(first: int, count: int) -> None:
  """An ArgumentError unless seeds `first` .. `first + count - 1` are all in 0 .. MAX_SEED:
  checked before anything is rendered or written."""
  last = first + max(count, 1) - 1
  if first < 0 or last > MAX_SEED:
    raise ArgumentError(f"seed={first if first < 0 else last} is outside 0 .. {MAX_SEED} "
                        "(seeds are 32-bit: a larger one would give another seed's image); "
                        "choose a smaller --seed.", argument="seed")


def latents_for_seeds(generator: TrainedGenerator, seeds) -> jax.Array:
  """One latent per seed, each a function of its seed alone (catalogs: image <seed>.png is
  the same whatever else is generated with it). A seed outside 0 .. MAX_SEED is an
  ArgumentError: wrapped, it would render another seed's image."""
  seeds = [int(seed) for seed in seeds]
  for seed in seeds:
    check_seeds(seed, 1)
  keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
  return jax.vmap(lambda k: jax.random.normal(k, (generator.latent_dim,)))(keys)
