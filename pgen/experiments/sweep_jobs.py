r"""A sweep as one array job on a cluster: a task per point, each running
`python -m pgen sweep ... --point I` (which trains point I, or skips it once trained).

    write_slurm(workdir, sweep, parallel=2)        # <workdir>/sweep.sbatch: --array=0-(N-1)%2
    print(submit_slurm(path))                      # sbatch's answer, or how to submit
    write_kubernetes(workdir, sweep, parallel=2)   # <workdir>/sweep_job.yaml: an Indexed Job

The tasks repeat the sweep command's own arguments, so each one checks the sweep against
`<workdir>/sweep.json` as a re-run on this machine does. Submitting the same file again
retries the failed points and skips the finished ones. Conventions follow launch/: the SLURM
task checkpoints on SIGTERM before its time limit and is requeued; the Kubernetes Job has
launch/kubernetes.yaml's `${IMAGE}`, `${RUNS_PVC}` and `${GPUS_PER_POD}` to fill in.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

from pgen.errors import ArgumentError, PgenError
from pgen.experiments.sweeps import Sweep, override_flags

SLURM_FILE = "sweep.sbatch"
KUBERNETES_FILE = "sweep_job.yaml"


class SubmitError(PgenError, RuntimeError):
  """The cluster's submit command refused the job."""


def sweep_arguments(sweep: Sweep, workdir: str) -> list[str]:
  """The sweep command's arguments that define the sweep (overrides after --config, as
  ml_collections requires)."""
  return [f"--config={sweep.config_path}", *override_flags(sweep.base_overrides),
          f"--sweep={sweep.sweep_path}", f"--workdir={workdir}"]


# The characters a workdir may hold to be written into job files: #SBATCH lines are not
# shell-quoted (and % is SLURM's pattern character), YAML comments end at a newline.
_JOB_FILE_PATH = re.compile(r"[A-Za-z0-9._/+=@:,-]+")


def _check_job_workdir(workdir: str) -> None:
  path = os.path.abspath(workdir)
  if not _JOB_FILE_PATH.fullmatch(path):
    odd = sorted(set(re.sub(r"[A-Za-z0-9._/+=@:,-]", "", path)))
    raise ArgumentError(f"workdir={path!r} holds {''.join(odd)!r}, which a SLURM or Kubernetes "
                        "job file cannot carry safely; choose a path of letters, digits and "
                        "- _ . / + = @ : ,", argument="workdir")


def _array(sweep: Sweep, parallel: int | None) -> str:
  return f"0-{len(sweep.points) - 1}" + (f"%{parallel}" if parallel else "")


def write_slurm(workdir: str, sweep: Sweep, parallel: int | None = None) -> str:
  """`<workdir>/sweep.sbatch`, a job array of one task per point (`parallel` at a time);
  tasks start in this directory, with this Python."""
  _check_job_workdir(workdir)
  command = shlex.join([sys.executable, "-m", "pgen", "sweep", *sweep_arguments(sweep, workdir)])
  lines = [
      "#!/usr/bin/env bash",
      f"# A pgen sweep of {len(sweep.points)} points, written by `python -m pgen sweep "
      "--slurm`: array task I",
      f"# trains point I in {workdir}/NNNN, or skips it once trained.",
      "# Add what one run needs, e.g.",
      "#   #SBATCH --gpus-per-task=1",
      "#   #SBATCH --cpus-per-task=8",
      "#SBATCH --job-name=pgen-sweep",
      f"#SBATCH --array={_array(sweep, parallel)}",
      "#SBATCH --ntasks=1",
      "#SBATCH --time=24:00:00",
      f"#SBATCH --output={os.path.abspath(workdir)}/slurm-%A_%a.out",
      "# SIGTERM to the task two minutes before the time limit: the point checkpoints and",
      "# stops; --requeue runs the task again, which resumes it.",
      "#SBATCH --signal=B:TERM@120",
      "#SBATCH --requeue",
      "set -euo pipefail",
      f"cd {shlex.quote(os.getcwd())}",
      f'exec {command} --point "$SLURM_ARRAY_TASK_ID"',
  ]
  return _write(os.path.join(workdir, SLURM_FILE), lines)


def submit_slurm(path: str) -> str:
  """Submits the job file with sbatch if it is on PATH; says how to otherwise."""
  sbatch = shutil.which("sbatch")
  if sbatch is None:
    return f"sbatch is not on PATH here; on the cluster, submit with: sbatch {path}"
  result = subprocess.run([sbatch, path], capture_output=True, text=True, check=False)
  if result.returncode:
    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise SubmitError(f"sbatch {path} failed (exit {result.returncode}): {last}")
  return result.stdout.strip()


def _job_name(workdir: str) -> str:
  """pgen-sweep-<the workdir's name>, as a Kubernetes name (lower-case, digits, dashes)."""
  name = re.sub(r"[^a-z0-9]+", "-", os.path.basename(os.path.abspath(workdir)).lower())
  return f"pgen-sweep-{name.strip('-')[:40]}".rstrip("-")


def write_kubernetes(workdir: str, sweep: Sweep, parallel: int | None = None) -> str:
  """`<workdir>/sweep_job.yaml`: a batch/v1 Indexed Job, pod I running point I."""
  _check_job_workdir(workdir)
  command = shlex.join(["python", "-m", "pgen", "sweep", *sweep_arguments(sweep, workdir)])
  container_command = ["sh", "-c", f'exec {command} --point "$JOB_COMPLETION_INDEX"']
  placeholders = "'$IMAGE $RUNS_PVC $GPUS_PER_POD'"
  lines = [
      f"# A pgen sweep of {len(sweep.points)} points, written by `python -m pgen sweep "
      "--kubernetes`: pod I trains",
      f"# point I in {workdir}/NNNN, or skips it once trained. The paths are those given to",
      "# `pgen sweep`: the pods must see them (the workdir on the shared volume at /runs).",
      "# Fill in and submit (envsubst must leave $JOB_COMPLETION_INDEX alone):",
      "#   IMAGE=registry/pgen:latest RUNS_PVC=pgen-runs GPUS_PER_POD=1 \\",
      f"#     envsubst {placeholders} < {os.path.join(workdir, KUBERNETES_FILE)} | "
      "kubectl apply -f -",
      "apiVersion: batch/v1",
      "kind: Job",
      "metadata:",
      f"  name: {_job_name(workdir)}",
      "spec:",
      "  completionMode: Indexed",
      f"  completions: {len(sweep.points)}",
      f"  parallelism: {parallel or len(sweep.points)}",
      "  backoffLimitPerIndex: 0  # A failed point fails alone; the others run on.",
      "  template:",
      "    spec:",
      "      restartPolicy: Never",
      "      containers:",
      "        - name: pgen",
      "          image: ${IMAGE}   # An image with pgen installed (pip install -e . "
      "'jax[cuda12]').",
      f"          command: {json.dumps(container_command)}",
      "          resources:",
      "            limits:",
      "              nvidia.com/gpu: ${GPUS_PER_POD}",
      "          volumeMounts:",
      "            - name: runs",
      "              mountPath: /runs",
      "      volumes:",
      "        - name: runs",
      "          persistentVolumeClaim:",
      "            claimName: ${RUNS_PVC}   # A ReadWriteMany claim every pod mounts.",
  ]
  return _write(os.path.join(workdir, KUBERNETES_FILE), lines)


def _write(path: str, lines: list[str]) -> str:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path
