r"""A trained generator out of the trainer: `python -m pgen export --workdir W --out DIR`.

    export("runs/fmnist", "exports/fmnist")        # [step=N]; returns export.json's content

writes, from the checkpoint's EMA generator alone (no optimizer state, no discriminator):

| DIR/ | what |
|---|---|
| params/ | the generator's parameters and BatchNorm statistics (Orbax) |
| generator.stablehlo | `(z (B, latent) float32, labels (B,) int32) -> uint8 (B, H, W, C)` (labels (B, attributes) for a run on data.label_keys) serialized with `jax.export`: StableHLO with a symbolic batch size, for CPU, CUDA and TPU; loads without pgen's code (`jax.export.deserialize(...).call(z, labels)`) |
| saved_model/ | the same function as a TensorFlow SavedModel (`jax2tf`), signature `serving_default`: inputs `z`, `labels`, output `images`; for TensorFlow Serving |
| export.json | image shape, class names (and `attributes`: each attribute's values, in the order of the labels' columns), latent size, StyleGAN2's truncation and noise mode (null: none / the default), pgen and JAX versions, source workdir, step and the SHA-256 of the source checkpoint |

`labels` are ignored by an unconditional generator (pass zeros). `python -m pgen generate
--export DIR` samples from the StableHLO without TensorFlow.
"""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
import tensorflow as tf
from jax.experimental import jax2tf

import pgen
from pgen.core import workdir as workdir_files
from pgen.data import options as data_options
from pgen.errors import ArgumentError
from pgen.generation import generators
from pgen.training import checkpointing

PLATFORMS = ("cpu", "cuda", "tpu")
SAVED_MODEL = "saved_model"
PARTIAL_MARK = ".pgen-partial-export"  # In <out>.partial while an export is written.


def _write_stablehlo(render, latent_dim: int, label_shape: tuple, path: str) -> None:
  (batch,) = jax.export.symbolic_shape("b")
  exported = jax.export.export(jax.jit(render), platforms=PLATFORMS)(
      jax.ShapeDtypeStruct((batch, latent_dim), jnp.float32),
      jax.ShapeDtypeStruct((batch, *label_shape), jnp.int32))
  with open(path, "wb") as f:
    f.write(exported.serialize())


def _write_saved_model(render, latent_dim: int, label_shape: tuple, path: str) -> None:
  """The function as a SavedModel through jax2tf (StableHLO inside an XlaCallModule op)."""
  label_polymorphism = "(b, _)" if label_shape else "(b,)"
  converted = jax2tf.convert(render, polymorphic_shapes=["(b, _)", label_polymorphism],
                             with_gradient=False, native_serialization_platforms=PLATFORMS)
  module = tf.Module()

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, latent_dim], tf.float32, name="z"),
      tf.TensorSpec([None, *label_shape], tf.int32, name="labels")])
  def serve(z, labels):
    return {"images": converted(z, labels)}

  module.serve = serve
  tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _taking_attribute_labels(render, label_sizes: tuple):
  """`render` of combined labels as a function of (B, attributes) values, each attribute's
  value an index into its values (export.json's `attributes`)."""
  strides = jnp.asarray(data_options.label_strides(label_sizes), jnp.int32)
  return lambda z, labels: render(z, jnp.sum(labels * strides, axis=-1))


def _size(path: str) -> int:
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _partial_dir(out: str) -> str:
  """`<out>.partial`, empty and marked as an export's: one left by an interrupted export
  (it holds PARTIAL_MARK) is cleared; anything else by that name is not pgen's to delete."""
  tmp = out.rstrip("/") + ".partial"
  if os.path.lexists(tmp):
    if os.path.islink(tmp) or not os.path.isfile(os.path.join(tmp, PARTIAL_MARK)):
      raise ArgumentError(f"out={out}: {tmp} exists and is not a partial export of pgen (no "
                          f"{PARTIAL_MARK}); move it away or export to another --out.",
                          argument="out")
    shutil.rmtree(tmp)
  os.makedirs(tmp)
  with open(os.path.join(tmp, PARTIAL_MARK), "w") as f:
    f.write("An unfinished `python -m pgen export`: the next export to this --out clears it.\n")
  return tmp


def export(workdir: str, out: str, *, step: int | None = None,
           options: generators.RenderOptions = generators.RenderOptions()) -> dict:
  """Writes the export of `workdir`'s checkpoint at `step` (default latest) to `out`;
  StyleGAN2's `options` (truncation, noise mode) are built into its function."""
  if os.path.exists(out) and os.listdir(out):
    raise ArgumentError(f"out={out} exists and is not empty; export to a new directory.",
                        argument="out")
  config, info, setup, state = checkpointing.restore_run_state(workdir, step)
  options.check(config.model.name, workdir)
  step = int(jax.device_get(state.step))
  variables = generators.ema_variables(state)
  render = generators.render_function(setup, variables, options)
  label_sizes = tuple(info.get("label_sizes", ()))
  label_shape = (len(label_sizes),) if label_sizes else ()
  if label_sizes:  # The function takes each attribute's value: (B, attributes).
    render = _taking_attribute_labels(render, label_sizes)
  tmp = _partial_dir(out)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(os.path.join(tmp, workdir_files.EXPORT_PARAMS)), jax.device_get(variables))
  checkpointer.wait_until_finished()
  _write_stablehlo(render, config.model.latent_dim, label_shape,
                   os.path.join(tmp, generators.EXPORT_FUNCTION))
  _write_saved_model(render, config.model.latent_dim, label_shape,
                     os.path.join(tmp, SAVED_MODEL))
  attributes = data_options.attributes_of(info["class_names"])
  labels = f"int32 (B, {len(label_sizes)}): {', '.join(attributes)}" if label_sizes else (
      "int32 (B,)")
  record = {
      "format": 1,
      "function": f"(z float32 (B, latent_dim), labels {labels}) -> images uint8 (B, H, W, C)",
      "image_shape": list(info["image_shape"]), "class_names": list(info["class_names"]),
      **({"attributes": attributes, "label_sizes": list(label_sizes)} if label_sizes else {}),
      "conditional": bool(setup.num_classes), "latent_dim": config.model.latent_dim,
      **options.record(),
      "model": config.model.name, "platforms": list(PLATFORMS),
      "pgen_version": pgen.__version__, "jax_version": jax.__version__,
      "source_workdir": os.path.abspath(workdir), "source_step": step,
      "source_checkpoint_sha256": checkpointing.checkpoint_sha256(workdir, step),
      "files": {name: _size(os.path.join(tmp, name))
                for name in (workdir_files.EXPORT_PARAMS, generators.EXPORT_FUNCTION,
                             SAVED_MODEL)}}
  with open(os.path.join(tmp, workdir_files.EXPORT_INFO), "w") as f:
    json.dump(record, f, indent=2)
  os.remove(os.path.join(tmp, PARTIAL_MARK))
  if os.path.exists(out):
    os.rmdir(out)  # Empty (checked above).
  os.replace(tmp, out)  # Complete or absent: never half an export.
  return record
