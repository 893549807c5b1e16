"""`evaluate --npz` with a file that does not fit: an error naming what is wrong and what
was expected, before any features are computed."""

import os
import subprocess
import sys

import numpy as np
import pytest

from pgen.errors import PgenError
from pgen.evaluation.evaluate import load_npz

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE = (32, 32, 1)
GOOD = np.zeros((4, *SHAPE), np.uint8)


def _write(path, **arrays):
  np.savez(path, **arrays)


CASES = {
    "no images key": (lambda p: _write(p, pictures=GOOD), r"no `images` array \(it has \['pictures'\]\)"),
    "float images": (lambda p: _write(p, images=GOOD.astype(np.float32)),
                     "must be uint8 in \\[0, 255\\]; it is float32. From floats"),
    "NaN images": (lambda p: _write(p, images=np.full((4, *SHAPE), np.nan, np.float32)),
                   "it is float32 and holds NaNs"),
    "wrong resolution": (lambda p: _write(p, images=np.zeros((4, 28, 28, 1), np.uint8)),
                         r"shape \(4, 28, 28, 1\); this config's data are \(N, 32, 32, 1\)"),
    "no channel axis": (lambda p: _write(p, images=np.zeros((4, 32, 32), np.uint8)),
                        r"shape \(4, 32, 32\)"),
    "one image": (lambda p: _write(p, images=GOOD[:1]), "holds 1 image"),
    "float labels": (lambda p: _write(p, images=GOOD, labels=np.zeros(4, np.float32)),
                     r"`labels` must be integers of shape \(4,\)"),
    "too few labels": (lambda p: _write(p, images=GOOD, labels=np.zeros(3, np.int32)),
                       r"they are int32 \(3,\)"),
    "label out of range": (lambda p: _write(p, images=GOOD, labels=np.array([0, 1, 2, 10])),
                           r"run from 0 to 10; the data have classes 0..9"),
    "not an npz": (lambda p: open(p, "wb").write(b"PK not really a zip"), "cannot be read as an .npz"),
    "a pickle": (lambda p: _write(p, images=np.array([object()], dtype=object)),
                 "cannot be read as an .npz"),
    "an .npy": (lambda p: np.save(open(p, "wb"), GOOD), "it is a single .npy array"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_npz_is_named_with_what_was_expected(case, tmp_path):
  make, message = CASES[case]
  path = str(tmp_path / "samples.npz")
  make(path)
  with pytest.raises(PgenError, match=message):
    load_npz(path, SHAPE, num_classes=10)


def test_labels_for_data_without_classes_a_missing_file_and_a_good_one(tmp_path):
  path = str(tmp_path / "samples.npz")
  _write(path, images=GOOD, labels=np.zeros(4, np.int32))
  with pytest.raises(PgenError, match="data have no classes; leave them out"):
    load_npz(path, SHAPE, num_classes=0)
  with pytest.raises(PgenError, match="does not exist"):
    load_npz(str(tmp_path / "absent.npz"), SHAPE, num_classes=0)
  good = str(tmp_path / "good.npz")
  _write(good, images=GOOD)
  images, labels = load_npz(good, SHAPE, num_classes=0)
  assert images.shape == GOOD.shape and labels is None


def test_the_command_prints_one_line_before_computing_features(fmnist_data_dir, tmp_path):
  path = str(tmp_path / "samples.npz")
  _write(path, images=np.zeros((4, 28, 28, 1), np.uint8))
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "evaluate", "--npz", path, "--config",
       os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py"),
       f"--config.data.data_dir={fmnist_data_dir}", "--config.data.download=false"],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1].startswith(
      "pgen evaluate: error: " + path + ": `images` has shape (4, 28, 28, 1)")
