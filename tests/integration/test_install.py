"""`pip install .` outside the checkout: the wheel holds pgen, its configs and its page, and
`pgen train --config NAME` trains a packaged config from another folder."""

import os
import shutil
import site
import subprocess
import sys

import pytest
from conftest import ROOT


def _run(args, cwd, timeout=600, env=None):
  result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
  assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
  return result.stdout


@pytest.mark.slow
def test_the_wheel_installed_elsewhere_trains_a_packaged_config_by_name(fmnist_data_dir,
                                                                         tmp_path):
  source = tmp_path / "source"  # The build's own copy: setuptools writes build/ beside it.
  files = subprocess.check_output(["git", "ls-files"], cwd=ROOT, text=True).split()
  for name in files:
    os.makedirs(source / os.path.dirname(name), exist_ok=True)
    shutil.copy2(os.path.join(ROOT, name), source / name, follow_symlinks=False)
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
        str(source)], cwd=str(tmp_path))
  wheel = next((tmp_path / "dist").glob("pgen-*.whl"))
  venv = tmp_path / "venv"
  _run([sys.executable, "-m", "venv", str(venv)], cwd=str(tmp_path))
  python = str(venv / "bin" / "python")
  # pgen's dependencies from this environment (a path, so its editable pgen stays out).
  purelib = subprocess.check_output([python, "-c", "import sysconfig; "
                                     "print(sysconfig.get_paths()['purelib'])"], text=True)
  with open(os.path.join(purelib.strip(), "dependencies.pth"), "w") as f:
    f.write("\n".join(site.getsitepackages()) + "\n")
  _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
       cwd=str(tmp_path))
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  where = _run([python, "-c", "import pgen, pgen.configs; print(pgen.__file__); "
                "print(pgen.configs.names())"], cwd=str(elsewhere))
  assert where.startswith(str(venv)) and "folder_dcgan" in where
  _run([str(venv / "bin" / "pgen"), "train", "--config", "fashion_mnist_dcgan:smoke",
        "--workdir", "run", f"--config.data.data_dir={fmnist_data_dir}"], cwd=str(elsewhere))
  assert (elsewhere / "run" / "checkpoints" / "6").is_dir()
  with open(elsewhere / "user_config.py", "w") as f:
    f.write("from pgen.configs import fashion_mnist_dcgan\n\n\n"
            "def get_config():\n"
            "  config = fashion_mnist_dcgan.get_config('smoke')\n"
            "  config.total_steps = 3\n"
            "  return config\n")
  _run([str(venv / "bin" / "pgen"), "train", "--config", "user_config.py", "--workdir", "own",
        f"--config.data.data_dir={fmnist_data_dir}"], cwd=str(elsewhere))
  assert (elsewhere / "own" / "checkpoints" / "3").is_dir()
  page = _run([python, "-c", "import importlib.resources as r; print(r.files('pgen.feedback')"
               ".joinpath('review_page.html').is_file())"], cwd=str(elsewhere))
  assert page.strip() == "True"
