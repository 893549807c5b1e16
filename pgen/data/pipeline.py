"""The training input pipeline: TFDS -> tf.data -> global, batch-sharded jax.Arrays.

    batches = train_batches(builder, config, mesh, start_step=int(state.step))
    batch = next(batches)   # {"image": (B, H, W, C) float32 in [-1, 1], "label": (B,) int32}

The order of global batches is a pure function of (seed, step), independent of how many
processes and devices there are: every process reads the split's encoded records and
shuffles them identically (epoch e with seed (seed, e)), forms global batches, and decodes
only its own rows of each one. So a run gives the same batches on 1 process or 8, and a
run that resumes at step s (on any layout) rebuilds the pipeline at epoch
s // steps_per_epoch and skips the batches of that epoch already seen: it sees exactly
the batches an uninterrupted run would.
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
  num_examples: int
  steps_per_epoch: int


def _pad_to_resolution(image: tf.Tensor, resolution: int, pad_value: int) -> tf.Tensor:
  """Centers the image on a resolution x resolution canvas of the background value."""
  h, w = image.shape[0], image.shape[1]
  top, left = (resolution - h) // 2, (resolution - w) // 2
  return tf.pad(image, [[top, resolution - h - top], [left, resolution - w - left], [0, 0]],
                constant_values=pad_value)


def input_info(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict) -> InputInfo:
  features = builder.info.features
  h, w, c = features["image"].shape
  if h is None or w is None:
    raise ValueError(f"{config.data.name} has images of varying size; pgen's pipeline for it "
                     "needs a fixed image shape.")
  if h > config.data.resolution or w > config.data.resolution:
    raise ValueError(
        f"{config.data.name} images are {h}x{w}, larger than data.resolution="
        f"{config.data.resolution}; the pipeline pads and never shrinks. Set "
        f"--config.data.resolution to at least {max(h, w)}.")
  examples = builder.info.splits[config.data.split].num_examples
  steps_per_epoch = examples // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"{config.data.split} has {examples} examples, fewer than one batch of "
                     f"{config.batch_size}; lower --config.batch_size.")
  label = features["label"] if "label" in features else None
  return InputInfo(
      image_shape=(config.data.resolution, config.data.resolution, c),
      num_classes=label.num_classes if label is not None else 0,
      class_names=tuple(label.names) if label is not None else (),
      num_examples=examples,
      steps_per_epoch=steps_per_epoch)


def local_dataset(builder, config, *, start_step: int) -> tf.data.Dataset:
  """This process's rows of each global batch from `start_step` on."""
  info = input_info(builder, config)
  process_batch = config.batch_size // jax.process_count()
  first_row = jax.process_index() * process_batch
  resolution, pad_value = config.data.resolution, config.data.pad_value
  image_feature = builder.info.features["image"]
  has_label = info.num_classes > 0

  def preprocess(example):
    image = _pad_to_resolution(image_feature.decode_example(example["image"]), resolution,
                               pad_value)
    label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {"image": image, "label": label}

  # Records stay encoded until this process knows they are its own.
  records = builder.as_dataset(split=config.data.split, shuffle_files=False,
                               decoders={"image": tfds.decode.SkipDecoding()}).cache()
  shuffle_buffer = min(config.data.shuffle_buffer, info.num_examples)

  def epoch(e):
    seed = tf.cast(config.seed, tf.int64) * 1_000_003 + e
    shuffled = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    return shuffled.batch(config.batch_size, drop_remainder=True)

  def own_rows(batch):
    return {k: v[first_row:first_row + process_batch] for k, v in batch.items()}

  def to_model_range(batch):
    batch["image"] = tf.cast(batch["image"], tf.float32) / 127.5 - 1.0
    return batch

  start_epoch, batches_seen = divmod(start_step, info.steps_per_epoch)
  ds = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  ds = ds.skip(batches_seen).map(own_rows).unbatch()
  ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(process_batch, drop_remainder=True)
  ds = ds.map(to_model_range, num_parallel_calls=tf.data.AUTOTUNE)
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


def load_split(builder, config, split: str, limit: int | None = None):
  """A whole split (or its first `limit` examples), preprocessed like training images but
  kept uint8: (images (N, H, W, C), labels (N,)). In TFDS's fixed order."""
  info = input_info(builder, config)
  resolution, pad_value = config.data.resolution, config.data.pad_value

  def preprocess(example):
    label = example["label"] if info.num_classes else tf.constant(0, tf.int64)
    return _pad_to_resolution(example["image"], resolution, pad_value), tf.cast(label, tf.int32)

  split = f"{split}[:{limit}]" if limit else split
  ds = builder.as_dataset(split=split, shuffle_files=False).map(
      preprocess, num_parallel_calls=tf.data.AUTOTUNE).batch(1000)
  images, labels = zip(*tfds.as_numpy(ds))
  return np.concatenate(images), np.concatenate(labels)
