"""Reads a torch.save'd state_dict without torch, and without running code from the file.

    state_dict = read_state_dict("weights.pth")   # or an .npz of the same tensors
    state_dict["fc.weight"]                       # a numpy array

A restricted unpickler rebuilds tensors only (in torch's zip format or its legacy, pre-1.6
one); any other global in the pickle raises `RefusedPickleError` before anything runs. The
file is treated as hostile: every storage id, storage length and tensor layout is checked
before a byte of it is read or viewed, and any other failure of the bytes to be a state_dict
is one `ValueError` naming the file.
"""

import collections
import math
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8"}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_INT64_MAX = 2**63 - 1
_MAX_DIMS = 32  # numpy 1's limit on dimensions; no weight comes near it.


def _numpy_dtype(name: str) -> np.dtype:
  if name == "bfloat16":
    import ml_dtypes  # A JAX dependency.
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(name)


def _is_count(value) -> bool:
  """A non-negative int64, as torch keeps sizes, strides, offsets and element counts. A bool is
  an int to Python but not a count."""
  return type(value) is int and 0 <= value <= _INT64_MAX


class _Sealed:
  """Refuses the pickle's BUILD opcode, which would otherwise set attributes of the objects this
  reader makes (a storage type's dtype, a tensor's layout)."""

  def __setstate__(self, state):
    raise pickle.UnpicklingError("the pickle sets attributes of a storage type or a tensor")


class _StorageType(_Sealed):
  def __init__(self, dtype: str):
    self.dtype = _numpy_dtype(dtype)


class _TensorRef(_Sealed):
  """A tensor as the pickle describes it; its storage bytes may come later in the file. Nothing
  of the layout is trusted until `materialize` has checked it against the storage."""

  def __init__(self, storage_key, storage_offset, size, stride):
    self.storage_key, self.offset, self.size, self.stride = (
        storage_key, storage_offset, size, stride)

  def materialize(self, storages: dict, where: str) -> np.ndarray:
    """The tensor's values, copied out of its storage once every element is known to lie inside
    it. `where` names the tensor in errors."""
    if not isinstance(self.storage_key, str) or self.storage_key not in storages:
      raise ValueError(f"{where} refers to a storage the file does not have; the file is "
                       "damaged.")
    storage = storages[self.storage_key]
    size, stride = self._checked_layout(where)
    if 0 in size:
      return _empty(size, storage.dtype, where)
    numel = math.prod(size)
    if numel > len(storage):
      raise ValueError(f"{where} has {numel} elements but its storage holds {len(storage)}; an "
                       "expanded or overlapping view is not a weight.")
    # Strides are >= 0, so the lowest element is the offset (>= 0) and the highest is `last`.
    last = self.offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(storage):
      raise ValueError(f"{where} (offset {self.offset}, size {size}, stride {stride}) reaches "
                       f"element {last} of a storage of {len(storage)}; the file is damaged.")
    # A dimension of one element never steps: its stride, however large, is never applied.
    strides = [s * storage.itemsize if n > 1 else 0 for n, s in zip(size, stride)]
    return np.lib.stride_tricks.as_strided(storage[self.offset:], size, strides).copy()

  def _checked_layout(self, where: str) -> tuple[tuple, tuple]:
    """The size and stride, once they and the offset are non-negative int64s, one stride per
    dimension."""
    size, stride = self.size, self.stride
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
            and len(size) == len(stride) <= _MAX_DIMS):
      raise ValueError(f"{where}: its size and stride are not two sequences of one length (at "
                       f"most {_MAX_DIMS}); the file is damaged or not a state_dict.")
    if any(type(s) is int and s < 0 for s in stride):
      raise ValueError(f"{where} has a negative stride (a flipped view), which no saved weight "
                       "has; the file is damaged or crafted.")
    if not all(_is_count(v) for v in (self.offset, *size, *stride)):
      raise ValueError(f"{where}: its offset, sizes and strides are not all integers in "
                       "[0, 2**63); the file is damaged or not a state_dict.")
    return tuple(size), tuple(stride)


