"""The training input pipeline: TFDS -> tf.data -> global, batch-sharded jax.Arrays.

    batches = train_batches(builder, config, mesh, start_step=int(state.step))
    batch = next(batches)   # {"image": (N, H, W, C) uint8, "label": (N,) int32}

N is `images_per_step(config)`: batch_size for each of the step's optim.d_steps
discriminator updates.

The order of global batches is a pure function of (seed, step), independent of how many
processes and devices there are: every process reads the split's records and shuffles
them identically (epoch e with seed (seed, e)), forms global batches, and decodes only its
own rows of each one. So a run gives the same batches on 1 process or 8, and a run that
resumes at step s (on any layout) rebuilds the pipeline at epoch s // steps_per_epoch and
skips the batches of that epoch already seen: it sees exactly the batches an
uninterrupted run would. The checkpointed step is the pipeline's saved position.
Images travel to the devices as uint8 (a quarter of float32's bytes); the train step
scales them to [-1, 1].

Images of any size become `data.resolution` ((H, W), or a side) per `data.resize`:
"pad" fits the image inside keeping its aspect and centres it on `data.pad_value`
(images that already fit are not resized unless `data.upscale`), "crop" fills the canvas
and cuts the overflow evenly, "stretch" ignores the aspect. `data.resize_filter` names
the tf.image filter (antialiased when shrinking). Small datasets are kept in memory
(`data.cache`): decoded and resized when they fit in `data.cache_max_mb`, else encoded.
"""

import collections
import re

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from pgen.core import sharding

# `sources` first: it keeps TensorFlow off the accelerators.
from pgen.data import InputInfo, images_per_step, options, sources  # noqa: F401
from pgen.data.options import target_size

# tf.data functions run as traced graphs without AutoGraph's source conversion (which writes
# converted copies of them to /tmp): they are plain TensorFlow already.
_graph_fn = tf.autograph.experimental.do_not_convert


def _label_features(builder, config) -> list:
  """[(key, ClassLabel feature)] the label combines: data.label_keys, else data.label_key
  (none when it is empty)."""
  names = list(config.data.label_keys) or ([config.data.label_key] if config.data.label_key
                                            else [])
  features = builder.info.features
  found = []
  for key in names:
    if key not in features or not isinstance(features[key], tfds.features.ClassLabel):
      labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
      problem = (f"data.label_keys={tuple(names)!r} names {key!r}, which is not a class label"
                 if config.data.label_keys else f"data.label_key={key!r} is not a class label")
      raise sources.DatasetError(
          f"{problem} of {config.data.name}; its class labels are {labels}. Set "
          "--config.data.label_key (or label_keys) to them, or data.label_key to '' for no "
          "labels.")
    if len(names) > 1:
      unusable = [v for v in features[key].names if "," in v or "=" in v]
      if unusable:
        raise sources.DatasetError(
            f"{config.data.name}'s {key} values {unusable} hold ',' or '=', which name "
            "combined conditions (key=value,key=value); rename them in the labels CSV and "
            "prepare the dataset again.")
    found.append((key, features[key]))
  return found


def _labels_info(label_features) -> dict:
  """InputInfo's num_classes, class_names and label_sizes of the combined label."""
  if not label_features:
    return {"num_classes": 0, "class_names": ()}
  if len(label_features) == 1:
    feature = label_features[0][1]
    return {"num_classes": feature.num_classes, "class_names": tuple(feature.names)}
  sizes = tuple(feature.num_classes for _, feature in label_features)
  return {"num_classes": int(np.prod(sizes)), "label_sizes": sizes,
          "class_names": options.combination_names(
              [(key, tuple(feature.names)) for key, feature in label_features])}


def _num_examples(builder, split: str) -> int:
  try:
    return builder.info.splits[split].num_examples
  except KeyError:  # Split sizes unknown to the metadata (e.g. tfds.testing.mock_data).
    return int(builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
               .cardinality())


def _encoded_bytes(builder, split: str, num_examples: int):
  """Approximate size of the split's records on disk, None when unknown."""
  base = re.split(r"[\[+]", split)[0]
  try:
    full = builder.info.splits[base]
  except KeyError:
    return None
  if not full.num_bytes or not full.num_examples:
    return None
  return full.num_bytes * num_examples // full.num_examples


def input_info(builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict) -> InputInfo:
  height, width = target_size(config.data.resolution)
  channels = builder.info.features["image"].shape[-1]
  if channels is None:
    raise sources.DatasetError(
        f"{config.data.name} images have no fixed number of channels; pgen needs 1 "
        "or 3 (prepare folders with `python -m pgen prepare`, which stores RGB).")
  examples = _num_examples(builder, config.data.split)
  steps_per_epoch = examples // images_per_step(config)
  if steps_per_epoch == 0:
    raise sources.DatasetError(
        f"{config.data.split} has {examples} examples, fewer than one step's "
        f"{images_per_step(config)} (batch_size x optim.d_steps); lower --config.batch_size.")
  labels = _labels_info(_label_features(builder, config))
  cache = config.data.cache
  if cache == "auto":
    limit = config.data.cache_max_mb * 2**20
    encoded = _encoded_bytes(builder, config.data.split, examples)
    cache = ("decoded" if examples * height * width * channels <= limit else
             "encoded" if encoded is not None and encoded <= limit else "none")
  return InputInfo(
      image_shape=(height, width, channels),
      **labels,
      num_examples=examples,
      steps_per_epoch=steps_per_epoch,
      cache=cache)


