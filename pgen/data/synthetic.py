"""`data.name="synthetic"`: random batches made on the device from the seed and the step,
of the config's image shape (`data.resolution`, `data.synthetic_channels`) and classes
(`data.synthetic_classes`). No host input and no TensorFlow: what the train step costs
alone (bench/bench_accelerator.py), and a source for throughput tests.

    batches = train_batches(config, mesh, start_step=0)
"""

import functools

import jax
import jax.numpy as jnp

from pgen.core import sharding
from pgen.data import InputInfo, images_per_step
from pgen.data.options import target_size

# Nominal epoch: synthetic data has no end; this only sizes what the logs report.
_EXAMPLES = 1 << 20


def input_info(config) -> InputInfo:
  classes = config.data.synthetic_classes
  return InputInfo(
      image_shape=(*target_size(config.data.resolution), config.data.synthetic_channels),
      num_classes=classes, class_names=tuple(f"class_{i}" for i in range(classes)),
      num_examples=_EXAMPLES, steps_per_epoch=_EXAMPLES // images_per_step(config),
      cache="none")


def _batch(key, *, batch_size, image_shape, num_classes):
  image_key, label_key = jax.random.split(key)
  images = jax.random.randint(image_key, (batch_size, *image_shape), 0, 256, jnp.int32)
  labels = jax.random.randint(label_key, (batch_size,), 0, max(num_classes, 1), jnp.int32)
  return {"image": images.astype(jnp.uint8), "label": labels}


def train_batches(config, mesh, *, start_step: int):
  """Global batches, sharded over `mesh` as they are made: step s's batch is a function of
  (seed, s) alone, so a resumed run sees the batches an uninterrupted one would."""
  info = input_info(config)
  make = jax.jit(functools.partial(_batch, batch_size=images_per_step(config),
                                   image_shape=info.image_shape, num_classes=info.num_classes),
                 out_shardings=sharding.batch_split(mesh))
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5D47)
  step = start_step
  while True:
    yield make(jax.random.fold_in(key, step))
    step += 1
