"""`python -m pgen prepare`: a messy folder -> a TFDS dataset and a report naming every problem."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import ROOT
from PIL import Image, ImageDraw

from bench import make_rgb_catalog
from pgen.configs import folder_dcgan
from pgen.data import folder, images, pipeline, sources, tfds_writer
from pgen.data.report import report_markdown
from tests.helpers import product_photos


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
  """The messy catalog prepared once: (expected problems, report, data_dir)."""
  src = str(tmp_path_factory.mktemp("messy_src"))
  expected = product_photos.make_messy_catalog(src)
  out = str(tmp_path_factory.mktemp("messy_tfds"))
  report = folder.prepare(src, "messy_catalog", out=out, workers=2)
  return expected, report, out


def test_report_names_every_problem(messy):
  expected, report, _ = messy
  assert report["classes"] == expected["kept"]
  assert {s["file"]: s["problem"] for s in report["skipped"]} == expected["skipped"]
  assert {d["file"]: (d["duplicate_of"], d["kind"]) for d in report["duplicates"]} == (
      expected["duplicates"])
  converted = {c["file"]: c["conversion"] for c in report["converted"]}
  assert converted.keys() == expected["converted"].keys()
  for file, words in expected["converted"].items():
    assert words in converted[file]
  assert report["not_images"] == expected["not_images"]
  assert report["counts"] == {"image_files": 20, "kept": 12, "skipped": 6, "duplicates": 2,
                              "not_images": 1, "missing_files": 0}
  reasons = {s["file"]: s["reason"] for s in report["skipped"]}
  assert "truncated" in reasons["shoes/k_truncated.jpg"]
  assert "0 bytes" in reasons["shoes/m_empty.webp"]
  assert reasons["shoes/j_tiny.png"].startswith("too small: ")
  assert "--min_size=32" in reasons["shoes/j_tiny.png"]
  assert report["trimmed"] == 12
  assert sum(report["size_histogram"].values()) == sum(report["aspect_histogram"].values()) == 12
  assert report["aspect_histogram"]["0.67-0.9"] == 7 and report["aspect_histogram"][">=2.0"] == 5


def test_report_files_are_written_next_to_the_dataset(messy):
  expected, report, out = messy
  path = os.path.join(out, "messy_catalog", "1.0.0")
  assert report["path"] == path
  with open(os.path.join(path, "report.json")) as f:
    assert json.load(f) == json.loads(json.dumps(report))
  with open(os.path.join(path, "report.md")) as f:
    text = f.read()
  for file in [*expected["skipped"], *expected["duplicates"], *expected["not_images"]]:
    assert file in text
  assert "| shoes | 7 |" in text and "--config.data.name=messy_catalog" in text
  with open(os.path.join(path, tfds_writer.MANIFEST)) as f:
    manifest = {entry["file"]: entry for entry in json.load(f)["files"]}
  assert len(manifest) == 20  # Every image file, whatever happened to it.
  assert manifest["shoes/a.jpg"]["status"] == "kept"
  assert len(manifest["shoes/a.jpg"]["sha256"]) == 64
  assert manifest["shoes/g_copy.jpg"]["status"] == "duplicate of shoes/a.jpg"
  assert manifest["loose.png"]["status"].startswith("skipped: directly in --src")


def test_dataset_loads_with_tfds_and_has_clean_rgb_images(messy):
  _, _, out = messy
  builder = tfds.builder("messy_catalog", data_dir=out)
  assert builder.info.features["label"].names == ["bags", "shoes"]
  assert builder.info.splits["train"].num_examples == 12
  examples = {ex["file_name"].decode(): ex
              for ex in tfds.as_numpy(tfds.load("messy_catalog", data_dir=out, split="train"))}
  assert sorted(examples) == ["bags/bag_0.jpg", "bags/bag_1.jpg", "bags/bag_2.jpg",
                              "bags/bag_3.jpg", "bags/bag_4.jpg", "shoes/a.jpg", "shoes/b.png",
                              "shoes/c.webp", "shoes/d_gray.png", "shoes/e_rgba.png",
                              "shoes/f_cmyk.jpg", "shoes/i_green_variant.jpg"]
  for file, ex in examples.items():
    # Trimmed to the drawn frame: 64x80 with a 12 px margin, 112x64 for bags (JPEG edges +-1).
    expected = (40, 88) if file.startswith("bags") else (56, 40)
    assert np.abs(np.subtract(ex["image"].shape[:2], expected)).max() <= 1, file
    assert ex["image"].shape[2] == 3
    assert ex["label"] == (0 if file.startswith("bags") else 1)
  gray = examples["shoes/d_gray.png"]["image"]
  assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
  # The RGBA file's transparent margin became white and was trimmed like the others' margin.
  assert examples["shoes/e_rgba.png"]["image"].shape[:2] == (56, 40)


def test_labels_csv_gives_classes_and_attribute_features(tmp_path):
  src = tmp_path / "flat"
  for i in range(6):
    product_photos.save(product_photos.product(300 + i), str(src / f"item_{i}.png"))
  (tmp_path / "labels.csv").write_text(
      "file,label,Colour\n"
      "item_0.png,shirt,red\nitem_1.png,shirt,blue\nitem_2.png,dress,red\n"
      "item_3.png,dress,\nitem_4.png,,red\ngone.png,shirt,red\n")
  report = folder.prepare(str(src), "csv_catalog", out=str(tmp_path / "tfds"),
                          labels_csv=str(tmp_path / "labels.csv"), workers=1)
  assert report["classes"] == {"dress": 2, "shirt": 2}
  assert report["attributes"] == {"colour": {"(missing)": 1, "blue": 1, "red": 2}}
  assert {s["file"]: s["problem"] for s in report["skipped"]} == {
      "item_4.png": "no_label", "item_5.png": "unlisted"}
  assert report["missing_files"] == ["gone.png"]
  builder = tfds.builder("csv_catalog", data_dir=str(tmp_path / "tfds"))
  assert builder.info.features["colour"].names == ["(missing)", "blue", "red"]
  rows = {ex["file_name"].decode(): (ex["label"], ex["colour"])
          for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
  assert rows == {"item_0.png": (1, 2), "item_1.png": (1, 1), "item_2.png": (0, 2),
                  "item_3.png": (0, 0)}


def test_a_folder_without_subfolders_is_one_class_and_notrim_keeps_sizes(tmp_path):
  src = tmp_path / "lamps"
  for i in range(3):
    product_photos.save(product_photos.product(400 + i), str(src / f"{i}.png"))
  report = folder.prepare(str(src), "lamps", out=str(tmp_path / "tfds"), workers=1,
                          options=images.CleanOptions(trim=False))
  assert report["classes"] == {"lamps": 3} and report["trimmed"] == 0
  shapes = {ex["image"].shape for ex in tfds.as_numpy(
      tfds.load("lamps", data_dir=str(tmp_path / "tfds"), split="train"))}
  assert shapes == {(80, 64, 3)}


def test_each_run_is_a_new_version_and_training_finds_newest_or_pinned(tmp_path):
  src, out = tmp_path / "src", str(tmp_path / "tfds")
  product_photos.make_catalog(str(src), per_class=2, classes=("a", "b"))
  assert folder.prepare(str(src), "versioned", out=out, workers=1)["version"] == "1.0.0"
  product_photos.make_catalog(str(src), per_class=3, classes=("a", "b"))  # The catalog grew.
  assert folder.prepare(str(src), "versioned", out=out, workers=1)["version"] == "1.1.0"
  with pytest.raises(folder.PrepareError, match="1.0.0 already exists"):
    folder.prepare(str(src), "versioned", out=out, version="1.0.0")
  config = folder_dcgan.get_config("smoke")
  config.data.data_dir = out
  config.data.name = "versioned"
  assert sources.get_builder(config.data).info.splits["train"].num_examples == 6
  config.data.name = "versioned:1.0.0"
  assert sources.get_builder(config.data).info.splits["train"].num_examples == 4
  config.data.name = "versioned:2.0.0"
  with pytest.raises(sources.DatasetError, match=r"versions \['1.0.0', '1.1.0'\] only"):
    sources.get_builder(config.data)
  config.data.name = "versiond"
  with pytest.raises(sources.DatasetError, match="prepared there: \\['versioned'\\].*versioned"):
    sources.get_builder(config.data)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "My Catalog"}, "not a valid TFDS name"),
    ({"name": "cifar10"}, "is a TFDS dataset already"),
    ({"src": "/nonexistent/photos"}, "is not a directory"),
    ({"labels_csv": "/nonexistent/labels.csv"}, "does not exist"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
  args = {"src": str(tmp_path), "name": "ok_name", "out": str(tmp_path / "tfds"), **kwargs}
  with pytest.raises(folder.PrepareError, match=message):
    folder.prepare(args.pop("src"), args.pop("name"), **args)


def test_bad_labels_csv_is_named(tmp_path):
  product_photos.save(product_photos.product(1), str(tmp_path / "src" / "x.png"))
  (tmp_path / "no_file.csv").write_text("path,label\nx.png,a\n")
  with pytest.raises(folder.PrepareError, match="needs a `file` column"):
    folder.prepare(str(tmp_path / "src"), "bad_csv", labels_csv=str(tmp_path / "no_file.csv"),
                   out=str(tmp_path / "tfds"))
  (tmp_path / "twice.csv").write_text("file,label\nx.png,a\nx.png,b\n")
  with pytest.raises(folder.PrepareError, match="lists x.png twice"):
    folder.prepare(str(tmp_path / "src"), "bad_csv", labels_csv=str(tmp_path / "twice.csv"),
                   out=str(tmp_path / "tfds"))


def _flat_shop(tmp_path, header: str, rows: list[str]) -> tuple[str, str]:
  """Photos directly in one folder and a labels CSV: (src, csv path)."""
  src = tmp_path / "shop"
  for i in range(len(rows)):
    product_photos.save(product_photos.product(500 + i), str(src / f"p{i}.png"))
  (tmp_path / "shop.csv").write_text(header + "\n" + "\n".join(
      f"p{i}.png,{row}" for i, row in enumerate(rows)) + "\n")
  return str(src), str(tmp_path / "shop.csv")


def test_label_column_makes_any_csv_column_the_class(tmp_path):
  src, csv = _flat_shop(tmp_path, "file,category,colour",
                        ["dress,red", "dress,blue", "shirt,red", "shirt,red"])
  report = folder.prepare(src, "by_category", out=str(tmp_path / "tfds"), labels_csv=csv,
                          label_column="category", workers=1)
  assert report["classes"] == {"dress": 2, "shirt": 2}
  assert report["attributes"] == {"colour": {"blue": 1, "red": 3}}
  assert report["label_column"] == "category" and report["warnings"] == []


def test_a_csv_without_a_class_column_for_flat_photos_names_its_columns_and_the_flag(tmp_path):
  src, csv = _flat_shop(tmp_path, "file,category,colour", ["dress,red", "shirt,blue"])
  with pytest.raises(folder.PrepareError, match=r"no `label` column .* Its columns are file, "
                                                r"category, colour: name the class's with "
                                                r"--label_column \(e.g. --label_column=category"):
    folder.prepare(src, "no_class", out=str(tmp_path / "tfds"), labels_csv=csv, workers=1)
  with pytest.raises(folder.PrepareError, match="label_column='kind' is not a column"):
    folder.prepare(src, "no_class", out=str(tmp_path / "tfds"), labels_csv=csv,
                   label_column="kind", workers=1)
  assert not os.path.exists(tmp_path / "tfds" / "no_class")


def test_one_class_with_csv_columns_is_warned_about_in_the_report(tmp_path):
  """Photos in one subfolder with a CSV of attributes: one class, which the report says."""
  src = tmp_path / "photos"
  for i in range(3):
    product_photos.save(product_photos.product(600 + i), str(src / "all" / f"{i}.png"))
  (tmp_path / "attrs.csv").write_text("file,category\nall/0.png,a\nall/1.png,b\nall/2.png,b\n")
  report = folder.prepare(str(src), "one_class", out=str(tmp_path / "tfds"),
                          labels_csv=str(tmp_path / "attrs.csv"), workers=1)
  assert report["classes"] == {"all": 3}
  assert len(report["warnings"]) == 1 and "--label_column" in report["warnings"][0]
  assert "**Warning:** Every kept image is of one class" in report_markdown(report)


def test_prepare_command_refuses_a_csv_without_a_class_column_in_one_line(tmp_path):
  src, csv = _flat_shop(tmp_path, "file,category", ["dress", "shirt"])
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "prepare", f"--src={src}", "--name=no_class",
       f"--labels={csv}", f"--out={tmp_path / 'tfds'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      "pgen prepare: error: --labels=") and "--label_column=category" in result.stderr


def test_nothing_usable_is_an_error_with_the_reasons(tmp_path):
  (tmp_path / "src" / "a").mkdir(parents=True)
  (tmp_path / "src" / "a" / "broken.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(folder.PrepareError, match="No usable image.*broken.jpg"):
    folder.prepare(str(tmp_path / "src"), "empty_catalog", out=str(tmp_path / "tfds"))


def test_prepare_command_prints_the_report_and_the_pipeline_reads_it(tmp_path):
  """A narrow product on a large photo is kept (the size rule reads the photo as given),
  a small photo is skipped, and a log that is not a terminal holds pgen's lines alone."""
  src, out = tmp_path / "photos", tmp_path / "tfds"
  product_photos.make_catalog(str(src), per_class=4)
  (src / "tops" / "broken.webp").write_bytes(b"RIFF0000WEBP")
  trousers = Image.new("RGB", (100, 100), (255, 255, 255))
  ImageDraw.Draw(trousers).rectangle((39, 17, 60, 82), fill=(40, 40, 90))  # 22x66 px.
  product_photos.save(trousers, str(src / "tops" / "trousers.png"))
  product_photos.save(product_photos.product(5, size=(36, 30), margin=2),
                      str(src / "tops" / "small.png"))
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "prepare", f"--src={src}", "--name=cli_catalog",
       f"--out={out}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| tops | 5 | 5 |" in result.stdout and "tops/broken.webp | corrupt" in result.stdout
  assert "tops/small.png | too_small | too small: the photo is 36x30 px" in result.stdout
  assert "Downloading and preparing" not in result.stdout + result.stderr
  assert "\x1b" not in result.stdout + result.stderr
  assert os.path.isfile(out / "cli_catalog" / "1.0.0" / "report.md")
  config = folder_dcgan.get_config("smoke")
  config.data.name, config.data.data_dir, config.batch_size = "cli_catalog", str(out), 4
  builder = sources.get_builder(config.data)
  info = pipeline.input_info(builder, config)
  assert info.image_shape == (32, 24, 3) and info.class_names == ("bags", "shoes", "tops")
  batch = next(pipeline.local_dataset(builder, config, start_step=0).as_numpy_iterator())
  assert batch["image"].shape == (4, 32, 24, 3)


