"""Files written whole or not at all: a reader, a concurrent writer or a kill sees the old
file or the new one, never part of one.

    write_whole("cache/x.json", json.dumps(record))

Their permissions are those of any file the process opens for writing (0666 less the
umask), not the 0600 of the temporary file they are written through: one policy for every
file pgen writes.
"""

import functools
import hashlib
import os
import tempfile


@functools.cache
def umask() -> int:
  """The process's umask, from /proc where Linux shows it (os.umask can only read it by
  changing it, which races with other threads)."""
  try:
    with open("/proc/self/status") as f:
      return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
  except (OSError, StopIteration, ValueError):
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_whole(path: str, content: str | bytes) -> None:
  """Writes `content` (text or bytes) to `path` through a temporary file beside it and a
  rename, creating the folder when missing."""
  folder = os.path.dirname(path) or "."
  os.makedirs(folder, exist_ok=True)
  with tempfile.NamedTemporaryFile("wb" if isinstance(content, bytes) else "w", dir=folder,
                                   prefix=os.path.basename(path) + ".", suffix=".tmp",
                                   delete=False) as f:
    f.write(content)
  os.chmod(f.name, 0o666 & ~umask())
  os.replace(f.name, path)


def directory_sha256(root: str) -> str:
  """SHA-256 over a directory's files (relative paths and contents, in order)."""
  digest = hashlib.sha256()
  for folder, dirs, names in sorted(os.walk(root)):
    dirs.sort()
    for name in sorted(names):
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode() + b"\0")
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          digest.update(block)
  return digest.hexdigest()
