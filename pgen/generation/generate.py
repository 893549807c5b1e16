"""Images from a trained generator (a run's checkpoint or an export): a PNG grid or an
.npz of samples. Catalogs are pgen.generation.catalog's, interpolations
pgen.generation.interpolate's.

    generate("runs/fmnist", num=64, out="grid.png")
    generate("exports/fmnist", num=10000, out="samples.npz")  # `images`: uint8 (N, H, W, C)

For a class-conditional generator, `class_name` (an index or a class name) or `condition`
(label=dress,colour=red; colour=red for every category in red) picks the classes; a .png
of several classes becomes one grid per class (grid_<class>.png) and an .npz holds `num`
samples spread evenly over them, with their `labels`.
Generating needs the workdir or export alone (pgen.generation.generators), not the dataset.
"""

import os

import numpy as np
from absl import logging

from pgen import config as config_lib
from pgen.core import pixels
from pgen.data import options as data_options
from pgen.errors import ArgumentError
from pgen.gan import sampling
from pgen.generation import catalog, generators


def class_index(class_name: str, class_names) -> int:
  """The index of `class_name`, given as an index or a name of the run's dataset."""
  if class_name.isdigit() and int(class_name) < len(class_names):
    return int(class_name)
  if class_name in class_names:
    return list(class_names).index(class_name)
  raise ArgumentError(f"class={class_name} is not a class of this run; use an index below "
                      f"{len(class_names)} or one of {list(class_names)}.", argument="class")


def _class_values(class_names) -> list[dict]:
  """{key: value name} of each class: its attributes on combined labels (data.label_keys),
  else the one key `label` whose values are the class names."""
  if data_options.attributes_of(class_names):
    return [data_options.parse_combination(name) for name in class_names]
  return [{"label": name} for name in class_names]


def _attributes(class_names) -> dict:
  """{key: its value names, in order} of a run's classes (_class_values')."""
  return data_options.attributes_of(class_names) or {"label": list(class_names)}


def condition_labels(spec: str, class_names) -> list[int]:
  """The labels a condition `KEY=VALUE[|VALUE...][,KEY=VALUE...]` selects, in label order
  (values by name or index): the classes whose attributes take one of the values given for
  every key named; a key not named takes all its values. For one attribute the key is
  `label` (label=Dress); for combined labels (data.label_keys), label=dress,colour=red is
  one combination, colour=red every category in red, label=dress|tshirt both in every
  colour."""
  attributes = _attributes(class_names)
  keys = ", ".join(attributes)
  try:
    asked = data_options.parse_combination(spec)
  except ValueError as error:
    raise ArgumentError(f"condition={spec}: {error} the keys are {keys}.",
                        argument="condition") from None
  if set(asked) - set(attributes):
    raise ArgumentError(f"condition={spec} names a key this run lacks; the keys are {keys}.",
                        argument="condition")
  chosen = {}
  for key, values in asked.items():
    known = attributes[key]
    chosen[key] = set()
    for value in values.split("|"):
      if value.isdigit() and int(value) < len(known):
        value = known[int(value)]
      if value not in known:
        raise ArgumentError(f"condition={spec}: {key}={value} is not a value of this run; use "
                            f"an index below {len(known)} or one of {known}.",
                            argument="condition")
      chosen[key].add(value)
  return [label for label, values in enumerate(_class_values(class_names))
          if all(value in chosen.get(key, (value,)) for key, value in values.items())]


def condition_label(spec: str, class_names) -> int:
  """The label of a condition that names one value of every key (condition_labels)."""
  labels = condition_labels(spec, class_names)
  if len(labels) > 1:
    raise _several_classes("condition", spec, class_names, len(labels))
  return labels[0]


def _several_classes(argument: str, spec: str, class_names, count: int) -> ArgumentError:
  keys = ", ".join(_attributes(class_names))
  return ArgumentError(f"{argument}={spec} selects {count} classes; this output takes one: "
                       f"name one value of every key ({keys}).", argument=argument)


def selected_labels(generator: generators.TrainedGenerator, class_name: str | None,
                    condition: str | None = None) -> list[int] | None:
  """The labels `--class` or `--condition` (condition_labels) select; None without them
  (every class). `--class` is a class name or index, or on combined labels a value of the
  first attribute (the category: `--class dress` is `--condition label=dress`). An error for
  an unconditional generator."""
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
    return condition_labels(condition, generator.class_names)
  attributes = data_options.attributes_of(generator.class_names)
  if attributes and class_name not in generator.class_names and not class_name.isdigit():
    category = next(iter(attributes))
    if class_name in attributes[category]:
      return condition_labels(f"{category}={class_name}", generator.class_names)
  return [class_index(class_name, generator.class_names)]


