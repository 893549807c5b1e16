"""Reads a torch.save'd state_dict without torch, and without running code from the file.

    state_dict = read_state_dict("weights.pth")   # or an .npz of the same tensors
    state_dict["fc.weight"]                       # a numpy array

A restricted unpickler rebuilds tensors only (in torch's zip format or its legacy, pre-1.6
one); any other global in the pickle raises `RefusedPickleError` before anything runs.
"""

import collections
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8"}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


def _numpy_dtype(name: str) -> np.dtype:
  if name == "bfloat16":
    import ml_dtypes  # A JAX dependency.
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(name)


class _StorageType:
  def __init__(self, dtype: str):
    self.dtype = _numpy_dtype(dtype)


class _TensorRef:
  """A tensor as the pickle describes it; its storage bytes may come later in the file."""

  def __init__(self, storage_key, storage_offset, size, stride):
    self.storage_key, self.offset = storage_key, storage_offset
    self.size, self.stride = tuple(size), tuple(stride)

  def materialize(self, storages: dict, path: str) -> np.ndarray:
    storage = storages[self.storage_key]
    last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
    if 0 not in self.size and not 0 <= self.offset <= last < len(storage):
      raise ValueError(f"{path}: a tensor of shape {self.size} runs past the end of its "
                       "storage; the file is damaged.")
    flat = storage[self.offset:]
    strides = [s * storage.itemsize for s in self.stride]
    return np.lib.stride_tricks.as_strided(flat, self.size, strides).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


class RefusedPickleError(pickle.UnpicklingError):
  """The file asks for something other than tensors; nothing of it was run."""


class _StateDictUnpickler(pickle.Unpickler):
  """Rebuilds a torch state_dict's tensors as _TensorRefs; refuses every other global, so a
  weights file cannot run code."""

  _ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
              ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
              ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
              ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
              ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter}

  def __init__(self, file, path: str):
    super().__init__(file)
    self.path = path
    self.storage_types = {}  # key -> (numpy dtype, number of elements)

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    if (module, name) in self._ALLOWED:
      return self._ALLOWED[(module, name)]
    raise RefusedPickleError(
        f"{self.path} holds {module}.{name}, which is not part of a plain state_dict of "
        "tensors; refusing to load it. Pass a file of torch.save(model.state_dict()) or an "
        ".npz of its tensors.")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)):
      raise RefusedPickleError(f"{self.path}: unsupported persistent id {pid[:2]!r}.")
    storage_type, key, numel = pid[1], str(pid[2]), pid[4]
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError(f"{self.path}: storage views (torch < 0.4 files) are not "
                                   "supported; re-save the state_dict with a newer torch.")
    self.storage_types[key] = (storage_type.dtype, numel)
    return key


def _read_zip_pth(path: str) -> tuple[object, dict]:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError(f"{path} is a zip archive but not a torch.save file (no */data.pkl).")
    prefix = pickles[0][:-len("data.pkl")]
    if prefix + "byteorder" in names and archive.read(prefix + "byteorder") != b"little":
      raise ValueError(f"{path} was saved on a big-endian machine; only little-endian is read.")
    with archive.open(pickles[0]) as f:
      unpickler = _StateDictUnpickler(f, path)
      obj = unpickler.load()
    storages = {key: np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype)[:numel]
                for key, (dtype, numel) in unpickler.storage_types.items()}
  return obj, storages


def _read_legacy_pth(path: str) -> tuple[object, dict]:
  """torch.save(..., _use_new_zipfile_serialization=False): magic, protocol, sys_info and the
  state_dict as consecutive pickles, then the storage keys, then each storage's element
  count (int64) and raw bytes."""
  with open(path, "rb") as f:
    def load_plain():  # Headers and the key list: plain values, through the same guard.
      return _StateDictUnpickler(f, path).load()
    try:
      magic = load_plain()
    except RefusedPickleError:
      raise
    except Exception as e:
      raise ValueError(f"{path} is neither a torch.save file nor an .npz ({e}).") from e
    if magic != _LEGACY_MAGIC:
      raise ValueError(f"{path} is neither a torch.save file nor an .npz.")
    load_plain()  # Protocol version.
    sys_info = load_plain()
    if not sys_info.get("little_endian", True):
      raise ValueError(f"{path} was saved on a big-endian machine; only little-endian is read.")
    unpickler = _StateDictUnpickler(f, path)
    obj = unpickler.load()
    storages = {}
    for key in load_plain():
      dtype, numel = unpickler.storage_types[str(key)]
      (count,) = struct.unpack("<q", f.read(8))
      data = f.read(count * dtype.itemsize)
      if count != numel or len(data) != count * dtype.itemsize:
        raise ValueError(f"{path} is truncated or damaged (storage {key}).")
      storages[str(key)] = np.frombuffer(data, dtype)
  return obj, storages


def read_pth(path: str) -> dict[str, np.ndarray]:
  """The tensors of a torch.save'd state_dict, as numpy arrays, without torch."""
  obj, storages = (_read_zip_pth if zipfile.is_zipfile(path) else _read_legacy_pth)(path)
  if not isinstance(obj, dict) or not all(isinstance(v, _TensorRef) for v in obj.values()):
    raise ValueError(f"{path} does not hold a flat state_dict (a mapping of names to tensors).")
  return {str(k): v.materialize(storages, path) for k, v in obj.items()}


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A .pth (torch.save, read without torch) or an .npz with the same keys."""
  if path.endswith(".npz"):
    with np.load(path) as data:
      return {k: data[k] for k in data.files}
  return read_pth(path)
