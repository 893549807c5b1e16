"""Joining JAX's multi-controller runtime: one call, before anything else uses JAX.

    initialize(coordinator_address="10.0.0.1:8476", num_processes=4, process_id=rank)
    initialize()   # SLURM, Open MPI and TPU pods: detected from the environment

A single process needs nothing. Explicit arguments (or PGEN_COORDINATOR_ADDRESS,
PGEN_NUM_PROCESSES, PGEN_PROCESS_ID) always win; otherwise a multi-task SLURM step, an
Open MPI job or a multi-worker TPU VM is detected and JAX reads the rest from it.
CPU-only runs use gloo for collectives. If a process dies, the others notice within
`heartbeat_timeout_s` and stop instead of waiting forever.
"""

import os

import jax
from absl import logging

from pgen.errors import PgenError


class LaunchError(PgenError, ValueError):
  """The multi-process flags of a launch are incomplete."""


def detected_cluster() -> str | None:
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
    return "SLURM"
  if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return "Open MPI"
  if "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
    return "TPU pod"
  return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, heartbeat_timeout_s: int = 100,
               initialization_timeout_s: int = 300) -> None:
  """Starts jax.distributed when the launch asks for several processes; else does nothing."""
  coordinator_address = coordinator_address or os.environ.get("PGEN_COORDINATOR_ADDRESS")
  if num_processes is None and "PGEN_NUM_PROCESSES" in os.environ:
    num_processes = int(os.environ["PGEN_NUM_PROCESSES"])
  if process_id is None and "PGEN_PROCESS_ID" in os.environ:
    process_id = int(os.environ["PGEN_PROCESS_ID"])
  explicit = [coordinator_address, num_processes, process_id]
  cluster = detected_cluster()
  if all(v is None for v in explicit) and cluster is None:
    return
  if any(v is None for v in explicit) and cluster is None:
    raise LaunchError(
        "A multi-process launch needs all of --coordinator_address, --num_processes and "
        f"--process_id (got {explicit}); on SLURM, Open MPI or a TPU pod they are detected.")
  if num_processes == 1:
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  logging.info("Joining %s as process %s of %s (coordinator %s)",
               cluster or "an explicit launch", process_id, num_processes, coordinator_address)
  jax.distributed.initialize(
      coordinator_address=coordinator_address, num_processes=num_processes,
      process_id=process_id, heartbeat_timeout_seconds=heartbeat_timeout_s,
      initialization_timeout=initialization_timeout_s)
  logging.info("Process %d of %d: %d local and %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
