"""How pgen's packages depend on each other: imports run one way (commands -> experiments,
feedback, generation -> training -> config, evaluation -> the GAN, models, data -> core),
sampling needs no TensorFlow, and modules stay small."""

import ast
import os
import shutil
import subprocess
import sys

from conftest import ROOT

V1_WORKDIR = os.path.join(ROOT, "tests", "data", "v1_workdir")

# What each package may import besides itself, `pgen` and `pgen.errors`: imports run one way,
# from the commands down to the core (docs/architecture.md).
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "models": {"core", "data"},
    # The step's maths: networks and data in, nothing of training, feedback or commands.
    "gan": {"core", "data", "models"},
    # Handed a sampler or images; never loads a run (generation) or a config file (config).
    "evaluation": {"core", "data", "models"},
    # Gathers the keys that their owners declare: models, data, the GAN toolbox.
    "config": {"core", "data", "models", "gan"},
    # A fine-tuning reward reaches the step as a function the command hands in: no feedback.
    "training": {"core", "data", "models", "gan", "config", "evaluation"},
    # The configs that ship with pgen build on pgen.config's defaults and on each other; sweep
    # files on the sweep helpers.
    "configs": {"config", "experiments"},
    "generation": {"core", "data", "models", "gan", "config", "evaluation", "training"},
    "feedback": {"core", "data", "models", "gan", "config", "evaluation", "generation"},
    "experiments": {"core", "data", "models", "gan", "config", "evaluation", "training",
                    "feedback"},
    "cli": {"core", "data", "models", "gan", "config", "configs", "evaluation", "training",
            "generation", "feedback", "experiments"},
}
TOP_LEVEL = {"__init__.py", "__main__.py", "errors.py"}


def _package(module: str) -> str | None:
  """'pgen.gan.losses' -> 'gan'; None for pgen itself and pgen.errors."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


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


def test_the_top_of_pgen_holds_only_its_entry_points_and_errors():
  top = {name for name in os.listdir(os.path.join(ROOT, "pgen"))
         if os.path.isfile(os.path.join(ROOT, "pgen", name))}
  packages = {name for name in os.listdir(os.path.join(ROOT, "pgen"))
              if os.path.isfile(os.path.join(ROOT, "pgen", name, "__init__.py"))}
  assert top == TOP_LEVEL
  assert packages == set(ALLOWED)


def test_each_package_imports_only_the_packages_below_it():
  upward = []
  for module, path in _pgen_modules():
    package = _package(module)
    for imported in _imports(module, path):
      target = _package(imported)
      if package is None and imported not in ("pgen", "pgen.errors"):
        if module != "pgen" and module != "pgen.__main__":
          upward.append(f"{module} imports {imported}")
      elif package and target and target != package and target not in ALLOWED[package]:
        upward.append(f"{module} ({package}) imports {imported} ({target})")
  assert not upward, upward


def _function_import_runs(tree):
  """The first import statement of each run of consecutive imports inside a function."""
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      for block in ast.walk(node):
        previous_was_import = False
        body = getattr(block, "body", None)
        for statement in body if isinstance(body, list) else []:
          is_import = isinstance(statement, (ast.Import, ast.ImportFrom))
          if is_import and not previous_was_import:
            yield statement
          previous_was_import = is_import


def test_imports_inside_functions_give_their_reason():
  """An import inside a function is for a heavy or optional dependency that a command
  should not load before its flags are checked: a comment on the first import of each
  group, or on the line above it, says which."""
  silent = []
  for module, path in _pgen_modules():
    with open(path) as f:
      lines = f.read().split("\n")
    for node in _function_import_runs(ast.parse("\n".join(lines))):
      if "#" not in "".join(lines[node.lineno - 2:node.end_lineno]):
        silent.append(f"{module}:{node.lineno}")
  assert not silent, silent


def test_sampling_and_the_core_load_no_tensorflow_tfds_or_clu(tmp_path):
  """`python -m pgen generate` (from a run of pgen before config versions) and the step,
  model and state modules work without TensorFlow, TFDS and CLU being imported."""
  workdir = str(tmp_path / "run")
  shutil.copytree(V1_WORKDIR, workdir)
  code = (
      "import sys\n"
      "import pgen.training.compiled_step, pgen.models, pgen.gan.state, pgen.gan.sampling\n"
      "import pgen.config\n"
      "from pgen.cli.main import run\n"
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
