"""What README.md and docs/ tell a user to type exists: every `python -m pgen COMMAND` is a
command, every --flag on that line is one of its flags, every --config.KEY a config key, and
every link to a file of the repository points at a file that is there."""

import functools
import glob
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from pgen.cli.main import COMMANDS
from pgen.config import KEYS

PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
# Flags every command takes (absl's own).
COMMON_FLAGS = {"help", "helpfull", "helpshort", "verbosity", "v"}


def _command_lines(text: str):
  """Each `python -m pgen ...` command in a page, continuation lines joined."""
  text = text.replace("\\\n", " ")
  for match in re.finditer(r"python -m pgen (?!\.)([^\n`|]*)", text):
    yield match.group(1).strip()


@functools.cache
def _flags_of(command: str) -> frozenset:
  """The flags `python -m pgen COMMAND` accepts (its module's and the shared ones)."""
  code = (f"import json, pgen.cli.{command}\nfrom absl import flags\n"
          "print(json.dumps(sorted(flags.FLAGS)))")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-2000:]
  return frozenset(json.loads(result.stdout.strip().splitlines()[-1]))


def _problems(page: str) -> list[str]:
  with open(page) as f:
    text = f.read()
  problems = []
  for line in _command_lines(text):
    words = line.split()
    command = words[0] if words else ""
    if command not in COMMANDS:
      problems.append(f"{command!r} is not a command: python -m pgen {line}")
      continue
    for flag in re.findall(r"(?<![\w-])--([A-Za-z_][\w.]*)", line):
      if flag.startswith("config."):
        key = flag[len("config."):]
        if key not in KEYS:
          problems.append(f"--config.{key} is not a config key: python -m pgen {line}")
      elif flag not in _flags_of(command) | COMMON_FLAGS:
        problems.append(f"--{flag} is not a flag of {command}: python -m pgen {line}")
  return problems


def _broken_links(page: str) -> list[str]:
  with open(page) as f:
    text = f.read()
  broken = []
  for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
    if "://" in target or target.startswith("mailto:"):
      continue
    if not os.path.exists(os.path.join(os.path.dirname(page), target)):
      broken.append(target)
  return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_command_flag_and_key_a_page_shows_exists(page):
  assert not _problems(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_link_to_a_file_of_the_repository_points_at_one(page):
  assert not _broken_links(page)


def test_the_readme_is_a_map_of_two_screens_and_the_docs_hold_the_rest():
  with open(os.path.join(ROOT, "README.md")) as f:
    lines = f.read().splitlines()
  assert len(lines) <= 180
  assert len(PAGES) > 5
