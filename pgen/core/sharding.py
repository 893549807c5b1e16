"""The device mesh and the two shardings pgen uses: replicated state, batch-split data.

    mesh = make_mesh()
    state_sharding = replicated(mesh)       # every device holds the whole state
    batch_sharding = batch_split(mesh)      # leading (batch) axis split over 'data'
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from pgen.errors import ConfigError

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  """A 1-D data-parallel mesh over every device of every process."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_split(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  """The global batch must split evenly over processes and devices."""
  devices, processes = mesh.size, jax.process_count()
  if global_batch_size % devices:
    lower = global_batch_size // devices * devices or devices
    raise ConfigError(
        f"batch_size={global_batch_size} does not divide over the {devices} devices of this "
        f"run ({processes} process(es)). Set --config.batch_size to a multiple of {devices}, "
        f"e.g. {lower} or {lower + devices}.")


def to_host(x: jax.Array) -> np.ndarray:
  """The value of a replicated array, also when other processes hold some of its devices."""
  return np.asarray(x.addressable_data(0))
