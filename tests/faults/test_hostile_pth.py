"""The .pth reader (pgen/evaluation/torch_pickle.py) on crafted files: layouts that reach outside
their storage, storages that lie about their size, damaged pickles and archives. Each file is
read in its own process, which must end with status 1 and one line of ValueError or
RefusedPickleError naming the file: never a crash, another exception or a read out of bounds.
The files are assembled by hand (tests/helpers/crafted_pth.py); torch is not needed."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

from pgen.evaluation import torch_pickle
from tests.helpers.crafted_pth import (
  Call,
  Global,
  Raw,
  encode,
  pickle_bytes,
  state_dict_pickle,
  storage_id,
  tensor,
  write_legacy,
  write_zip,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPECTED = os.path.join(ROOT, "tests", "data", "torch_state_dict_expected.npz")
FOUR_FLOATS = np.arange(4, dtype=np.float32).tobytes()

# One process imports the reader once, then forks one child per file, so each file still has
# its own exit status (a negative one for a signal) without a second's start-up per file.
_READ_EACH = """
import json, os, sys
from pgen.evaluation import torch_pickle
for path in sys.argv[1:]:
  child = os.fork()
  if child == 0:
    try:
      torch_pickle.read_pth(path)
    except Exception as e:
      print(json.dumps({"path": path, "type": type(e).__name__, "message": str(e)}), flush=True)
      os._exit(1)
    os._exit(0)
  status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
  print(json.dumps({"path": path, "status": status}), flush=True)
"""


def _valid_tensors(legacy: bool) -> tuple[dict, list]:
  """Entries of tests/data/torch_state_dict_expected.npz as torch lays them out (a storage
  offset, a transposed view sharing its storage, an int64 scalar, an empty tensor, a
  Parameter), and their storages as (key, element count, bytes)."""
  with np.load(EXPECTED) as expected:
    arrays = {k: expected[k] for k in ("conv.weight", "bn.num_batches_tracked",
                                       "dtype.float16", "parameter")}
  views = np.arange(60, dtype=np.float32)  # view.offset and view.transposed share it.
  storages = [("0", 108, arrays["conv.weight"].tobytes()),
              ("1", 1, arrays["bn.num_batches_tracked"].tobytes()),
              ("2", 60, views.tobytes()), ("3", 3, arrays["dtype.float16"].tobytes()),
              ("4", 0, b""), ("5", 4, arrays["parameter"].tobytes())]
  ids = {key: storage_id(key, numel, dtype, legacy) for (key, numel, _), dtype in
         zip(storages, ["FloatStorage", "LongStorage", "FloatStorage", "HalfStorage",
                        "FloatStorage", "FloatStorage"])}
  hooks = Call(Global("collections", "OrderedDict"), ())
  tensors = {
      "conv.weight": tensor(ids["0"], 0, (4, 3, 3, 3), (27, 9, 3, 1)),
      "bn.num_batches_tracked": tensor(ids["1"], 0, (), ()),
      "view.offset": tensor(ids["2"], 23, (2, 5), (10, 1)),
      "view.transposed": tensor(ids["2"], 0, (10, 6), (1, 10)),
      "dtype.float16": tensor(ids["3"], 0, (3,), (1,)),
      "empty": tensor(ids["4"], 0, (0, 3), (3, 1)),
      "parameter": Call(Global("torch._utils", "_rebuild_parameter"),
                        (tensor(ids["5"], 0, (2, 2), (2, 1)), True, hooks))}
  return tensors, storages


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_crafted_files_read_as_torch_writes_them(tmp_path, fmt):
  """The helper's files are what torch writes: the reader gives the expected arrays."""
  tensors, storages = _valid_tensors(legacy=fmt == "legacy")
  path = str(tmp_path / f"valid_{fmt}.pth")
  if fmt == "zip":
    write_zip(path, state_dict_pickle(tensors), {key: data for key, _, data in storages})
  else:
    write_legacy(path, state_dict_pickle(tensors), storages)
  state_dict = torch_pickle.read_pth(path)
  assert list(state_dict) == list(tensors)
  with np.load(EXPECTED) as expected:
    for name, value in state_dict.items():
      assert value.dtype == expected[name].dtype and value.shape == expected[name].shape, name
      np.testing.assert_array_equal(value, expected[name], err_msg=name)


