"""Launch files carry paths and overrides as given, or refuse them: a workdir with spaces or
shell characters reaches `pgen train` as one argument through the TPU pod's remote shell,
and what a SLURM or Kubernetes job file cannot carry is refused before it is written."""

import os
import subprocess

import pytest

from pgen.errors import ArgumentError
from pgen.experiments import sweep_jobs, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HOSTILE_WORKDIR = "/runs/a b/$(touch pwned);x'\"y"


def _recorder(path, body: str) -> None:
  """An executable at `path` that writes its arguments, one per line, to `body`."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(f"#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {body}\n")
  os.chmod(path, 0o755)


def test_the_tpu_pod_command_reaches_every_worker_argument_for_argument(tmp_path):
  """gcloud (recorded) gets the workers' command; run as a worker's shell runs it, in a home
  with pgen's Python recorded too, it calls pgen train with the arguments as given."""
  _recorder(str(tmp_path / "bin" / "gcloud"), str(tmp_path / "gcloud_args"))
  _recorder(str(tmp_path / "home" / "pgen" / ".venv" / "bin" / "python"),
            str(tmp_path / "train_args"))
  override = "--config.data.split=train[:10%] and more"
  env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
             HOME=str(tmp_path / "home"))
  subprocess.run(["bash", os.path.join(ROOT, "launch", "tpu_pod.sh"), "pod", "zone",
                  "fashion_mnist_dcgan", HOSTILE_WORKDIR, override], env=env, check=True,
                 cwd=tmp_path)
  gcloud_args = (tmp_path / "gcloud_args").read_text().split("\n")
  command = gcloud_args[gcloud_args.index("--command") + 1]
  subprocess.run(["bash", "-c", command], env=env, check=True, cwd=tmp_path)
  assert (tmp_path / "train_args").read_text().split("\n")[:-1] == [
      "-m", "pgen", "train", "--config", "fashion_mnist_dcgan", "--workdir", HOSTILE_WORKDIR,
      override]
  assert not (tmp_path / "pwned").exists()


def test_the_kubernetes_launcher_refuses_what_its_manifest_cannot_carry(tmp_path):
  env = dict(os.environ, IMAGE="registry/pgen", RUNS_PVC="runs")
  result = subprocess.run(["bash", os.path.join(ROOT, "launch", "kubernetes.sh"),
                           "fashion_mnist_dcgan", '/runs/a"]\n  x: y'], env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 1 and result.stdout == ""
  assert result.stderr.startswith("kubernetes.sh: error: '/runs/a\"]")
  assert "cannot carry safely" in result.stderr


@pytest.mark.parametrize("name", ["a b", "50%", "x\ny", "it's", "$HOME"])
def test_sweep_job_files_refuse_a_workdir_they_cannot_carry(tmp_path, name):
  sweep = sweeps.plan(os.path.join(ROOT, "pgen", "configs", "fashion_mnist_dcgan.py"),
                      [{"seed": 0}], {}, "s.py")
  workdir = str(tmp_path / name)
  for write in (sweep_jobs.write_slurm, sweep_jobs.write_kubernetes):
    with pytest.raises(ArgumentError, match="job file cannot carry safely") as raised:
      write(workdir, sweep)
    assert raised.value.argument == "workdir"
  assert not os.path.exists(workdir)
