"""How pgen's modules depend on each other: imports run one way (commands -> loop -> step,
evaluation and sampling -> state, models and data -> leaves), and sampling needs no
TensorFlow."""

import ast
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V1_WORKDIR = os.path.join(ROOT, "tests", "data", "v1_workdir")

# A module may import modules of its own layer or below, never above (README, Design).
LAYERS = {
    "commands": ["pgen.main", "pgen.__main__", "pgen.commands", "pgen.launch_local"],
    "loop and command libraries": ["pgen.train", "pgen.generate", "pgen.evaluation.evaluate",
                                   "pgen.export", "pgen.catalog", "pgen.interpolate",
                                   "pgen.style_mixing", "pgen.reproduce", "pgen.compare",
                                   "pgen.sweeps", "pgen.sweep_launch", "pgen.sweep_jobs",
                                   "pgen.review_app", "pgen.simulated_reviewer"],
    "step, evaluation, sampling, config": [
        "pgen.compiled_step", "pgen.objectives", "pgen.step_spec", "pgen.monitoring",
        "pgen.recovery", "pgen.samples", "pgen.generators", "pgen.checkpointing",
        "pgen.config", "pgen.evaluation.scoring", "pgen.evaluation.reference",
        "pgen.evaluation.extractors", "pgen.evaluation.memorization", "pgen.acceptance",
        "pgen.evaluation.catalog_classifier"],
    "state, models, data, feature networks": [
        "pgen.state", "pgen.models", "pgen.augment", "pgen.ada_pipeline", "pgen.losses",
        "pgen.regularizers", "pgen.schedules",
        "pgen.data", "pgen.data.sources", "pgen.data.pipeline", "pgen.data.folder",
        "pgen.data.scan", "pgen.data.dedup", "pgen.data.tfds_writer", "pgen.data.synthetic",
        "pgen.evaluation.classifier", "pgen.evaluation.inception", "pgen.evaluation.metrics",
        "pgen.evaluation.torch_pickle"],
    "leaves": ["pgen.errors", "pgen.pixels", "pgen.chunks", "pgen.compiler", "pgen.sharding",
               "pgen.distributed", "pgen.run_record", "pgen.data.options", "pgen.data.images",
               "pgen.data.report", "pgen.performance", "pgen.postprocess", "pgen.evaluation",
               "pgen.config_keys", "pgen.metrics_file", "pgen.reporting", "pgen.reviews", "pgen.files",
               "pgen"],
}


def _layer(module: str) -> int:
  """Index in LAYERS (0 = commands) of the longest prefix that names `module`."""
  best = None
  for index, prefixes in enumerate(LAYERS.values()):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and (
          best is None or len(prefix) > len(best[1])):
        best = (index, prefix)
  assert best is not None, f"{module} is in no layer of LAYERS"
  return best[0]


def _pgen_modules():
  for folder, _, files in os.walk(os.path.join(ROOT, "pgen")):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
        yield module, path


def _imports(module: str, path: str):
  """Every pgen module `path` imports, at the top or inside functions."""
  package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                        ([base] if base else []))
      names = [f"{base}.{alias.name}" for alias in node.names] + [base]
    else:
      continue
    yield from (n for n in names if n == "pgen" or n.startswith("pgen."))


def test_imports_run_one_way():
  known = dict(_pgen_modules())
  upward = []
  for module, path in known.items():
    for imported in _imports(module, path):
      target = imported if imported in known else imported.rsplit(".", 1)[0]
      if target in known and _layer(target) < _layer(module):
        upward.append(f"{module} imports {imported}")
  assert not upward, upward


def test_sampling_and_the_core_load_no_tensorflow_tfds_or_clu(tmp_path):
  """`python -m pgen generate` (from a run of pgen before config versions) and the step,
  model and state modules work without TensorFlow, TFDS and CLU being imported."""
  workdir = str(tmp_path / "run")
  shutil.copytree(V1_WORKDIR, workdir)
  code = (
      "import sys\n"
      "import pgen.compiled_step, pgen.models, pgen.state, pgen.samples, pgen.config\n"
      "from pgen.main import run\n"
      f"sys.argv = ['pgen', 'generate', '--workdir', {workdir!r}, '--num', '4',\n"
      f"            '--out', {str(tmp_path / 'x.npz')!r}]\n"
      "try:\n"
      "  run()\n"
      "except SystemExit as e:\n"
      "  assert not e.code, e.code\n"
      "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets', 'clu')\n"
      "             if m in sys.modules))\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == "[]"
  assert (tmp_path / "x.npz").exists()


def test_modules_and_functions_stay_small_enough_to_read_in_one_sitting():
  """No pgen module over 400 lines, no function over 60 (STYLE.md: files a reader takes in
  at once; a long function is a sign of parts that want names)."""
  too_long = []
  for module, path in _pgen_modules():
    with open(path) as f:
      source = f.read()
    if source.count("\n") > 400:
      too_long.append(f"{module}: {source.count(chr(10))} lines")
    for node in ast.walk(ast.parse(source)):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        length = node.end_lineno - node.lineno + 1
        if length > 60:
          too_long.append(f"{module}.{node.name}: {length} lines")
  assert not too_long, too_long
