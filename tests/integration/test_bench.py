"""The accelerator benchmark runs as it would on a GPU image: without TensorFlow, TFDS or
CLU, writing its table."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_accelerator_bench_runs_tiny_without_tensorflow_tfds_or_clu(tmp_path):
  blocked = "; ".join(f"sys.modules[{m!r}] = None"  # `import m` then fails.
                      for m in ("tensorflow", "tensorflow_datasets", "clu"))
  code = (f"import runpy, sys; {blocked}; sys.argv = sys.argv[1:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")
  script = os.path.join(ROOT, "bench", "bench_accelerator.py")
  result = subprocess.run(
      [sys.executable, "-c", code, script, "--tiny", "--dtypes", "bfloat16", "--out",
       str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS="cpu",  # Compiles fast; the numbers are not checked.
               JAX_DISABLE_MOST_OPTIMIZATIONS="true"))
  assert result.returncode == 0, result.stderr[-3000:]
  [name] = [n for n in os.listdir(tmp_path) if n.endswith(".json")]
  with open(tmp_path / name) as f:
    report = json.load(f)
  assert [(r["entry"], r["dtype"]) for r in report["results"]] == [
      ("dcgan32", "bfloat16"), ("resnet32", "bfloat16"), ("stylegan2_32", "bfloat16")]
  for r in report["results"]:
    assert r["images_per_s"] > 0 and r["gflop_per_step"] > 0 and r["compile_s"] > 0
    assert r["mfu"] is None  # A CPU has no peak in the table.
  assert "| dcgan32 | bfloat16 | 8 |" in (tmp_path / name.replace(".json", ".md")).read_text()
