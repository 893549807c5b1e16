"""Files written whole or not at all: a reader, a concurrent writer or a kill sees the old
file or the new one, never part of one.

    write_whole("cache/x.json", json.dumps(record))
"""

import os
import tempfile


def write_whole(path: str, content: str | bytes) -> None:
  """Writes `content` (text or bytes) to `path` through a temporary file beside it and a
  rename, creating the folder when missing."""
  folder = os.path.dirname(path) or "."
  os.makedirs(folder, exist_ok=True)
  with tempfile.NamedTemporaryFile("wb" if isinstance(content, bytes) else "w", dir=folder,
                                   prefix=os.path.basename(path) + ".", suffix=".tmp",
                                   delete=False) as f:
    f.write(content)
  os.replace(f.name, path)
