"""The accelerator benchmark runs as it would on a GPU image: without TensorFlow, TFDS or
CLU, writing its table."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_tiny_bench(out_dir, *only):
  """bench_accelerator.py --tiny in bf16 with TensorFlow, TFDS and CLU made unimportable;
  returns its JSON report."""
  blocked = "; ".join(f"sys.modules[{m!r}] = None"  # `import m` then fails.
                      for m in ("tensorflow", "tensorflow_datasets", "clu"))
  code = (f"import runpy, sys; {blocked}; sys.argv = sys.argv[1:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")
  script = os.path.join(ROOT, "bench", "bench_accelerator.py")
  result = subprocess.run(
      [sys.executable, "-c", code, script, "--tiny", "--dtypes", "bfloat16", "--out",
       str(out_dir), *(["--only", *only] if only else [])], cwd=ROOT, capture_output=True,
      text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS="cpu",  # Compiles fast; the numbers are not checked.
               JAX_DISABLE_MOST_OPTIMIZATIONS="true"))
  assert result.returncode == 0, result.stderr[-3000:]
  [name] = [n for n in os.listdir(out_dir) if n.endswith(".json")]
  with open(out_dir / name) as f:
    report = json.load(f)
  for r in report["results"]:
    assert r["images_per_s"] > 0 and r["gflop_per_step"] > 0 and r["compile_s"] > 0
    assert r["mfu"] is None  # A CPU has no peak in the table.
  assert "| dcgan32 | bfloat16 | 8 |" in (out_dir / name.replace(".json", ".md")).read_text()
  return report


def test_accelerator_bench_runs_tiny_without_tensorflow_tfds_or_clu(tmp_path):
  """One family: the script's imports and its table (every family: the slow test below)."""
  report = _run_tiny_bench(tmp_path, "dcgan32")
  assert [(r["entry"], r["dtype"]) for r in report["results"]] == [("dcgan32", "bfloat16")]


@pytest.mark.slow
def test_accelerator_bench_runs_every_family_tiny(tmp_path):
  report = _run_tiny_bench(tmp_path)
  assert [(r["entry"], r["dtype"]) for r in report["results"]] == [
      ("dcgan32", "bfloat16"), ("resnet32", "bfloat16"), ("stylegan2_32", "bfloat16")]
