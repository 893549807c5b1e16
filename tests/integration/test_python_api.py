"""The Python API that `pgen` exports (train, load, sample, evaluate): its docstring examples
run as written, on the smoke config by its packaged name."""

import doctest

import tensorflow_datasets as tfds

import pgen


def test_the_docstring_examples_of_pgen_s_api_run(fmnist_data_dir, tmp_path, monkeypatch):
  # The packaged smoke config reads TFDS's default data_dir: the one the tests prepared.
  monkeypatch.setattr(tfds.core.constants, "DATA_DIR", fmnist_data_dir)
  examples = {name: getattr(pgen, name) for name in ("train", "load", "sample", "evaluate")}
  finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
  globs = {"pgen": pgen, "workdir": str(tmp_path / "run")}
  ran = []
  for name, function in examples.items():  # In this order: each uses what the last made.
    for test in finder.find(function, name, globs=globs):
      test.globs = globs  # Shared, so `generator` from load's example reaches sample's.
      runner.run(test, clear_globs=False)
      ran.append((name, len(test.examples)))
  assert runner.summarize(verbose=False).failed == 0
  assert all(count >= 2 for _, count in ran) and len(ran) == len(examples), ran
