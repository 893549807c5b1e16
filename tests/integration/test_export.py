"""From checkpoint to catalog: the export directory, its StableHLO and SavedModel against
`pgen generate`, catalogs, interpolations and post-processing."""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import ROOT
from PIL import Image

from pgen import config as config_lib
from pgen.configs import fashion_mnist_dcgan
from pgen.core import sharding
from pgen.errors import ArgumentError
from pgen.feedback import reviews
from pgen.gan.state import build
from pgen.generation import catalog, export, generators, interpolate, postprocess
from pgen.generation.generate import generate
from pgen.training import checkpointing, init_from

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


@pytest.fixture(scope="module")
def exported(smoke_run, tmp_path_factory):
  """The smoke run's export, made over the partial directory of an interrupted one."""
  out = str(tmp_path_factory.mktemp("export") / "fmnist")
  os.makedirs(out + ".partial/params")
  open(os.path.join(out + ".partial", export.PARTIAL_MARK), "w").close()
  return out, export.export(smoke_run, out)


@pytest.fixture(scope="module")
def conditional_generator():
  """An untrained class-conditional generator (AC-GAN smoke config) with Fashion-MNIST's
  classes: catalogs and interpolations depend on its classes and seeds, not its training."""
  config = fashion_mnist_dcgan.get_config("smoke")
  config.model.conditioning = "acgan"
  config = config_lib.resolve(config)
  setup = build(config, sharding.make_mesh(), (32, 32, 1), len(FASHION_MNIST_CLASSES))
  return generators.from_state(setup, setup.init(), config=config, image_shape=(32, 32, 1),
                               class_names=FASHION_MNIST_CLASSES, source="untrained")


def test_export_holds_the_ema_generator_alone_and_its_record(exported, smoke_run):
  assert not os.path.exists(exported[0] + ".partial")
  out, record = exported
  assert sorted(os.listdir(out)) == ["export.json", "generator.stablehlo", "params",
                                     "saved_model"]
  with open(os.path.join(out, "export.json")) as f:
    assert json.load(f) == record
  assert record["image_shape"] == [32, 32, 1] and record["latent_dim"] == 16
  assert record["source_step"] == 6 and record["truncation"] is None
  assert record["source_checkpoint_sha256"] == checkpointing.checkpoint_sha256(smoke_run, 6)
  assert re.fullmatch(r"[0-9a-f]{64}", record["source_checkpoint_sha256"])
  params = ocp.StandardCheckpointer().restore(os.path.abspath(os.path.join(out, "params")))
  assert set(params) == {"params", "batch_stats"}  # No optimizer state, no discriminator.
  state = checkpointing.restore_run_state(smoke_run)[3]
  for a, b in zip(jax.tree.leaves(params["params"]), jax.tree.leaves(state.ema_g_params),
                  strict=True):
    np.testing.assert_array_equal(a, b)


def test_stablehlo_and_saved_model_give_generate_s_images_in_a_fresh_process(
    exported, smoke_run, tmp_path):
  out, _ = exported
  expected, latents = {}, {}
  for n in (1, 37):
    path = generate(smoke_run, num=n, out=str(tmp_path / f"generated_{n}.npz"), seed=5)[0]
    expected[n] = np.load(path)["images"].astype(int)
    latents[f"z{n}"] = np.asarray(  # generate's latents: the first chunk of seed 5's key.
        jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(5), 0), (n, 16)))
  np.savez(tmp_path / "latents.npz", **latents)
  code = f"""
import jax, numpy as np, tensorflow as tf
z = np.load({str(tmp_path / "latents.npz")!r})
fn = jax.export.deserialize(bytearray(open({out!r} + "/generator.stablehlo", "rb").read()))
serve = tf.saved_model.load({out!r} + "/saved_model").signatures["serving_default"]
results = {{}}
for n in (1, 37):
  labels = np.zeros((n,), np.int32)
  results[f"hlo{{n}}"] = np.asarray(fn.call(z[f"z{{n}}"], labels))
  results[f"tf{{n}}"] = serve(z=tf.constant(z[f"z{{n}}"]), labels=tf.constant(labels))["images"].numpy()
np.savez({str(tmp_path / "results.npz")!r}, **results)
"""
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  results = np.load(tmp_path / "results.npz")
  for n in (1, 37):
    for kind in ("hlo", "tf"):
      images = results[f"{kind}{n}"]
      assert images.dtype == np.uint8 and images.shape == (n, 32, 32, 1)
      assert np.abs(images.astype(int) - expected[n]).max() <= 1, (kind, n)


