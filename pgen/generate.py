"""Images from a trained generator (a run's checkpoint or an export): a PNG grid or an
.npz of samples. Catalogs are pgen.catalog's, interpolations pgen.interpolate's.

    generate("runs/fmnist", num=64, out="grid.png")
    generate("exports/fmnist", num=10000, out="samples.npz")  # `images`: uint8 (N, H, W, C)

For a class-conditional generator, `class_name` (an index or a class name) picks the class
of every sample; without it, a .png becomes one grid per class (grid_<class>.png) and an
.npz holds `num` samples spread evenly over the classes, with their `labels`.
Generating needs the workdir or export alone (pgen.generators), not the dataset.
"""

import os

import numpy as np
from absl import logging

from pgen import catalog, generators, samples
from pgen.data import options as data_options
from pgen.errors import ArgumentError


def class_index(class_name: str, class_names) -> int:
  """The index of `class_name`, given as an index or a name of the run's dataset."""
  if class_name.isdigit() and int(class_name) < len(class_names):
    return int(class_name)
  if class_name in class_names:
    return list(class_names).index(class_name)
  raise ArgumentError(f"class={class_name} is not a class of this run; use an index below "
                      f"{len(class_names)} or one of {list(class_names)}.", argument="class")


def condition_label(spec: str, class_names) -> int:
  """The label of a condition `KEY=VALUE[,KEY=VALUE...]` (values by name or index): for one
  attribute the key is `label` (label=Dress); for labels that combine attributes
  (data.label_keys) every attribute is named (label=dress,colour=red)."""
  attributes = data_options.attributes_of(class_names)
  combined = bool(attributes)
  keys = list(attributes) if combined else ["label"]
  try:
    asked = data_options.parse_combination(spec)
  except ValueError as error:
    raise ArgumentError(f"condition={spec}: {error} the keys are {', '.join(keys)}.",
                        argument="condition") from None
  if set(asked) - set(keys) or (combined and set(asked) != set(keys)):
    raise ArgumentError(f"condition={spec} must name every key once; the keys are "
                        f"{', '.join(keys)} (e.g. {class_names[0] if combined else 'label=0'}).",
                        argument="condition")
  if not combined:
    try:
      return class_index(asked["label"], class_names)
    except ArgumentError as error:
      raise ArgumentError(f"condition={spec}: {error}", argument="condition") from None
  values = {}
  for key, value in asked.items():
    known = attributes[key]
    if value.isdigit() and int(value) < len(known):
      value = known[int(value)]
    if value not in known:
      raise ArgumentError(f"condition={spec}: {key}={value} is not a value of this run; use "
                          f"an index below {len(known)} or one of {known}.",
                          argument="condition")
    values[key] = value
  return list(class_names).index(",".join(f"{key}={values[key]}" for key in keys))


def class_label(generator: generators.TrainedGenerator, class_name: str | None,
                condition: str | None = None) -> int | None:
  """The label `--class` (a class name or index) or `--condition` (condition_label) asks
  for, None without them; an error for an unconditional generator."""
  if class_name is None and condition is None:
    return None
  argument = "class" if condition is None else "condition"
  if not generator.conditional:
    raise ArgumentError(f"{argument} needs a class-conditional run; {generator.source} has "
                        "no classes (model.conditioning='none').", argument=argument)
  if class_name is not None and condition is not None:
    raise ArgumentError("condition and --class both name the class; give one.",
                        argument="condition")
  if condition is not None:
    return condition_label(condition, generator.class_names)
  return class_index(class_name, generator.class_names)


def generate(source: str, num: int, out: str, *, step: int | None = None, seed: int = 0,
             class_name: str | None = None, condition: str | None = None,
             options: generators.RenderOptions = generators.RenderOptions()) -> list[str]:
  """Writes `num` samples of a workdir's checkpoint at `step` (default latest) or of an
  export to `out` (or, for a conditional .png without `class_name` or `condition`, one
  grid per class); returns the paths. `options`: StyleGAN2's truncation and noise mode."""
  if not out.endswith((".png", ".npz")):
    raise ArgumentError(f"out={out} must end in .png (a grid) or .npz (arrays).",
                        argument="out")
  generator = generators.load(source, step, options)
  class_names = generator.class_names
  label = class_label(generator, class_name, condition)
  labels = None if label is None else np.full((num,), label, np.int32)
  per_class_grids = generator.conditional and label is None and out.endswith(".png")
  if per_class_grids:
    labels = np.repeat(np.arange(len(class_names), dtype=np.int32), num)
  elif generator.conditional and labels is None:
    labels = samples.balanced_labels(num, len(class_names))
  images = generators.sample(generator, num if labels is None else len(labels), seed=seed,
                             labels=labels)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if out.endswith(".npz"):
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    np.savez(out, **arrays)
    paths = [out]
  elif not per_class_grids:
    samples.save_png(samples.image_grid(images), out)
    paths = [out]
  else:
    paths = []
    for index, name in enumerate(class_names):
      path = f"{out[:-len('.png')]}_{catalog.file_safe(name)}.png"
      samples.save_png(samples.image_grid(images[labels == index]), path)
      paths.append(path)
  logging.info("Wrote samples of step %d to %s", generator.step, ", ".join(paths))
  return paths
