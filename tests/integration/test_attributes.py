"""Conditioning on a category and a colour (data.label_keys) end to end: an RGB catalog made
from Fashion-MNIST with no red dress in it, `prepare` with its CSV, a conditional run, and
`generate --condition label=dress,colour=red`."""

import collections
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from bench import make_rgb_catalog
from pgen import config as config_lib
from pgen.configs import folder_dcgan
from pgen.data import folder, pipeline, sources
from pgen.errors import ArgumentError
from pgen.generation import export, generators
from pgen.generation.generate import class_label, evaluate_checkpoint, generate, selected_labels
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATEGORIES = ("bag", "dress", "sneaker", "trouser", "tshirt")  # As `prepare` sorts them.
COLOURS = ("blue", "green", "red", "yellow")
RED_DRESS = CATEGORIES.index("dress") * len(COLOURS) + COLOURS.index("red")


def _pgen(*args):
  return subprocess.run([sys.executable, "-m", "pgen", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))


@pytest.fixture(scope="module")
def shop_config(tmp_path_factory):
  """The folder config on a 5 x 4 catalog of 4 photos per combination, less the red
  dresses, conditioned on label and colour."""
  src = tmp_path_factory.mktemp("photos")
  make_rgb_catalog.make_catalog(str(src), 4)
  for path in glob.glob(str(src / "dress" / "red_*")):
    os.remove(path)  # Listed in labels.csv, missing: `prepare` reports them.
  out = str(tmp_path_factory.mktemp("tfds"))
  report = folder.prepare(str(src), "shop", out=out, labels_csv=str(src / "labels.csv"),
                          workers=2)
  assert len(report["missing_files"]) == 4
  config = folder_dcgan.get_config("smoke")
  config.data.name, config.data.data_dir = "shop", out
  config.data.label_keys = ("label", "colour")
  config.batch_size = 8
  return config


@pytest.fixture(scope="module")
def shop_run(shop_config, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("shop_run"))
  train_and_evaluate(shop_config, workdir)
  return workdir


def test_the_pipeline_labels_each_combination_and_never_a_red_dress(shop_config):
  builder = sources.get_builder(shop_config.data)
  info = pipeline.input_info(builder, shop_config)
  assert info.num_classes == 20 and info.label_sizes == (5, 4)
  assert info.class_names[RED_DRESS] == "label=dress,colour=red"
  assert info.class_names[0] == "label=bag,colour=blue"
  batches = pipeline.local_dataset(builder, shop_config, start_step=0).as_numpy_iterator()
  seen = collections.Counter()
  for _ in range(info.steps_per_epoch):
    seen.update(next(batches)["label"].tolist())
  assert RED_DRESS not in seen and len(seen) == 19


def test_the_run_records_the_combinations_and_trains_conditional(shop_run):
  with open(os.path.join(shop_run, "data_info.json")) as f:
    info = json.load(f)
  assert info["label_sizes"] == [5, 4] and len(info["class_names"]) == 20
  with open(os.path.join(shop_run, "config.json")) as f:
    config = json.load(f)
  assert config["model"]["conditioning"] == "projection"  # "auto" with 20 classes.
  assert config["data"]["label_keys"] == ["label", "colour"]


def test_generate_makes_a_red_dress_it_never_saw_in_any_order_of_keys(shop_run, tmp_path):
  out = str(tmp_path / "red_dresses.npz")
  result = _pgen("generate", "--workdir", shop_run, "--num", "4", "--out", out,
                 "--condition", "colour=red,label=dress")
  assert result.returncode == 0, result.stderr[-3000:]
  arrays = np.load(out)
  assert arrays["images"].shape == (4, 32, 24, 3)
  assert arrays["labels"].tolist() == [RED_DRESS] * 4
  by_index = str(tmp_path / "by_index.npz")
  generate(shop_run, 4, by_index, condition="label=1,colour=2")
  np.testing.assert_array_equal(np.load(by_index)["images"], arrays["images"])


def test_a_partial_condition_selects_every_combination_it_matches(shop_run, tmp_path):
  out = str(tmp_path / "reds.npz")
  generate(shop_run, 10, out, condition="colour=red")
  reds = [c * len(COLOURS) + COLOURS.index("red") for c in range(len(CATEGORIES))]
  # Spread evenly, the red dress included.
  assert collections.Counter(np.load(out)["labels"].tolist()) == {red: 2 for red in reds}
  generator = generators.load(shop_run)
  # Bag (index 0) and dress, each in blue (0) and red (2), in label order.
  assert selected_labels(generator, None, "label=dress|0,colour=red|blue") == [0, 2, 4, 6]
  assert selected_labels(generator, "dress") == list(range(4, 8))  # --class: the category.
  with pytest.raises(ArgumentError, match=r"condition=label=dress selects 4 classes; this "
                     r"output takes one: name one value of every key \(label, colour\)"):
    class_label(generator, None, "label=dress")


@pytest.mark.parametrize("condition, message", [
    ("label=dress,colour=red,size=m", "names a key this run lacks; the keys are label, colour"),
    ("label=dress,colour=pink", r"colour=pink is not a value of this run; use an index below "
                                r"4 or one of \['blue', 'green', 'red', 'yellow'\]"),
    ("label=hat,colour=red", r"label=hat is not a value of this run.*'dress'"),
    ("dress", "is not KEY=VALUE"),
])
def test_a_condition_with_an_unknown_key_or_value_lists_the_known_ones(
    shop_run, tmp_path, condition, message):
  with pytest.raises(ArgumentError, match=message) as raised:
    generate(shop_run, 2, str(tmp_path / "x.npz"), condition=condition)
  assert raised.value.argument == "condition"