class Case(NamedTuple):
  """A crafted file and what the reader's one-line error must say about it."""
  fmt: str  # "zip" or "legacy"
  pickled: bytes  # The state_dict's pickle.
  storages: object  # write_zip's dict or write_legacy's list.
  expected: str  # A part of the message.
  sys_info: object = None  # The legacy header, when not the usual one.
  damage: Callable | None = None  # Applied to the written file.


def _zip_case(size, stride, expected: str, offset=0) -> Case:
  """A zip file of one float tensor over a storage of four floats."""
  pickled = state_dict_pickle({"w": tensor(storage_id("0", 4), offset, size, stride)})
  return Case("zip", pickled, {"0": FOUR_FLOATS}, expected)


def _one_tensor(storage, offset=0, size=(4,), stride=(1,)) -> bytes:
  return state_dict_pickle({"w": tensor(storage, offset, size, stride)})


def _crc_damaged(path: str) -> None:
  """Flips a byte of the storage's data inside the archive; its CRC no longer matches."""
  with open(path, "rb") as f:
    data = bytearray(f.read())
  data[data.index(FOUR_FLOATS) + 5] ^= 0xFF
  with open(path, "wb") as f:
    f.write(data)


def _storage_id_of(storage_type, *rest) -> Raw:
  """A storage id written as given (BINPERSID over any tuple), e.g. a short or odd one."""
  return Raw(encode(("storage", storage_type, *rest)) + b"Q")