def _empty(shape: tuple, dtype: np.dtype, where: str) -> np.ndarray:
  """A tensor with no elements; numpy still refuses shapes whose other dimensions overflow."""
  try:
    return np.empty(shape, dtype)
  except ValueError:
    raise ValueError(f"{where} is an empty tensor of shape {shape}, which numpy cannot hold; "
                     "the file is damaged.") from None


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
                    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
                    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
                    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter}


class RefusedPickleError(pickle.UnpicklingError):
  """The file asks for something other than tensors; nothing of it was run."""


class _StateDictUnpickler(pickle.Unpickler):
  """Rebuilds a torch state_dict's tensors as _TensorRefs; refuses every other global, so a
  weights file cannot run code."""

  def __init__(self, file, path: str):
    super().__init__(file)
    self.path = path
    self.storage_types = {}  # key -> (numpy dtype, number of elements)

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    if (module, name) in _ALLOWED_GLOBALS:
      return _ALLOWED_GLOBALS[(module, name)]
    raise RefusedPickleError(
        f"{self.path} holds {module + '.' + name!r}, which is not part of a plain state_dict "
        "of tensors; refusing to load it. Pass a file of torch.save(model.state_dict()) or an "
        ".npz of its tensors.")

  def persistent_load(self, pid):
    """('storage', storage type, key, location, element count[, view]) -> the key, by which the
    storage's bytes are read once the pickle is done."""
    if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"
            and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
            and isinstance(pid[3], str) and _is_count(pid[4])):
      raise pickle.UnpicklingError("a storage id is not ('storage', storage type, key, "
                                   "location, element count)")
    if len(pid) == 6 and pid[5] is not None:
      raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported; "
                                   "re-save the state_dict with a newer torch")
    key, declared = pid[2], (pid[1].dtype, pid[4])
    if self.storage_types.setdefault(key, declared) != declared:
      raise pickle.UnpicklingError(f"storage {key!r} is declared twice, with different types "
                                   "or sizes")
    return key


def _unpickle(file, path: str) -> tuple[object, dict]:
  """One pickle from `file`, through the guard, and the storages it declares. Bytes that are not
  a state_dict's pickle fail in many ways (truncated, unknown opcodes, wrong arguments to the
  allowed functions); each is one ValueError naming the file. A refused global stays refused."""
  unpickler = _StateDictUnpickler(file, path)
  try:
    return unpickler.load(), unpickler.storage_types
  except RefusedPickleError:
    raise
  except Exception as e:  # Hostile bytes can raise anything.
    # The unpickler's own errors say enough; others need their kind ("MemoryError" alone).
    detail = (str(e) if type(e) is pickle.UnpicklingError
              else f"{type(e).__name__}: {e}".removesuffix(": "))
    raise ValueError(f"{path} is damaged or not a torch state_dict ({detail}).") from e


def _read_zip_pth(path: str) -> tuple[object, dict]:
  try:
    with zipfile.ZipFile(path) as archive:
      return _read_archive(archive, path)
  except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError) as e:
    # RuntimeError: an encrypted entry or an unsupported compression method.
    raise ValueError(f"{path} is a damaged zip archive ({type(e).__name__}: {e}).") from e


def _read_archive(archive: zipfile.ZipFile, path: str) -> tuple[object, dict]:
  """torch's zip format: <prefix>/data.pkl, whose storages are the entries <prefix>/data/<key>."""
  names = archive.namelist()
  pickles = [n for n in names if n.endswith("/data.pkl")]
  if len(pickles) != 1:
    raise ValueError(f"{path} is a zip archive but not a torch.save file (no */data.pkl).")
  prefix = pickles[0][:-len("data.pkl")]
  if prefix + "byteorder" in names:
    with archive.open(prefix + "byteorder") as f:
      if f.read(8) != b"little":
        raise ValueError(f"{path} was saved on a big-endian machine; only little-endian is read.")
  with archive.open(pickles[0]) as f:
    obj, storage_types = _unpickle(f, path)
  storages = {key: _read_zip_storage(archive, f"{prefix}data/{key}", dtype, numel, path)
              for key, (dtype, numel) in storage_types.items()}
  return obj, storages