def test_a_label_key_the_catalog_lacks_is_named_with_its_class_labels(shop_config):
  config = shop_config.copy_and_resolve_references()
  config.data.label_keys = ("label", "material")
  with pytest.raises(sources.DatasetError, match=r"data.label_keys=\('label', 'material'\) "
                     r"names 'material', which is not a class label of shop; its class labels "
                     r"are \[.*'colour'.*\]"):
    pipeline.input_info(sources.get_builder(config.data), config)


def test_a_catalog_of_chosen_combinations_has_a_column_and_a_text_chunk_per_attribute(
    shop_run, tmp_path):
  out = str(tmp_path / "catalog")
  result = _pgen("generate", "--workdir", shop_run, "--per_class", "2", "--out", out,
                 "--condition", "label=dress|trouser,colour=red")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, "manifest.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [(r["class"], r["label"], r["colour"]) for r in rows] == [
      ("label=dress,colour=red", "dress", "red")] * 2 + [
      ("label=trouser,colour=red", "trouser", "red")] * 2
  chunks = Image.open(os.path.join(out, rows[0]["file"])).text
  assert (chunks["pgen:label"], chunks["pgen:colour"]) == ("dress", "red")


def test_an_export_takes_each_attribute_s_value_and_names_them(shop_run, tmp_path):
  out = str(tmp_path / "export")
  record = export.export(shop_run, out)
  assert record["attributes"] == {"label": list(CATEGORIES), "colour": list(COLOURS)}
  assert record["label_sizes"] == [5, 4] and "labels int32 (B, 2): label, colour" in (
      record["function"])
  with open(os.path.join(out, "generator.stablehlo"), "rb") as f:
    function = jax.export.deserialize(bytearray(f.read()))
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (3, 16)), np.float32)
  red_dress = np.asarray(function.call(z, np.array([[1, 2]] * 3, np.int32)))
  workdir = generators.load(shop_run)
  np.testing.assert_array_equal(red_dress, workdir.render(z, np.full((3,), RED_DRESS)))
  exported = generators.load(out)  # Combined labels in, each attribute's value to the function.
  np.testing.assert_array_equal(exported.render(z, np.full((3,), RED_DRESS)), red_dress)
  signature = tf.saved_model.load(os.path.join(out, "saved_model")).signatures[
      "serving_default"].structured_input_signature[1]
  assert signature["labels"].shape.as_list() == [None, 2]


def test_samples_are_scored_per_attribute_by_a_classifier_of_the_catalog_made_once(
    shop_run, tmp_path, monkeypatch):
  """The folder config's feature network: a classifier trained on the catalog on first use,
  its held-out accuracy per attribute recorded, cached for the next evaluation."""
  monkeypatch.setenv("PGEN_CACHE_DIR", str(tmp_path / "cache"))
  result = evaluate_checkpoint(shop_run, num=40)
  assert result["feature_extractor"].startswith("catalog-classifier-")
  made = result["catalog_classifier"]
  assert made["dataset"] == "shop:1.0.0" and made["held_out_images"] == 8
  assert set(made["held_out_accuracy"]) == {"label", "colour"}
  assert all(0.0 <= result[f"accuracy/{name}"] <= 1.0 for name in ("label", "colour"))
  assert result["fd"] >= 0 and 0.0 <= result["recall"] <= 1.0
  [record] = glob.glob(str(tmp_path / "cache" / "catalog_classifier_shop_*.json"))
  written = os.path.getmtime(record)
  again = evaluate_checkpoint(shop_run, num=40)
  assert again["feature_extractor"] == result["feature_extractor"]
  assert os.path.getmtime(record) == written


SINGLE_LABEL_RUN = os.path.join(ROOT, "tests", "data", "single_label_run")


@pytest.mark.parametrize("source", ["workdir", "export"])
def test_a_conditional_run_and_export_from_before_label_keys_generate_the_same(
    source, tmp_path):
  """tests/data/single_label_run (tests/data/make_single_label_run.sh): a run on one label
  (conditional BatchNorm, projection D) and its export, written by pgen before
  data.label_keys, with the images each generated (seed 3, one per class)."""
  out = str(tmp_path / "x.npz")
  generate(os.path.join(SINGLE_LABEL_RUN, source), 10, out, seed=3)
  expected = np.load(os.path.join(SINGLE_LABEL_RUN, f"{source}_seed3.npz"))
  assert np.load(out)["labels"].tolist() == expected["labels"].tolist() == list(range(10))
  difference = np.abs(np.load(out)["images"].astype(int) - expected["images"].astype(int))
  assert difference.max() <= 1  # Within one grey level (other CPUs round).
  generate(os.path.join(SINGLE_LABEL_RUN, source), 2, out, class_name="Dress")
  assert np.load(out)["labels"].tolist() == [3, 3]


def test_a_conditional_run_from_before_label_keys_trains_on(fmnist_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(os.path.join(SINGLE_LABEL_RUN, "workdir"), workdir)
  config = config_lib.from_workdir(workdir)
  assert (config.data.label_key, tuple(config.data.label_keys)) == ("label", ())
  config.data.data_dir = fmnist_data_dir
  config.total_steps = 6
  assert int(train_and_evaluate(config, workdir).step) == 6
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