def _resize_filter(image, height, width, method):
  """tf.image.resize to (height, width), back to uint8."""
  resized = tf.image.resize(tf.cast(image, tf.float32), tf.stack([height, width]),
                            method=method, antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def resize_image(image: tf.Tensor, size, *, mode: str, method: str, pad_value: int,
                 upscale: bool) -> tf.Tensor:
  """uint8 (h, w, C) of any size -> uint8 (H, W, C) per `mode` (see the module docstring)."""
  out_h, out_w = size
  channels = image.shape[-1]
  shape = tf.shape(image)
  h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
  if mode == "stretch":
    new_h, new_w = tf.constant(out_h), tf.constant(out_w)
  else:
    fit = tf.minimum if mode == "pad" else tf.maximum
    scale = fit(out_h / h, out_w / w)
    if mode == "pad" and not upscale:
      scale = tf.minimum(scale, 1.0)
    new_h = tf.cast(tf.round(h * scale), tf.int32)
    new_w = tf.cast(tf.round(w * scale), tf.int32)
    if mode == "pad":  # Rounding must not overflow the canvas nor vanish.
      new_h, new_w = tf.clip_by_value(new_h, 1, out_h), tf.clip_by_value(new_w, 1, out_w)
    else:  # ... nor leave a gap.
      new_h, new_w = tf.maximum(new_h, out_h), tf.maximum(new_w, out_w)
  same = tf.logical_and(tf.equal(new_h, shape[0]), tf.equal(new_w, shape[1]))
  image = tf.cond(same, lambda: image, lambda: _resize_filter(image, new_h, new_w, method))
  if mode == "crop":
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    image = image[top:top + out_h, left:left + out_w]
  elif mode == "pad":
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    image = tf.pad(image, [[top, out_h - new_h - top], [left, out_w - new_w - left], [0, 0]],
                   constant_values=pad_value)
  return tf.ensure_shape(image, (out_h, out_w, channels))


def _reader(builder, config, info: InputInfo, split: str):
  """(records: {"image": encoded, "label": int32}, preprocess: record -> uint8 image record)."""
  keys = [key for key, _ in _label_features(builder, config)] if info.num_classes else []
  # The combined label: the first key's value most significant (layers.attribute_rows).
  strides = options.label_strides(info.label_sizes) if info.label_sizes else (1,) * len(keys)
  image_feature = builder.info.features["image"]
  resize = dict(mode=config.data.resize, method=config.data.resize_filter,
                pad_value=config.data.pad_value, upscale=config.data.upscale)

  @_graph_fn
  def select(example):  # Only what training needs is read on and cached.
    label = tf.constant(0, tf.int32)
    for key, stride in zip(keys, strides):
      label += tf.cast(example[key], tf.int32) * stride
    return {"image": example["image"], "label": label}

  @_graph_fn
  def preprocess(record):
    image = resize_image(image_feature.decode_example(record["image"]), info.image_shape[:2],
                         **resize)
    return {"image": image, "label": record["label"]}

  records = builder.as_dataset(split=split, shuffle_files=False,
                               decoders={"image": tfds.decode.SkipDecoding()})
  return records.map(select), preprocess


def local_dataset(builder, config, *, start_step: int) -> tf.data.Dataset:
  """This process's rows of each global batch from `start_step` on."""
  info = input_info(builder, config)
  global_batch = images_per_step(config)
  process_batch = global_batch // jax.process_count()
  first_row = jax.process_index() * process_batch
  records, preprocess = _reader(builder, config, info, config.data.split)
  logging.info("Input: %s %s, %d examples to %s, resize=%s (%s), cache=%s, from step %d",
               config.data.name, config.data.split, info.num_examples, info.image_shape,
               config.data.resize, config.data.resize_filter, info.cache,
               start_step)
  # Records stay encoded until this process knows they are its own, unless the whole
  # (small) dataset is decoded once and kept.
  if info.cache == "decoded":
    records = records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).cache()
  elif info.cache == "encoded":
    records = records.cache()
  shuffle_buffer = min(config.data.shuffle_buffer, info.num_examples)

  @_graph_fn
  def epoch(e):
    seed = tf.cast(config.seed, tf.int64) * 1_000_003 + e
    shuffled = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    return shuffled.batch(global_batch, drop_remainder=True)

  @_graph_fn
  def own_rows(batch):
    return {k: v[first_row:first_row + process_batch] for k, v in batch.items()}

  start_epoch, batches_seen = divmod(start_step, info.steps_per_epoch)
  ds = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  ds = ds.skip(batches_seen).map(own_rows).unbatch()
  if info.cache != "decoded":
    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(process_batch, drop_remainder=True)
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
  split = f"{split}[:{limit}]" if limit else split
  records, preprocess = _reader(builder, config, info, split)
  ds = records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).map(
      _graph_fn(lambda r: (r["image"], r["label"]))).batch(1000)
  options = tf.data.Options()
  options.deterministic = True
  images, labels = zip(*tfds.as_numpy(ds.with_options(options)))
  return np.concatenate(images), np.concatenate(labels)