def test_an_rgb_catalog_made_from_fashion_mnist_keeps_its_narrow_products(tmp_path):
  """bench/make_rgb_catalog.py's photos (5 categories x 4 colours, mixed sizes and formats,
  mostly portrait, labels.csv beside them) go through `prepare` whole: trousers are narrow
  once trimmed, and none is too small; colour is an attribute, and the dye is kept."""
  src = tmp_path / "photos"
  counts = make_rgb_catalog.make_catalog(str(src), 3)
  assert len(counts) == 20 and set(counts.values()) == {3}
  assert {name.rsplit(".", 1)[1] for _, _, names in os.walk(src) for name in names} == {
      "jpg", "png", "webp", "csv"}
  report = folder.prepare(str(src), "rgb_catalog", out=str(tmp_path / "tfds"),
                          labels_csv=str(src / "labels.csv"), workers=1)
  assert report["skipped"] == [] and report["not_images"] == []
  assert report["counts"]["kept"] + report["counts"]["duplicates"] == 60
  assert set(report["classes"]) == {"bag", "dress", "sneaker", "trouser", "tshirt"}
  assert set(report["attributes"]["colour"]) == {"blue", "green", "red", "yellow"}
  assert report["trimmed_per_class"]["trouser"] == report["classes"]["trouser"]
  assert report["median_aspect"] < 1  # Portrait frames.
  builder = tfds.builder("rgb_catalog", data_dir=str(tmp_path / "tfds"))
  colours = builder.info.features["colour"].names
  widths = []
  for example in tfds.as_numpy(builder.as_dataset(split="train")):
    image = example["image"].astype(np.float32)
    red, green, blue = image[image.min(-1) < 200].mean(0)  # The product, not the white.
    dyed = {"red": red > max(green, blue), "green": green > max(red, blue),
            "blue": blue > max(red, green), "yellow": blue < min(red, green)}
    assert dyed[colours[example["colour"]]], example["file_name"]
    if example["file_name"].startswith(b"trouser/"):
      widths.append(image.shape[1] / image.shape[0])
  assert max(widths) < 0.8  # Trousers stay narrow: what was once refused as too small.
