"""Training data by `data.name`: a TFDS dataset (or one `prepare` made from a folder), or
batches made on the device.

    dataset = open_dataset(config)       # checks the dataset and reads what it holds
    dataset.info.image_shape             # (H, W, C) after preprocessing
    batches = dataset.batches(config, mesh, start_step=0)   # global uint8 image batches
    images_per_step(config)              # rows of each batch: a step's real images

TFDS datasets go through sources.py (finding and preparing builders) and pipeline.py
(tf.data); `data.name="synthetic"` through synthetic.py, which loads no TensorFlow.
"""

import dataclasses
from typing import Any, Callable, Iterator

SYNTHETIC = "synthetic"


def images_per_step(config) -> int:
  """Real images one train step consumes: batch_size for each of its optim.d_steps
  discriminator updates. The pipelines batch by it, epochs count by it, and the step splits
  its batch into d_steps columns."""
  return config.batch_size * config.optim.d_steps


@dataclasses.dataclass(frozen=True)
class InputInfo:
  image_shape: tuple  # (H, W, C) after preprocessing.
  num_classes: int
  class_names: tuple
  num_examples: int
  steps_per_epoch: int  # Train steps per epoch (each of images_per_step images).
  cache: str  # What the pipeline keeps in memory: "decoded", "encoded" or "none".
  # Values of each attribute a label combines (data.label_keys); () for one attribute.
  label_sizes: tuple = ()


@dataclasses.dataclass(frozen=True)
class Dataset:
  info: InputInfo
  # (config, mesh, start_step) -> global batches {"image": uint8 (B, H, W, C), "label": (B,)}
  # from `start_step` on, each a pure function of the seed and the step.
  batches: Callable[..., Iterator[dict]]
  builder: Any  # The TFDS builder (evaluation reads reference images); None when synthetic.


def open_dataset(config) -> Dataset:
  if config.data.name == SYNTHETIC:
    from pgen.data import synthetic  # noqa: PLC0415  (no TensorFlow on this path)
    return Dataset(synthetic.input_info(config), synthetic.train_batches, None)
  from pgen.data import pipeline, sources  # noqa: PLC0415
  builder = sources.get_builder(config.data)
  return Dataset(pipeline.input_info(builder, config),
                 lambda *args, **kwargs: pipeline.train_batches(builder, *args, **kwargs),
                 builder)
