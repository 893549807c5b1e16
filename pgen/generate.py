"""Images from a trained run's EMA generator: a PNG grid or an .npz of samples.

    generate("runs/fmnist", num=64, out="grid.png")
    generate("runs/fmnist", num=10000, out="samples.npz")   # key `images`: uint8 (N, H, W, C)

For a class-conditional run, `class_name` (an index or a class name) picks the class of
every sample; without it, a .png becomes one grid per class (grid_<class>.png) and an
.npz holds `num` samples spread evenly over the classes, with their `labels`.
Generating needs the workdir alone (pgen.samples), not the dataset.
"""

import os

import numpy as np
from absl import logging

from pgen import samples
from pgen.errors import ArgumentError


def class_index(class_name: str, class_names) -> int:
  """The index of `class_name`, given as an index or a name of the run's dataset."""
  if class_name.isdigit() and int(class_name) < len(class_names):
    return int(class_name)
  if class_name in class_names:
    return list(class_names).index(class_name)
  raise ArgumentError(f"--class={class_name} is not a class of this run; use an index below "
                  f"{len(class_names)} or one of {list(class_names)}.")


def generate(workdir: str, num: int, out: str, *, step: int | None = None, seed: int = 0,
             class_name: str | None = None) -> list[str]:
  """Writes `num` samples of the checkpoint at `step` (default latest) to `out` (or, for a
  conditional run's .png without `class_name`, one grid per class); returns the paths."""
  if not out.endswith((".png", ".npz")):
    raise ArgumentError(f"--out={out} must end in .png (a grid) or .npz (arrays).")
  run = samples.load_run(workdir)
  class_names = run.class_names
  if class_name is not None and not run.conditional:
    raise ArgumentError(f"--class needs a class-conditional run; {workdir} trained with "
                    f"model.conditioning={run.config.model.conditioning!r}.")
  labels = None
  if class_name is not None:
    labels = np.full((num,), class_index(class_name, class_names), np.int32)
  per_class_grids = run.conditional and class_name is None and out.endswith(".png")
  if per_class_grids:
    labels = np.repeat(np.arange(len(class_names), dtype=np.int32), num)
  images, labels, restored_step = samples.sample_checkpoint(
      run, num if labels is None else len(labels), step=step, seed=seed, labels=labels)
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
      path = f"{out[:-len('.png')]}_{_file_safe(name)}.png"
      samples.save_png(samples.image_grid(images[labels == index]), path)
      paths.append(path)
  logging.info("Wrote samples of step %d to %s", restored_step, ", ".join(paths))
  return paths


def _file_safe(name: str) -> str:
  return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
