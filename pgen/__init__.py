"""pgen: a JAX/Flax trainer for generative adversarial networks on product images.

The command line (`python -m pgen COMMAND --help`) and these functions do the same work:

    import pgen
    state = pgen.train("fashion_mnist_dcgan:smoke", "/tmp/run")  # a packaged config, or a path
    generator = pgen.load("/tmp/run")                  # a workdir's checkpoint, or an export
    images = pgen.sample(generator, seeds=range(8))    # uint8 (8, H, W, C), one image per seed
    metrics = pgen.evaluate("/tmp/run", num=1000)      # FD, KID, precision/recall, ...

Each function loads JAX (and, to train or evaluate, TensorFlow) when it is first called, so
`import pgen` stays cheap. docs/python_api.md has a longer walk-through.
"""

__version__ = "0.1.0"


def train(config, workdir: str):
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final
  state. `config` is a ConfigDict, a config file's path or a packaged config's name, either
  with an optional `:variant`. A fine-tuning run (feedback.weight > 0) gets its reward from
  feedback.acceptance, as `python -m pgen train` does.

  >>> state = pgen.train("fashion_mnist_dcgan:smoke", workdir)
  >>> int(state.step)
  6
  """
  from pgen import config as config_lib, configs  # Loads JAX and TensorFlow: on call.
  from pgen.feedback import acceptance
  from pgen.training.loop import train_and_evaluate
  if isinstance(config, str):
    config = config_lib.load(configs.path_of(config))
  config = config_lib.resolve(config)
  return train_and_evaluate(config, workdir, make_reward=acceptance.make_reward(config))


def load(path: str, step: int | None = None, *, truncation: float | None = None,
         noise_mode: str | None = None):
  """The trained generator of a workdir (its checkpoint at `step`, default the latest) or
  of an export; StyleGAN2's `truncation` psi and `noise_mode` shape what it renders.

  >>> generator = pgen.load(workdir)
  >>> generator.step, generator.image_shape
  (6, (32, 32, 1))
  """
  from pgen.generation import generators  # Loads JAX: on call.
  options = generators.RenderOptions(truncation=truncation, noise_mode=noise_mode)
  return generators.load(path, step, options=options)


def sample(generator, num: int | None = None, *, seeds=None, seed: int = 0,
           condition: str | None = None):
  """uint8 images (N, H, W, C) of a generator from `load`: one per seed of `seeds` (each a
  function of its seed alone, as catalogs make them), or `num` drawn from `seed`. A
  conditional generator's `condition` names one class (`"label=Dress"`, or
  `"label=dress,colour=red"` on combined attributes); without it `num` images spread evenly
  over the classes, and seeds cycle through them.

  >>> pgen.sample(generator, seeds=[3, 4]).shape
  (2, 32, 32, 1)
  >>> bool((pgen.sample(generator, seeds=[4]) == pgen.sample(generator, seeds=[3, 4])[1:]).all())
  True
  """
  from pgen.generation import generate  # Loads JAX: on call.
  return generate.sample_images(generator, num, seeds=seeds, seed=seed, condition=condition)


def evaluate(workdir: str, *, step: int | None = None, num: int = 10000,
             eval_config=None) -> dict:
  """Scores `num` samples of a run's checkpoint against its dataset (FD, KID,
  precision/recall, density/coverage, class metrics, memorization) in the run's eval
  settings, or in `eval_config`'s; writes metrics_<step>.json into the workdir.

  >>> metrics = pgen.evaluate(workdir, num=50)
  >>> metrics["step"], metrics["fd"] > 0
  (6, True)
  """
  from pgen.generation import generate  # Loads JAX and TensorFlow: on call.
  return generate.evaluate_checkpoint(workdir, step=step, num=num, eval_config=eval_config)
