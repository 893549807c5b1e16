"""Files written whole get the permissions every file pgen writes gets: the umask's."""

import os
import stat
import subprocess
import sys

from pgen.core import files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _mode(path) -> int:
  return stat.S_IMODE(os.stat(path).st_mode)


def test_a_file_written_whole_has_the_mode_of_a_file_opened_for_writing(tmp_path):
  """Under umask 022 and 027, in a fresh process (the umask is read once per process)."""
  for umask in (0o022, 0o027):
    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); from pgen.core import files; "
            "files.write_whole(os.path.join(sys.argv[1], 'whole.json'), '{}'); "
            "open(os.path.join(sys.argv[1], 'plain.json'), 'w').close()")
    folder = tmp_path / oct(umask)
    subprocess.run([sys.executable, "-c", code, str(folder), oct(umask)[2:]], cwd=ROOT,
                   check=True)
    assert _mode(folder / "whole.json") == _mode(folder / "plain.json") == 0o666 & ~umask


def test_a_rewrite_replaces_the_content_and_leaves_no_temporary_file(tmp_path):
  path = str(tmp_path / "record.json")
  files.write_whole(path, "first")
  files.write_whole(path, b"second")
  assert open(path).read() == "second" and os.listdir(tmp_path) == ["record.json"]
  assert _mode(path) == 0o666 & ~files.umask()
