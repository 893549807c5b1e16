"""`python -m pgen prepare` over a folder of 200+ hostile files (random bytes named as
images, truncated JPEG/PNG/WebP, decompression bombs, empty files, files it may not read,
symbolic-link loops, a FIFO, names that are not UTF-8) and CSVs with missing, extra and
duplicate rows: it never crashes or hangs, stays within bounded memory, and names every
file with what happened to it. Run without root's power to read any file (setpriv)."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEAK_RSS_LIMIT_MIB = 2048  # TensorFlow alone holds ~0.6 GiB; a decoded bomb would be 2.5.


def _image_bytes(rng, fmt: str) -> bytes:
  pixels = rng.integers(0, 256, (48 + int(rng.integers(0, 40)), 56, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format=fmt)
  return buffer.getvalue()


def _png_bomb(side: int = 30000) -> bytes:
  """A tiny PNG whose header declares side x side grey pixels."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
  header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
          + chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1) * 4)) + chunk(b"IEND", b""))


def _hostile_folder(src: str) -> dict:
  """Writes the folder; returns {relative path as the report shows it: what it is}."""
  rng = np.random.default_rng(0)
  made = {}

  def write(relative, data: bytes, kind: str, shown=None):
    path = os.path.join(os.fsencode(src), os.fsencode(relative) if isinstance(relative, str)
                        else relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)
    made[shown or relative] = kind

  for i in range(24):  # Good images, so that a dataset is made.
    fmt, ext = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")][i % 3]
    write(f"{'ab'[i % 2]}/good_{i}.{ext}", _image_bytes(rng, fmt), "good")
  for i in range(50):
    write(f"a/noise_{i}.{['jpg', 'png', 'webp', 'jpeg', 'PNG'][i % 5]}",
          rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes(), "corrupt")
  for i in range(45):
    fmt, ext = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")][i % 3]
    data = _image_bytes(rng, fmt)
    write(f"b/truncated_{i}.{ext}", data[:int(rng.integers(20, len(data) - 20))], "corrupt")
  for i in range(6):
    write(f"a/bomb_{i}.png", _png_bomb(30000 - i), "too_large")
  for i in range(30):
    write(f"{'ab'[i % 2]}/empty_{i}.jpg", b"", "corrupt")
  for i in range(15):
    write(f"b/secret_{i}.png", _image_bytes(rng, "PNG"), "unreadable")
    os.chmod(os.path.join(src, f"b/secret_{i}.png"), 0)
  for i in range(10):  # Symbolic-link loops: two links pointing at each other.
    os.symlink(f"loop_{i}_b.jpg", os.path.join(src, "a", f"loop_{i}_a.jpg"))
    os.symlink(f"loop_{i}_a.jpg", os.path.join(src, "a", f"loop_{i}_b.jpg"))
    made[f"a/loop_{i}_a.jpg"] = made[f"a/loop_{i}_b.jpg"] = "unreadable"
  elsewhere = os.path.join(os.path.dirname(src), "elsewhere")
  os.makedirs(elsewhere)
  for i in range(5):  # Links to files outside the folder: reported, not read.
    with open(os.path.join(elsewhere, f"private_{i}.png"), "wb") as f:
      f.write(_image_bytes(rng, "PNG"))
    os.symlink(os.path.join(elsewhere, f"private_{i}.png"),
               os.path.join(src, "a", f"outside_{i}.png"))
    made[f"a/outside_{i}.png"] = "outside_src"
  os.symlink("good_0.png", os.path.join(src, "a", "inside_link.png"))  # Inside: followed.
  made["a/inside_link.png"] = "good"
  os.symlink("..", os.path.join(src, "a", "up"))  # A folder link back up: not followed.
  made["a/up/"] = "not_image"
  os.mkfifo(os.path.join(src, "b", "pipe.png"))
  made["b/pipe.png"] = "not_a_file"
  for i in range(20):
    name = b"a/latin1_\xe9\xff_" + str(i).encode() + b".png"
    write(name, _image_bytes(rng, "PNG"), "bad_name",
          shown=name.decode("utf-8", "backslashreplace"))
  write("b/notes.txt", b"not an image", "not_image")
  return made


