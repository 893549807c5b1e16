"""Checkpoints and exports hold no pickles: loading one runs no code from it (the .pth
reader's refusal of callables is tests/unit/evaluation/test_inception.py's)."""

import os
import pickletools


def _is_pickle(data: bytes) -> bool:
  """True when `data` is a whole pickle opcode stream (read without running it)."""
  if not data.startswith(b"\x80") or not data.endswith(b"."):
    return False
  try:
    for _ in pickletools.genops(data):
      pass
  except Exception:  # noqa: BLE001  (not a pickle: any parse error)
    return False
  return True


def test_checkpoint_files_are_not_pickles(smoke_run):
  files = [os.path.join(folder, name)
           for folder, _, names in os.walk(os.path.join(smoke_run, "checkpoints"))
           for name in names]
  assert len(files) > 5
  for path in files:
    with open(path, "rb") as f:
      assert not _is_pickle(f.read()), path


def test_the_check_recognizes_a_pickle():
  import pickle  # noqa: PLC0415
  assert _is_pickle(pickle.dumps({"a": [1, 2]}, protocol=4))
  assert not _is_pickle(b'{"a": [1, 2]}')