def test_saved_model_signature_as_saved_model_cli_shows_it(exported):
  out, _ = exported
  result = subprocess.run(
      [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
       os.path.join(out, "saved_model"), "--tag_set", "serve", "--signature_def",
       "serving_default"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  shown = " ".join(result.stdout.split())
  for expected in ("inputs['z'] tensor_info: dtype: DT_FLOAT shape: (-1, 16) name: serving_default_z:0",
                   "inputs['labels'] tensor_info: dtype: DT_INT32 shape: (-1) name: "
                   "serving_default_labels:0",
                   "outputs['images'] tensor_info: dtype: DT_UINT8 shape: (-1, 32, 32, 1)"):
    assert expected in shown, shown


def test_generate_from_an_export_loads_no_tensorflow(exported, tmp_path):
  out, _ = exported
  code = ("import sys\n"
          "from pgen.cli.main import run\n"
          f"sys.argv = ['pgen', 'generate', '--export', {out!r}, '--num', '4', '--out', "
          f"{str(tmp_path / 'x.npz')!r}]\n"
          "try:\n  run()\nexcept SystemExit as e:\n  assert not e.code, e.code\n"
          "print('tensorflow' in sys.modules)\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split()[-1] == "False"
  assert np.load(tmp_path / "x.npz")["images"].shape == (4, 32, 32, 1)


def test_catalog_per_class_with_manifest_contact_sheets_and_same_files_per_seed(
    conditional_generator, tmp_path, monkeypatch):
  monkeypatch.setattr(catalog, "CHUNK", 2)  # Several chunks per class.
  generator = conditional_generator
  result = catalog.write_catalog(generator, str(tmp_path / "a"), 5, seed=10,
                                 postprocess_spec="autocontrast,upscale=2")
  assert result["images"] == 50
  with open(result["manifest"]) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 50 and rows[0]["class"] == generator.class_names[0]
  assert {r["seed"] for r in rows} == {"10", "11", "12", "13", "14"}
  assert rows[0]["postprocess"] == "autocontrast,upscale=2" and rows[0]["step"] == "0"
  assert rows[0]["file"] == "T-shirt_top/10.png"
  image = Image.open(tmp_path / "a" / rows[0]["file"])
  assert image.size == (64, 64) and image.text["pgen:seed"] == rows[0]["seed"]
  assert image.text["pgen:postprocess"] == "autocontrast,upscale=2"
  sheets = sorted(os.listdir(tmp_path / "a" / "contact_sheets"))
  assert len(sheets) == 10
  # Fewer images from the same seed: the same files (an image depends on its seed alone).
  catalog.write_catalog(generator, str(tmp_path / "b"), 3, seed=10,
                        postprocess_spec="autocontrast,upscale=2")
  for row in rows:
    if int(row["seed"]) < 13:
      assert (tmp_path / "a" / row["file"]).read_bytes() == (tmp_path / "b" / row["file"]).read_bytes()


def test_interpolation_strips_and_gifs_stay_in_one_class(conditional_generator, tmp_path):
  generator = conditional_generator
  paths = interpolate.write_interpolations(generator, str(tmp_path), 2, 5, seed=3, label=4)
  assert [os.path.basename(p) for p in paths] == [
      "pair_000_s3_s4.png", "pair_000_s3_s4.gif", "pair_001_s5_s6.png", "pair_001_s5_s6.gif"]
  gif = Image.open(paths[1])
  assert gif.n_frames == 5
  strip = np.asarray(Image.open(paths[0]))
  assert strip.shape[:2] == (34, 5 * 33 + 1)
  first = generator.render(generators.latents_for_seeds(generator, [3]), np.array([4], np.int32))
  np.testing.assert_allclose(strip[1:33, 1:33].astype(int), first[0, ..., 0].astype(int), atol=1)


def test_slerp_keeps_gaussian_norms_and_ends_at_the_endpoints():
  a, b = jax.random.normal(jax.random.PRNGKey(0), (2, 64))
  path = interpolate.slerp(a, b, np.linspace(0, 1, 9))
  np.testing.assert_allclose(path[0], a, atol=1e-5)
  np.testing.assert_allclose(path[-1], b, atol=1e-5)
  norms = np.linalg.norm(path, axis=1)
  assert norms.min() > 0.9 * min(np.linalg.norm(a), np.linalg.norm(b))  # A line would dip.


def test_postprocess_steps_parse_apply_and_explain_mistakes():
  steps = postprocess.parse("autocontrast,sharpen,upscale=4")
  assert postprocess.describe(steps) == "autocontrast,sharpen,upscale=4"
  image = Image.fromarray(np.random.default_rng(0).integers(60, 120, (8, 8), np.uint8))
  out = postprocess.apply(steps, image)
  assert out.size == (32, 32) and np.asarray(out).max() > 200  # Stretched, enlarged.
  with pytest.raises(ValueError, match="step 'blur' is unknown"):
    postprocess.parse("blur")
  with pytest.raises(ValueError, match="upscale takes a value"):
    postprocess.parse("upscale")


def test_export_refuses_a_non_empty_out_and_a_directory_that_is_not_a_run(smoke_run, tmp_path):
  out = tmp_path / "taken"
  out.mkdir()
  (out / "keep.txt").write_text("mine")
  with pytest.raises(ValueError, match="exists and is not empty; export to a new directory"):
    export.export(smoke_run, str(out))
  assert os.listdir(out) == ["keep.txt"]
  with pytest.raises(FileNotFoundError, match="not a pgen training workdir"):
    export.export(str(tmp_path), str(tmp_path / "new"))
  assert not os.path.exists(tmp_path / "new") and not os.path.exists(tmp_path / "new.partial")
  (tmp_path / "mine.partial").mkdir()  # A folder of the user's, not an unfinished export.
  (tmp_path / "mine.partial" / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match=r"mine.partial exists and is not a partial export"):
    export.export(smoke_run, str(tmp_path / "mine"))
  assert os.listdir(tmp_path / "mine.partial") == ["notes.txt"]


def test_a_run_can_start_from_an_export_s_generator_with_a_fresh_discriminator(
    exported, smoke_config):
  out, record = exported
  smoke_config.init["from"] = out
  config = config_lib.resolve(smoke_config)
  setup = build(config, sharding.make_mesh(), (32, 32, 1), 10)
  fresh = setup.init()
  state, started = init_from.start_from(config, fresh, setup.image_shape)
  params = ocp.StandardCheckpointer().restore(os.path.abspath(os.path.join(out, "params")))
  for tree in (state.g_params, state.ema_g_params):
    for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(params["params"]), strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(jax.tree.leaves(state.d_params), jax.tree.leaves(fresh.d_params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert started["step"] == record["source_step"] and started["fresh"]
  assert all(name.startswith(("d_params", "d_batch_stats")) for name in started["fresh"])


def test_ratings_of_an_export_name_its_function_not_its_checkpoint(exported, smoke_run,
                                                                   tmp_path):
  out, _ = exported
  from_export = generators.load(out)
  with open(os.path.join(out, generators.EXPORT_FUNCTION), "rb") as f:
    assert from_export.identity == hashlib.sha256(f.read()).hexdigest()
  path = str(tmp_path / reviews.FILE_NAME)
  store = reviews.ReviewStore.open(path, from_export)
  store.rate(reviews.Rating(seed=0, label=0, accepted=True, reviewer="anna"))
  # The checkpoint it came from renders through other code: its ratings are kept apart.
  with pytest.raises(ArgumentError, match="another generator"):
    reviews.ReviewStore.open(path, generators.load(smoke_run))
  assert reviews.ReviewStore.read(path).generator.source == os.path.abspath(out)