def _unprivileged(command: list) -> list:
  """`command`, bound by file permissions even when run by root: without the capabilities
  that let root read and write any file (util-linux's setpriv)."""
  if os.geteuid() != 0:
    return command
  return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


# Runs its arguments as a command and prints the command's peak resident memory. A child's
# ru_maxrss includes the peak of the process it was forked from (Linux records the old
# memory's high-water mark at exec), so the command must be forked from this small process,
# not from the test's worker, which holds gigabytes.
_PEAK_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(f"\\npeak_rss_kib={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_measuring_peak(command: list, timeout_s: float):
  """Runs `command`; returns (the CompletedProcess, its peak resident MiB)."""
  result = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, *command], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
  stderr, _, peak = result.stderr.rpartition("\npeak_rss_kib=")
  result.stderr = stderr
  return result, int(peak) / 1024


def _prepare(src, out, *extra):
  """prepare in a subprocess, unprivileged, its peak resident memory measured."""
  return _run_measuring_peak(
      _unprivileged([sys.executable, "-m", "pgen", "prepare", "--src", src, "--name", "hostile",
                     "--out", out, *extra]), timeout_s=600)


@pytest.fixture
def hostile(tmp_path):
  src, out = str(tmp_path / "src"), str(tmp_path / "out")
  return src, out, _hostile_folder(src)


def test_prepare_names_every_hostile_file_and_never_crashes(hostile):
  src, out, made = hostile
  assert len(made) >= 200
  result, peak_mib = _prepare(src, out, "--nodedup")
  assert result.returncode == 0, result.stderr[-4000:]
  assert "Traceback" not in result.stderr
  report = json.load(open(os.path.join(out, "hostile", "1.0.0", "report.json")))
  problems = {s["file"]: s["problem"] for s in report["skipped"]}
  manifest = json.load(open(os.path.join(out, "hostile", "1.0.0", "manifest.json")))
  kept = {f["file"] for f in manifest["files"] if f["status"] == "kept"}
  for path, kind in made.items():
    if kind == "good":
      assert path in kept, path
    elif kind == "not_image":
      assert path in report["not_images"], path
    else:
      assert problems.get(path) == kind, (path, problems.get(path), kind)
  assert report["counts"]["kept"] == 25  # 24 photos and a link to one of them.
  assert peak_mib < PEAK_RSS_LIMIT_MIB, f"prepare peaked at {peak_mib:.0f} MiB"


def test_a_csv_with_missing_and_extra_rows_is_reported_and_one_with_duplicates_refused(
    hostile):
  src, out, made = hostile
  listed = sorted(p for p, kind in made.items() if kind in ("good", "corrupt"))
  rows = listed[::2] + ["a/gone_1.png", "b/gone_2.jpg"]  # Every other file; two that are not.
  csv = os.path.join(os.path.dirname(src), "labels.csv")
  with open(csv, "w") as f:
    f.write("file,label,colour\n" + "".join(f"{r},{r[0]},red\n" for r in rows))
  result, _ = _prepare(src, out, "--labels", csv, "--nodedup")
  assert result.returncode == 0, result.stderr[-4000:]
  report = json.load(open(os.path.join(out, "hostile", "1.0.0", "report.json")))
  assert report["missing_files"] == ["a/gone_1.png", "b/gone_2.jpg"]
  unlisted = {s["file"] for s in report["skipped"] if s["problem"] == "unlisted"}
  assert set(listed[1::2]) <= unlisted
  with open(csv, "a") as f:
    f.write(f"{rows[0]},b,blue\n")
  result, _ = _prepare(src, out, "--labels", csv)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert f"lists {rows[0]} twice (line {len(rows) + 2}); keep one row per file" in result.stderr

