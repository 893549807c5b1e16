"""The training input pipeline: TFDS -> tf.data -> global, batch-sharded jax.Arrays.

    batches = train_batches(builder, config, mesh, start_step=int(state.step))
    batch = next(batches)   # {"image": (B, H, W, C) float32 in [-1, 1], "label": (B,) int32}

Each process reads its own contiguous shard of the split. The order is a pure function
of (seed, process layout, step): epoch e is shuffled with seed (seed, e), so a run that
resumes at step s rebuilds the pipeline at epoch s // steps_per_epoch and skips the
batches of that epoch already seen. A resumed run therefore sees exactly the batches an
uninterrupted run would (for the same process count).
"""

import collections
import dataclasses

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from pgen import sharding


@dataclasses.dataclass(frozen=True)
class InputInfo:
  image_shape: tuple  # (H, W, C) after preprocessing.
  num_classes: int
  class_names: tuple
  examples_per_process: int
  steps_per_epoch: int


def _pad_to_resolution(image: tf.Tensor, resolution: int, pad_value: int) -> tf.Tensor:
  """Centers the image on a resolution x resolution canvas of the background value."""
  h, w = image.shape[0], image.shape[1]
  if h > resolution or w > resolution:
    raise ValueError(
        f"Images are {h}x{w}, larger than data.resolution={resolution}; this pipeline pads "
        f"and never shrinks. Set --config.data.resolution to at least {max(h, w)}.")
  top, left = (resolution - h) // 2, (resolution - w) // 2
  return tf.pad(image, [[top, resolution - h - top], [left, resolution - w - left], [0, 0]],
                constant_values=pad_value)


def input_info(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict) -> InputInfo:
  features = builder.info.features
  h, w, c = features["image"].shape
  if h is None or w is None:
    raise ValueError(f"{config.data.name} has images of varying size; pgen's pipeline for it "
                     "needs a fixed image shape.")
  per_process_batch = config.batch_size // jax.process_count()
  split = tfds.even_splits(config.data.split, n=jax.process_count(), drop_remainder=True)
  examples = builder.info.splits[split[jax.process_index()]].num_examples
  steps_per_epoch = examples // per_process_batch
  if steps_per_epoch == 0:
    raise ValueError(f"Each process has {examples} examples of {config.data.split}, fewer than "
                     f"its batch of {per_process_batch}; lower --config.batch_size.")
  label = features["label"] if "label" in features else None
  return InputInfo(
      image_shape=(config.data.resolution, config.data.resolution, c),
      num_classes=label.num_classes if label is not None else 0,
      class_names=tuple(label.names) if label is not None else (),
      examples_per_process=examples,
      steps_per_epoch=steps_per_epoch)


def local_dataset(builder, config, *, start_step: int) -> tf.data.Dataset:
  """This process's batches from `start_step` on, as numpy-ready tf.data elements."""
  info = input_info(builder, config)
  per_process_batch = config.batch_size // jax.process_count()
  split = tfds.even_splits(config.data.split, n=jax.process_count(),
                           drop_remainder=True)[jax.process_index()]
  resolution, pad_value = config.data.resolution, config.data.pad_value
  has_label = info.num_classes > 0

  def preprocess(example):
    image = _pad_to_resolution(example["image"], resolution, pad_value)
    label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {"image": image, "label": label}

  examples = builder.as_dataset(split=split, shuffle_files=False)
  examples = examples.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).cache()
  shuffle_buffer = min(config.data.shuffle_buffer, info.examples_per_process)

  def epoch(e):
    seed = tf.cast(config.seed, tf.int64) * 1_000_003 + e
    return examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False).batch(
        per_process_batch, drop_remainder=True)

  def to_model_range(batch):
    batch["image"] = tf.cast(batch["image"], tf.float32) / 127.5 - 1.0
    return batch

  start_epoch, batches_seen = divmod(start_step, info.steps_per_epoch)
  ds = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  ds = ds.skip(batches_seen).map(to_model_range, num_parallel_calls=tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def train_batches(builder, config, mesh, *, start_step: int, device_prefetch: int = 2):
  """Yields global batches sharded over `mesh`, `device_prefetch` transfers ahead."""
  data_sharding = sharding.batch_split(mesh)
  local = local_dataset(builder, config, start_step=start_step).as_numpy_iterator()

  def to_global(batch):
    return {k: jax.make_array_from_process_local_data(data_sharding, v) for k, v in batch.items()}

  queue = collections.deque(to_global(next(local)) for _ in range(device_prefetch))
  for batch in local:
    queue.append(to_global(batch))
    yield queue.popleft()
