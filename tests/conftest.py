"""Shared fixtures: the real Fashion-MNIST prepared once from its IDX files, tiny configs, one
trained smoke run that read-only tests share, and a compilation cache for the session.

Layers: `pytest -m "not slow"` is the fast suite (CI); `slow` marks the multi-minute runs
(long training, every toolbox variant on 1 vs 8 devices, killed processes).
"""

import atexit
import contextlib
import fcntl
import os
import shutil
import sys
import tempfile

# XLA programs compiled by one test (or a test's subprocess) are reused by the others: the
# same smoke step compiles once per session instead of once per run. Set before JAX loads;
# subprocesses inherit it. A cache the caller set is left alone.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="pgen-test-xla-cache-")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_CACHE,
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import fashion_mnist_dcgan  # noqa: E402

IDX_DIR = "/usr/share/datasets/fashion-mnist"
# The fast suite's longest files (pytest --durations, 2026-12-01), run first: the workers
# (tests/run.sh: one per file, --no-loadscope-reorder) then finish together instead of
# one running a long file alone at the end.
_LONGEST_FIRST = ("test_train_step.py", "test_stylegan2_training.py", "test_stylegan2.py",
                  "test_evaluation.py", "test_rollback.py", "test_kill_anywhere.py",
                  "test_bench.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = os.path.basename(str(item.path))
    return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

  items.sort(key=rank)  # Stable: a file's tests keep their order.


def _run_dir(tmp_path_factory, name: str) -> str:
  """A directory of this test run that parallel workers (pytest -n) share."""
  base = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    base = base.parent  # The run's directory; each worker's own is below it.
  path = os.path.join(base, name)
  os.makedirs(path, exist_ok=True)
  return path


@contextlib.contextmanager
def _locked(path: str):
  with open(path + ".lock", "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    yield


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory):
  """Reference features are cached here for the run instead of in ~/.cache/pgen (pgen
  writes them atomically, so workers may share it)."""
  path = _run_dir(tmp_path_factory, "pgen_cache")
  os.environ["PGEN_CACHE_DIR"] = path
  return path


@pytest.fixture(scope="session")
def fmnist_data_dir(tmp_path_factory):
  """A TFDS data_dir holding fashion_mnist, prepared offline from the Debian package's files
  once per run (the first worker prepares it, the others wait and read it)."""
  if not os.path.isdir(IDX_DIR):
    pytest.fail(f"{IDX_DIR} is missing: run `apt-get install dataset-fashion-mnist` "
                "(.ci/run does).")
  from pgen.data import sources
  data_dir = _run_dir(tmp_path_factory, "tfds")
  config = fashion_mnist_dcgan.get_config()
  config.data.data_dir = data_dir
  config.data.download = False
  with _locked(data_dir):
    sources.get_builder(config.data)
  return data_dir


def _smoke_config(data_dir):
  config = fashion_mnist_dcgan.get_config("smoke")
  config.data.data_dir = data_dir
  config.data.download = False
  return config


@pytest.fixture
def smoke_config(fmnist_data_dir):
  return _smoke_config(fmnist_data_dir)


@pytest.fixture(scope="session")
def smoke_run(fmnist_data_dir, tmp_path_factory):
  """The smoke config trained once per run (6 steps, checkpoints at 3 and 6): tests that
  read a run (generate, evaluate, errors) share it; tests that change a run copy it
  (`smoke_run_copy`)."""
  from pgen.train import train_and_evaluate
  workdir = os.path.join(_run_dir(tmp_path_factory, "smoke_run"), "run")
  with _locked(workdir), _with_optimizations():  # Whichever module (fast_compile) asks first.
    if not os.path.isdir(os.path.join(workdir, "checkpoints", "6")):
      train_and_evaluate(_smoke_config(fmnist_data_dir), workdir)
  return workdir


@contextlib.contextmanager
def _with_optimizations():
  """XLA's optimizations on inside a fast_compile module: runs that tests compare with runs
  made outside one (smoke_run: exact resume) compile alike."""
  import jax
  before = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", before)


@contextlib.contextmanager
def _without_optimizations():
  """XLA compiles without most optimizations (several times faster, programs slower): for
  tests that compare numbers only with each other, never with recorded ones. The in-memory
  caches are cleared after, so no unoptimized program outlives it."""
  import jax
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)
  jax.clear_caches()


@pytest.fixture(scope="module")
def fast_compile():
  """A whole test module without most XLA optimizations (_without_optimizations)."""
  with _without_optimizations():
    yield


@pytest.fixture
def fast_compile_test():
  """One test without most XLA optimizations (_without_optimizations)."""
  with _without_optimizations():
    yield


@pytest.fixture
def smoke_run_copy(smoke_run, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(smoke_run, workdir)
  return workdir
