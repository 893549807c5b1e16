"""How a launch is recognized: explicit flags, environment variables, cluster detection."""

import jax
import pytest

from pgen.core import distributed

_CLUSTER_VARS = ("SLURM_NTASKS", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES",
                 "PGEN_COORDINATOR_ADDRESS", "PGEN_NUM_PROCESSES", "PGEN_PROCESS_ID")


@pytest.fixture
def clean_env(monkeypatch):
  for name in _CLUSTER_VARS:
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


def test_single_process_needs_nothing(clean_env):
  distributed.initialize()
  assert jax.process_count() == 1


def test_incomplete_explicit_launch_names_what_is_missing(clean_env):
  with pytest.raises(ValueError, match="needs all of --coordinator_address, --num_processes"):
    distributed.initialize(coordinator_address="127.0.0.1:1234", num_processes=2)
  clean_env.setenv("PGEN_NUM_PROCESSES", "2")
  with pytest.raises(ValueError, match=r"got \[None, 2, None\]"):
    distributed.initialize()


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}, "SLURM"),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, None),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "Open MPI"),
    ({"TPU_WORKER_HOSTNAMES": "10.0.0.2,10.0.0.3"}, "TPU pod"),
    ({"TPU_WORKER_HOSTNAMES": "localhost"}, None),
])
def test_cluster_detection(clean_env, env, expected):
  for name, value in env.items():
    clean_env.setenv(name, value)
  assert distributed.detected_cluster() == expected
