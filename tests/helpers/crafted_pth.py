"""torch.save files assembled by hand, without torch, so a test can write any pickle a hostile
file could hold: opcodes are emitted one by one (protocol 2), not by pickle.dumps.

    storage = storage_id("0", numel=6)
    pickled = state_dict_pickle({"w": tensor(storage, 0, (2, 3), (3, 1))})
    write_zip(path, pickled, {"0": np.arange(6, dtype=np.float32).tobytes()})
"""

import struct
import zipfile
from typing import NamedTuple

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class Global(NamedTuple):
  """The GLOBAL opcode: `module.name`, which the reader resolves through its allow list."""
  module: str
  name: str


class Call(NamedTuple):
  """REDUCE: `func(*args)`, with `func` usually a Global."""
  func: object
  args: tuple


class PersistentId(NamedTuple):
  """BINPERSID: the reader's persistent_load(pid), how torch names a storage."""
  pid: object


class Raw(NamedTuple):
  """Opcodes written as they are (BUILD, a truncation, anything the encoder does not make)."""
  opcodes: bytes


def _int(value: int) -> bytes:
  if 0 <= value < 256:
    return b"K" + bytes([value])  # BININT1
  data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
  if len(data) < 256:
    return b"\x8a" + bytes([len(data)]) + data  # LONG1
  return b"\x8b" + struct.pack("<i", len(data)) + data  # LONG4


def encode(value) -> bytes:
  """The opcodes that push `value` onto the unpickler's stack."""
  if isinstance(value, Raw):
    return value.opcodes
  if isinstance(value, Global):
    return f"c{value.module}\n{value.name}\n".encode()
  if isinstance(value, Call):
    return encode(value.func) + encode(tuple(value.args)) + b"R"
  if isinstance(value, PersistentId):
    return encode(value.pid) + b"Q"
  if value is None or isinstance(value, bool):
    return {None: b"N", True: b"\x88", False: b"\x89"}[value]
  if isinstance(value, int):
    return _int(value)
  if isinstance(value, float):
    return b"G" + struct.pack(">d", value)  # BINFLOAT
  if isinstance(value, str):
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE
  if isinstance(value, dict):  # MARK, keys and values, DICT.
    return b"(" + b"".join(encode(k) + encode(v) for k, v in value.items()) + b"d"
  closing = {tuple: b"t", list: b"l"}[type(value)]  # MARK, items, TUPLE or LIST.
  return b"(" + b"".join(encode(v) for v in value) + closing


def pickle_bytes(value) -> bytes:
  return b"\x80\x02" + encode(value) + b"."  # PROTO 2 ... STOP


def storage_id(key, numel, storage: str = "FloatStorage", legacy: bool = False) -> PersistentId:
  """A storage as torch names it: the legacy format adds a view field (None)."""
  pid = ("storage", Global("torch", storage), key, "cpu", numel)
  return PersistentId(pid + ((None,) if legacy else ()))


def tensor(storage, offset, size, stride) -> Call:
  """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""
  hooks = Call(Global("collections", "OrderedDict"), ())
  return Call(Global("torch._utils", "_rebuild_tensor_v2"),
              (storage, offset, size, stride, False, hooks))


def state_dict_pickle(tensors: dict) -> bytes:
  """An OrderedDict of names to tensors (or to anything `encode` takes)."""
  return pickle_bytes(Call(Global("collections", "OrderedDict"), ([*tensors.items()],)))


def write_zip(path, pickled: bytes, storages: dict, prefix: str = "archive") -> None:
  """torch's zip layout: <prefix>/data.pkl, <prefix>/byteorder, <prefix>/data/<key>."""
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr(f"{prefix}/data.pkl", pickled)
    archive.writestr(f"{prefix}/byteorder", "little")
    for key, data in storages.items():
      archive.writestr(f"{prefix}/data/{key}", data)


def write_legacy(path, pickled: bytes, storages: list, sys_info=None) -> None:
  """torch's legacy layout: magic, protocol, sys_info, the state_dict, the storage keys, then
  each storage's int64 element count and bytes; `storages` holds (key, count, bytes)."""
  sys_info = {"protocol_version": 1001, "little_endian": True} if sys_info is None else sys_info
  headers = [pickle_bytes(header) for header in (LEGACY_MAGIC, 1001, sys_info)]
  keys = pickle_bytes([key for key, _, _ in storages])
  with open(path, "wb") as f:
    f.writelines([*headers, pickled, keys])
    f.writelines(struct.pack("<q", count) + data for _, count, data in storages)
