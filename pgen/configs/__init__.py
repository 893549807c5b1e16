"""The configs that ship with pgen, by name: `python -m pgen train --config NAME[:VARIANT]`
takes one of these (`fashion_mnist_dcgan`, `fashion_mnist_dcgan:smoke`) as well as a path
to a config file of your own, which can build on them:

    from pgen.configs import folder_dcgan

    def get_config():
      config = folder_dcgan.get_config()
      config.total_steps = 20_000
      return config

In a checkout, `configs/` is this folder. docs/configs.md describes each.
"""

import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
  """The packaged configs' names."""
  return sorted(name[:-3] for name in os.listdir(FOLDER)
                if name.endswith(".py") and not name.startswith("_"))


def path_of(spec: str, folder: str = FOLDER) -> str:
  """A config file's path, with its `:variant` kept: `spec` itself when it names a file,
  else the packaged config it names (`fashion_mnist_dcgan:smoke` ->
  .../pgen/configs/fashion_mnist_dcgan.py:smoke; `folder` is where sweep files are looked
  up). Unknown names are returned unchanged, for the caller's "no such file" error."""
  path, colon, variant = spec.partition(":")
  if os.path.exists(path) or os.sep in path or path.endswith(".py"):
    return spec
  packaged = os.path.join(folder, f"{path}.py")
  return packaged + colon + variant if os.path.isfile(packaged) else spec