def _read_zip_storage(archive: zipfile.ZipFile, name: str, dtype: np.dtype, numel: int,
                      path: str) -> np.ndarray:
  """The `numel` elements the pickle declared, read only after the entry's recorded size shows
  it holds them; a larger (or zip-bomb) entry is never read whole."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise ValueError(f"{path} is damaged: it has no {name!r} for a storage its pickle "
                     "names.") from None
  nbytes = numel * dtype.itemsize
  if info.file_size % dtype.itemsize or info.file_size < nbytes:
    raise ValueError(f"{path} is damaged: {name!r} holds {info.file_size} bytes, not "
                     f"{numel} elements of {dtype.itemsize} bytes.")
  with archive.open(info) as f:
    data = f.read(nbytes)
  if len(data) != nbytes:
    raise ValueError(f"{path} is damaged: {name!r} ends before its recorded size.")
  return np.frombuffer(data, dtype)


def _read_legacy_pth(path: str) -> tuple[object, dict]:
  """torch.save(..., _use_new_zipfile_serialization=False): magic, protocol, sys_info and the
  state_dict as consecutive pickles, then the storage keys, then each storage's element
  count (int64) and raw bytes."""
  with open(path, "rb") as f:
    def load_plain():  # Headers and the key list: plain values, through the same guard.
      return _unpickle(f, path)[0]
    try:
      magic = load_plain()
    except ValueError as e:
      raise ValueError(f"{path} is neither a torch.save file nor an .npz.") from e
    if magic != _LEGACY_MAGIC:
      raise ValueError(f"{path} is neither a torch.save file nor an .npz.")
    load_plain()  # Protocol version.
    sys_info = load_plain()
    if not isinstance(sys_info, dict):
      raise ValueError(f"{path} is damaged: its system-info header is not a dict.")  # noqa: TRY004
    if not sys_info.get("little_endian", True):
      raise ValueError(f"{path} was saved on a big-endian machine; only little-endian is read.")
    obj, storage_types = _unpickle(f, path)
    keys = load_plain()
    if not (isinstance(keys, list) and all(isinstance(k, str) and k in storage_types
                                           for k in keys)):
      raise ValueError(f"{path} is damaged: its storage keys are not those its state_dict "
                       "names.")
    storages = {key: _read_legacy_storage(f, *storage_types[key], f"{path} (storage {key!r})")
                for key in keys}
  return obj, storages


def _read_legacy_storage(f, dtype: np.dtype, numel: int, where: str) -> np.ndarray:
  """A storage's element count (int64), then its bytes: the count must be the one its storage id
  declared, and the file must hold that many bytes, before any of them is read."""
  header = f.read(8)
  count = struct.unpack("<q", header)[0] if len(header) == 8 else None
  if count != numel:
    raise ValueError(f"{where} is damaged: it counts {count} elements where its storage id "
                     f"declares {numel}.")
  nbytes = numel * dtype.itemsize
  if nbytes > os.fstat(f.fileno()).st_size - f.tell():
    raise ValueError(f"{where} is truncated: the file ends before its {nbytes} bytes.")
  return np.frombuffer(f.read(nbytes), dtype)


def read_pth(path: str) -> dict[str, np.ndarray]:
  """The tensors of a torch.save'd state_dict, as numpy arrays, without torch."""
  obj, storages = (_read_zip_pth if zipfile.is_zipfile(path) else _read_legacy_pth)(path)
  if not (isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, _TensorRef)
                                        for k, v in obj.items())):
    raise ValueError(f"{path} does not hold a flat state_dict (a mapping of names to tensors).")
  return {name: ref.materialize(storages, f"{path}: tensor {name!r}")
          for name, ref in obj.items()}


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A .pth (torch.save, read without torch) or an .npz with the same keys."""
  if path.endswith(".npz"):
    with np.load(path) as data:
      return {k: data[k] for k in data.files}
  return read_pth(path)
