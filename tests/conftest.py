"""Shared fixtures: the real Fashion-MNIST prepared once from its IDX files, tiny configs, one
trained smoke run that read-only tests share, compile scopes without most XLA optimizations,
and a compilation cache for the session.

Layers: `pytest -m "not slow"` is the fast suite (CI); `slow` marks the multi-minute runs
(long training, every toolbox variant on 1 vs 8 devices, killed processes).

Test files start longest first, by the seconds in durations.json, so parallel workers finish
together instead of one running a long file alone at the end. After adding or changing a long
test, refresh it with the fast suite's timings (files not run keep theirs):
  bash tests/run.sh -m "not slow" --record-durations
"""

import atexit
import collections
import contextlib
import fcntl
import json
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

from pgen.configs import fashion_mnist_dcgan  # noqa: E402

IDX_DIR = "/usr/share/datasets/fashion-mnist"
TESTS_DIR = os.path.join(ROOT, "tests")
DURATIONS = os.path.join(TESTS_DIR, "durations.json")
# The scopes a fixture can have, broadest first.
_SCOPES = ("session", "package", "module", "class", "function")


def pytest_addoption(parser):
  parser.addoption("--record-durations", action="store_true",
                   help=f"write each test file's seconds (setup, call, teardown) to {DURATIONS}; "
                   "files not run keep theirs")


def _test_file(path) -> str:
  return os.path.relpath(path, TESTS_DIR)


def _read_durations() -> dict[str, float]:
  with open(DURATIONS) as f:
    return json.load(f)


def pytest_collection_modifyitems(items):
  """Longest files first (xdist with --no-loadscope-reorder hands files out in this order);
  files without a recorded duration last, in collection order."""
  seconds = _read_durations()
  items.sort(key=lambda item: -seconds.get(_test_file(item.path), 0.0))  # Stable.


# Seconds per test file of this run, by the path in the test's id (relative to the rootdir).
# With xdist the workers' reports reach the controller's hook too; the controller writes.
_run_seconds = collections.defaultdict(float)


def pytest_runtest_logreport(report):
  _run_seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session, exitstatus):
  config = session.config
  if (not config.getoption("record_durations") or hasattr(config, "workerinput")
      or exitstatus == pytest.ExitCode.INTERRUPTED):
    return
  seconds = {name: s for name, s in _read_durations().items()
             if os.path.exists(os.path.join(TESTS_DIR, name))}
  for path, s in _run_seconds.items():
    seconds[_test_file(config.rootpath / path)] = round(s, 1)
  with open(DURATIONS + ".tmp", "w") as f:
    json.dump(seconds, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(DURATIONS + ".tmp", DURATIONS)


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
  from pgen.training.loop import train_and_evaluate
  workdir = os.path.join(_run_dir(tmp_path_factory, "smoke_run"), "run")
  with _locked(workdir):
    if not os.path.isdir(os.path.join(workdir, "checkpoints", "6")):
      train_and_evaluate(_smoke_config(fmnist_data_dir), workdir)
  return workdir


@contextlib.contextmanager
def _optimizations(disabled: bool):
  """`jax_disable_most_optimizations` set to `disabled` inside, restored after. jit's in-memory
  caches are keyed without this option (the persistent cache's key has it), so they are
  cleared whenever it changes: no program compiled on one side runs on the other."""
  import jax
  before = jax.config.read("jax_disable_most_optimizations")
  changes = before != disabled
  if changes:
    jax.clear_caches()
    jax.config.update("jax_disable_most_optimizations", disabled)
  try:
    yield
  finally:
    if changes:
      jax.config.update("jax_disable_most_optimizations", before)
      jax.clear_caches()


# (scope, the option's value outside it) of each open fast_compile scope, outermost first.
_unoptimized_scopes = []


@contextlib.contextmanager
def _unoptimized(scope: str):
  """XLA compiles without most optimizations (several times faster, programs slower): for
  tests that compare numbers only with each other, never with recorded ones. The option is
  global in this JAX (a flag, not a thread-local config state), so the scope is recorded for
  _FixturesCompileAsTheirScope."""
  import jax
  _unoptimized_scopes.append((scope, jax.config.read("jax_disable_most_optimizations")))
  try:
    with _optimizations(disabled=True):
      yield
  finally:
    _unoptimized_scopes.pop()


class _FixturesCompileAsTheirScope:
  """A fixture broader than an open fast_compile scope (smoke_run, a session fixture, asked
  for first inside a fast_compile module) is shared with tests outside that scope, which
  compare its runs with optimized ones (exact resume); it is set up with the option as it is
  outside every narrower scope, whichever test asks for it first."""

  @pytest.hookimpl(wrapper=True)
  def pytest_fixture_setup(self, fixturedef):
    outside = [before for scope, before in _unoptimized_scopes
               if _SCOPES.index(scope) > _SCOPES.index(fixturedef.scope)]
    if not outside:
      return (yield)
    with _optimizations(disabled=outside[0]):
      return (yield)


def pytest_configure(config):
  # Registered as a plugin: pytest sets up session fixtures with the hooks of the rootdir, which
  # leave out this file's (it is in tests/).
  config.pluginmanager.register(_FixturesCompileAsTheirScope(), "pgen-fixture-compile-scope")


@pytest.fixture(scope="module")
def fast_compile():
  """A whole test module without most XLA optimizations (_unoptimized)."""
  with _unoptimized("module"):
    yield


@pytest.fixture
def fast_compile_test():
  """One test without most XLA optimizations (_unoptimized)."""
  with _unoptimized("function"):
    yield


@pytest.fixture
def smoke_run_copy(smoke_run, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(smoke_run, workdir)
  return workdir
