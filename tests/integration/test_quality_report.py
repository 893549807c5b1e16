"""bench/quality.py's report: the tables a reader compares recipes by, from results.jsonl."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _quality():
  spec = importlib.util.spec_from_file_location("quality", os.path.join(ROOT, "bench", "quality.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _run(recipe, seed, fds, config, recall=0.8, commit="abc1234"):
  points = [{"kind": "minutes", "at": minute, "minutes": minute, "images": minute * 40_000,
             "step": minute * 600, "fd": fd, "recall": recall, "precision": 0.9}
            for minute, fd in zip((5, 10, 15), fds)]
  return {"recipe": recipe, "config_file": "configs/x.py", "overrides": {}, "seed": seed,
          "commit": commit, "machine": "test machine, 2 cores", "started": "2026-12-01",
          "compile_s": 1.0, "images_per_s": 700.0, "steps": 9000, "points": points,
          "config": {"seed": seed, "total_steps": 9500 + seed,
                     "eval": {"feature_extractor": "classifier"}, **config}}


def test_report_tables_every_run_and_pools_seeds_of_the_same_settings(tmp_path):
  quality = _quality()
  default = {"optim": {"g_learning_rate": 5e-4}}
  runs = [_run("dcgan", 1, (30, 10, 6), default, recall=0.87),
          _run("dcgan", 2, (25, 8, 5), default, recall=0.88),
          _run("dcgan_fast_r1_strong", 0, (28, 11, 7), default, recall=0.86),
          _run("dcgan_fast", 0, (33, 41, 41), {"optim": {"g_learning_rate": 1e-3}}),
          _run("dcgan_fast", 0, (34, 42, 42.5), {"optim": {"g_learning_rate": 1e-3}},
               commit="def5678")]  # A rerun: the newest of a (recipe, seed) counts.
  results = tmp_path / "results.jsonl"
  results.write_text("".join(json.dumps(r) + "\n" for r in runs))
  text = quality.report(str(results), str(tmp_path / "plot.png"))

  assert (tmp_path / "plot.png").stat().st_size > 0
  rows = [line for line in text.splitlines() if line.startswith("| dcgan_fast |")]
  assert len(rows) == 3  # Minutes, images and recipes tables: once each, the newest run.
  assert "42.50" in rows[0] and "def5678" in rows[0] and "41.00" not in rows[0]
  seeds = text[text.index("## Seeds"):text.index("## Recipes")]
  # The default and the recipe it was first tried as train the same settings: one row, FD
  # at 15 minutes over seeds 0-2 (6, 5, 7: mean 6, std 1); the loser has one seed, no row.
  assert "| dcgan = dcgan_fast_r1_strong | 0, 1, 2 | 6.00 ± 1.00 (5.00-7.00) |" in seeds
  assert "dcgan_fast |" not in seeds
  recipes = text[text.index("## Recipes"):]
  assert "| dcgan_fast | learning rates 5e-4" in recipes
  assert rows[2].endswith("| pgen's Fashion-MNIST classifier |")  # The features it was scored in.


def test_each_dataset_has_its_own_tables_and_plot_and_attribute_accuracies(tmp_path):
  quality = _quality()
  rgb = _run("rgb_dcgan", 0, (2.0, 1.0, 0.5), {"data": {"name": "rgb_catalog"}})
  rgb["config"]["eval"]["feature_extractor"] = "catalog"
  rgb["feature_extractor"] = "catalog-classifier-0123abcd"  # The catalog's own, per version.
  for point in rgb["points"]:
    point.update({"class_accuracy": 0.98, "accuracy/label": 0.99, "accuracy/colour": 1.0})
  results = tmp_path / "results.jsonl"
  results.write_text(json.dumps(rgb) + "\n" + json.dumps(_run("dcgan", 0, (30, 10, 6), {})))
  text = quality.report(str(results), str(tmp_path / "plot.png"))

  assert (tmp_path / "plot.png").stat().st_size > 0
  assert (tmp_path / "plot_rgb_catalog.png").stat().st_size > 0
  fashion_mnist = text[text.index("## Fashion-MNIST"):text.index("## RGB catalog")]
  catalog = text[text.index("## RGB catalog"):text.index("## Seeds")]
  assert "| dcgan | 0 | 30.00 |" in fashion_mnist and "rgb_dcgan" not in fashion_mnist
  assert "colour acc." not in fashion_mnist
  assert ("| recipe | seed | FD @5 min | FD @10 min | FD @15 min | recall | precision | "
          "class acc. | colour acc. | label acc. | images/s | commit |") in catalog
  assert "| rgb_dcgan | 0 | 2.00 | 1.00 | 0.50 | 0.800 | 0.900 | 0.980 | 1.000 | 0.990 |" in catalog
  recipes = text[text.index("## Recipes"):]
  assert "the dataset's own catalog classifier (`catalog-classifier-0123abcd`)" in recipes