def class_label(generator: generators.TrainedGenerator, class_name: str | None,
                condition: str | None = None) -> int | None:
  """The one label `--class` or `--condition` asks for (selected_labels), None without
  them; an error when they select several classes."""
  labels = selected_labels(generator, class_name, condition)
  if labels is not None and len(labels) > 1:
    argument, spec = ("class", class_name) if condition is None else ("condition", condition)
    raise _several_classes(argument, spec, generator.class_names, len(labels))
  return None if labels is None else labels[0]


def generate(source: str, num: int, out: str, *, step: int | None = None, seed: int = 0,
             class_name: str | None = None, condition: str | None = None,
             options: generators.RenderOptions = generators.RenderOptions()) -> list[str]:
  """Writes `num` samples of a workdir's checkpoint at `step` (default latest) or of an
  export to `out`; returns the paths. A conditional run's samples are of the classes
  `class_name` or `condition` select (selected_labels; default all): a .png is one grid per
  class when they select several, an .npz holds `num` samples spread evenly over them with
  their `labels`. `options`: StyleGAN2's truncation and noise mode."""
  if not out.endswith((".png", ".npz")):
    raise ArgumentError(f"out={out} must end in .png (a grid) or .npz (arrays).",
                        argument="out")
  generator = generators.load(source, step, options)
  class_names = generator.class_names
  selected = selected_labels(generator, class_name, condition)
  if generator.conditional and selected is None:
    selected = list(range(len(class_names)))
  grid_per_class = out.endswith(".png") and selected is not None and len(selected) > 1
  labels = None
  if grid_per_class:
    labels = np.repeat(np.asarray(selected, np.int32), num)
  elif selected is not None:
    labels = np.asarray(selected, np.int32)[sampling.balanced_labels(num, len(selected))]
  images = generators.sample(generator, num if labels is None else len(labels), seed=seed,
                             labels=labels)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if out.endswith(".npz"):
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    np.savez(out, **arrays)
    paths = [out]
  elif not grid_per_class:
    pixels.save_png(pixels.image_grid(images), out)
    paths = [out]
  else:
    paths = []
    for label in selected:
      path = f"{out[:-len('.png')]}_{catalog.file_safe(class_names[label])}.png"
      pixels.save_png(pixels.image_grid(images[labels == label]), path)
      paths.append(path)
  logging.info("Wrote samples of step %d to %s", generator.step, ", ".join(paths))
  return paths


def sample_images(generator: generators.TrainedGenerator, num: int | None = None, *,
                  seeds=None, seed: int = 0, condition: str | None = None) -> np.ndarray:
  """uint8 images of `generator`: one per seed of `seeds` (latents_for_seeds: each image a
  function of its seed alone), or `num` drawn from `seed`. A conditional generator's
  `condition` names one class; without it `num` images spread evenly over the classes and
  `seeds` cycle through them."""
  if (num is None) == (seeds is None):
    raise ArgumentError("Give num (images drawn from seed) or seeds (one image per seed).",
                        argument="num")
  label = class_label(generator, None, condition)
  if seeds is None:
    labels = None if label is None else np.full((num,), label, np.int32)
    return generators.sample(generator, num, seed=seed, labels=labels)  # Default: balanced.
  seeds = list(seeds)
  labels = None
  if generator.conditional:
    labels = (np.full((len(seeds),), label, np.int32) if label is not None
              else np.arange(len(seeds), dtype=np.int32) % len(generator.class_names))
  return np.asarray(generator.render(generators.latents_for_seeds(generator, seeds), labels))


def evaluate_checkpoint(workdir: str, *, step: int | None = None, num: int = 10000,
                        eval_config=None) -> dict:
  """The evaluate command's scores of `num` samples of a run's checkpoint at `step`
  (default the latest) in its own eval settings or `eval_config`'s
  (pgen.evaluation.evaluate.evaluate_samples, handed this generator's sampler)."""
  from pgen.evaluation import evaluate  # Scoring loads TensorFlow; generating does not.
  generator = generators.from_checkpoint(workdir, step)
  config = generator.config
  if eval_config is not None:
    config = config_lib.resolve({**config.to_dict(), "eval": eval_config.to_dict()})

  def sample(count: int):
    labels = (sampling.balanced_labels(count, len(generator.class_names))
              if generator.conditional else None)
    return generators.sample(generator, count, labels=labels), labels

  return evaluate.evaluate_samples(sample, config, num=num, step=generator.step,
                                   out_dir=workdir)