def _hostile_cases() -> dict[str, Case]:
  float4, legacy4 = storage_id("0", 4), storage_id("0", 4, legacy=True)
  float_type = Global("torch", "FloatStorage")
  # BUILD on a storage type: would set the dtype the storage's bytes are read as.
  rebuilt_type = Raw(encode(float_type) + encode({"dtype": "int64"}) + b"b")
  system = Call(Global("os", "system"), ("true",))
  return {
      # The old bound summed (n - 1) * stride: 2**30 - 2**30 passed, yet one element lies
      # 4 GiB before the buffer (the segfault).
      "mixed_sign_strides": _zip_case((2, 2), (2**30, -(2**30)), "negative stride"),
      "negative_stride": _zip_case((4,), (-1,), "negative stride", offset=3),
      "offset_past_end": _zip_case((1,), (1,), "reaches element 4", offset=4),
      "size_past_end": _zip_case((5,), (1,), "has 5 elements but its storage holds 4"),
      "stride_past_end": _zip_case((2,), (4,), "reaches element 4"),
      "huge_sizes_zero_strides": _zip_case((2**40, 2**40), (0, 0), "elements but its storage"),
      "non_int_size": _zip_case((2.0, 2), (2, 1), "not all integers"),
      "bool_offset": _zip_case((1,), (1,), "not all integers", offset=True),
      "size_stride_lengths_differ": _zip_case((2, 2), (1,), "not two sequences"),
      "huge_empty_tensor": _zip_case((0, 2**62), (1, 1), "numpy cannot hold"),
      "missing_storage_entry": Case("zip", _one_tensor(storage_id("1", 4)), {"0": FOUR_FLOATS},
                                    "no 'archive/data/1'"),
      "storage_not_whole_elements": Case("zip", _one_tensor(float4), {"0": FOUR_FLOATS[:7]},
                                         "holds 7 bytes"),
      "storage_too_short": Case("zip", _one_tensor(float4), {"0": FOUR_FLOATS[:8]},
                                "holds 8 bytes"),
      "storage_bad_crc": Case("zip", _one_tensor(float4), {"0": FOUR_FLOATS}, "damaged zip",
                              damage=_crc_damaged),
      "undeclared_storage": Case("zip", _one_tensor("0"), {"0": FOUR_FLOATS},
                                 "refers to a storage the file does not have"),
      "negative_numel": Case("zip", _one_tensor(storage_id("0", -1)), {"0": FOUR_FLOATS},
                             "storage id is not"),
      "short_storage_id": Case("zip", _one_tensor(_storage_id_of(float_type, "0", "cpu")),
                               {"0": FOUR_FLOATS}, "storage id is not"),
      "storage_declared_twice": Case("zip", state_dict_pickle({
          "a": tensor(float4, 0, (4,), (1,)),
          "b": tensor(storage_id("0", 1, "LongStorage"), 0, (1,), (1,))}),
          {"0": FOUR_FLOATS}, "declared twice"),
      "storage_type_rebuilt": Case("zip", _one_tensor(_storage_id_of(rebuilt_type, "0", "cpu",
                                                                     4)),
                                   {"0": FOUR_FLOATS}, "sets attributes"),
      "wrong_arguments": Case("zip", state_dict_pickle({"w": Call(Global(
          "torch._utils", "_rebuild_tensor_v2"), ())}), {}, "TypeError"),
      "not_a_tensor": Case("zip", state_dict_pickle({"w": 3}), {}, "flat state_dict"),
      "truncated_pickle": Case("zip", _one_tensor(float4)[:100], {"0": FOUR_FLOATS},
                               "damaged or not a torch state_dict"),
      # BINBYTES8 (protocol 4) announcing 2**62 bytes.
      "huge_bytes_claim": Case("zip", b"\x80\x04\x8e" + (2**62).to_bytes(8, "little") + b"x.",
                               {}, "damaged or not a torch state_dict"),
      "forbidden_global": Case("zip", state_dict_pickle({"w": system}), {}, "refusing"),
      "legacy_negative_count": Case("legacy", _one_tensor(legacy4), [("0", -1, FOUR_FLOATS)],
                                    "counts -1 elements"),
      "legacy_truncated_storage": Case("legacy", _one_tensor(legacy4),
                                       [("0", 4, FOUR_FLOATS[:8])], "truncated"),
      "legacy_undeclared_key": Case("legacy", _one_tensor(legacy4), [("9", 4, FOUR_FLOATS)],
                                    "storage keys"),
      "legacy_sys_info_not_dict": Case("legacy", _one_tensor(legacy4), [("0", 4, FOUR_FLOATS)],
                                       "system-info", sys_info=[1]),
      "legacy_forbidden_global": Case("legacy", pickle_bytes(system), [], "refusing"),
  }


def _write(path: str, case: Case) -> None:
  if case.fmt == "zip":
    write_zip(path, case.pickled, case.storages)
  else:
    write_legacy(path, case.pickled, case.storages, case.sys_info)
  if case.damage:
    case.damage(path)


def test_hostile_files_end_in_one_clean_error(tmp_path):
  cases = _hostile_cases()
  paths = {name: str(tmp_path / f"{name}.pth") for name in cases}
  for name, case in cases.items():
    _write(paths[name], case)
  run = subprocess.run([sys.executable, "-c", _READ_EACH, *paths.values()], check=False,
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
  assert run.returncode == 0, run.stderr
  outcomes = {}
  for line in run.stdout.splitlines():
    record = json.loads(line)
    outcomes.setdefault(record.pop("path"), {}).update(record)
  for name, case in cases.items():
    outcome = outcomes[paths[name]]
    assert outcome["status"] == 1, (name, outcome)  # Negative: killed by a signal.
    assert outcome["type"] in ("ValueError", "RefusedPickleError"), (name, outcome)
    assert paths[name] in outcome["message"] and "\n" not in outcome["message"], (name, outcome)
    assert case.expected in outcome["message"], (name, outcome)
