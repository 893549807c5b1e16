"""The FID Inception-v3 against pytorch-fid's own outputs, and its weights reader, without torch.

The reference outputs and the small .pth files in tests/data were made by
tests/data/make_inception_reference.py under torch + pytorch-fid; the stand-in weights are
regenerated here from their seed (tests/data/inception_fixtures.py).
"""

import json
import os
import pickle
import subprocess
import sys
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from pgen import config as config_lib
from pgen.evaluation import extractors, inception, torch_pickle

DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, DATA)
import inception_fixtures  # noqa: E402

REFERENCE = np.load(os.path.join(DATA, "inception_reference.npz"))


@pytest.fixture(scope="module")
def standin_weights(tmp_path_factory):
  """The stand-in weights as an .npz of the state_dict (95 MB; not committed)."""
  path = str(tmp_path_factory.mktemp("inception") / "standin.npz")
  np.savez(path, **inception_fixtures.random_state_dict(inception.state_dict_shapes()))
  return path


def test_state_dict_layout_is_pytorch_fids():
  torch_shapes = {k: tuple(v) for k, v in json.loads(str(REFERENCE["state_dict_shapes"])).items()}
  counters = [k for k in torch_shapes if k.endswith(".num_batches_tracked")]
  assert len(torch_shapes) == 566  # As many entries as the real weights file has.
  assert {k: v for k, v in torch_shapes.items() if k not in counters} == inception.state_dict_shapes()
  assert torch_shapes["fc.weight"] == (inception.NUM_LOGITS, inception.FEATURE_DIM)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_pth_reader_rebuilds_what_torch_wrote(fmt):
  """Mixed dtypes, an int64 scalar, a view at a storage offset, a transposed view, a
  Parameter and an empty tensor, in torch's zip and legacy formats."""
  state_dict = torch_pickle.read_pth(os.path.join(DATA, f"torch_state_dict_{fmt}.pth"))
  with np.load(os.path.join(DATA, "torch_state_dict_expected.npz")) as expected:
    assert list(state_dict) == expected.files  # Order kept, as torch's OrderedDict has it.
    for name in expected.files:
      value = state_dict[name]
      if name == "dtype.bfloat16":
        assert value.dtype.name == "bfloat16"
        value = value.astype(np.float32)
      assert value.dtype == expected[name].dtype and value.shape == expected[name].shape, name
      np.testing.assert_array_equal(value, expected[name], err_msg=name)
  assert state_dict["bn.num_batches_tracked"] == 7
  np.testing.assert_array_equal(state_dict["view.offset"], [[23, 24, 25, 26, 27],
                                                            [33, 34, 35, 36, 37]])


def test_pth_reader_runs_no_code_from_the_file(tmp_path):
  marker = tmp_path / "ran"

  class Payload:
    def __reduce__(self):
      return os.system, (f"touch {marker}",)

  path = str(tmp_path / "evil.pth")
  legacy_layout = [0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}, {"fc.weight": 0}]
  for position in (0, 3):  # In the magic-number header, and as a state_dict value.
    with open(path, "wb") as f:
      for i, part in enumerate(legacy_layout):
        pickle.dump(Payload() if i == position else part, f)
    with pytest.raises(torch_pickle.RefusedPickleError, match="system.*refusing"):
      torch_pickle.read_pth(path)
  assert not marker.exists()
  with open(path, "wb") as f:
    f.write(b"not a weights file")
  with pytest.raises(ValueError, match="neither a torch.save file nor an .npz"):
    torch_pickle.read_pth(path)


def test_preprocessing_matches_pytorch_fid():
  """Grayscale to RGB, bilinear resize up (32, 64) and down (333x410) as F.interpolate
  (align_corners=False) does, scaling to [-1, 1]; float input in [-1, 1] gives the same."""
  rows, cols = inception_fixtures.probe_pixels()
  images = inception_fixtures.reference_images()
  probes = np.concatenate([np.asarray(inception.preprocess(jnp.asarray(batch)))[:, rows, cols]
                           for batch in images.values()])
  np.testing.assert_allclose(probes, REFERENCE["resized_probes"], atol=1e-5, rtol=0)
  gray = images["gray32"]
  from_uint8 = np.asarray(inception.preprocess(jnp.asarray(gray)))
  from_float = np.asarray(inception.preprocess(jnp.asarray(gray / 127.5 - 1.0, jnp.float32)))
  np.testing.assert_allclose(from_float, from_uint8, atol=1e-5)
  assert from_uint8.shape == (2, 299, 299, 3)
  np.testing.assert_array_equal(from_uint8[..., 0], from_uint8[..., 2])
  with pytest.raises(ValueError, match="1 or 3 channels"):
    inception.preprocess(jnp.zeros((1, 8, 8, 2), jnp.uint8))


def test_features_and_logits_match_pytorch_fid(standin_weights):
  with pytest.warns(UserWarning, match="not the standard FID weights file"):
    extractor = inception.InceptionFeatures(standin_weights, batch_size=2)
  assert extractor.id == f"inception-fid-{extractor.sha256[:12]}" and not extractor.is_standard
  outputs = [extractor(batch) for batch in inception_fixtures.reference_images().values()]
  pool3 = np.concatenate([f for f, _ in outputs])
  logits = np.concatenate([lg for _, lg in outputs])
  assert pool3.shape == (4, 2048) and logits.shape == (4, 1008)
  # The stand-in weights give varied, finite features, so a wrong layer would show.
  assert np.isfinite(REFERENCE["pool3"]).all() and REFERENCE["pool3"].std(axis=0).mean() > 0.1
  np.testing.assert_allclose(pool3, REFERENCE["pool3"], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(logits, REFERENCE["logits"], rtol=1e-4, atol=1e-4)


def test_weights_errors_name_the_key_and_the_file(tmp_path):
  shapes = inception.state_dict_shapes()
  good = {k: np.zeros(v, np.float32) for k, v in shapes.items()}

  def load(state_dict):
    path = str(tmp_path / "weights.npz")
    np.savez(path, **state_dict)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      return inception.InceptionFeatures(path)

  assert load(good).variables["params"]["Mixed_7c"]["branch_pool"]["conv"]["kernel"].shape == (
      1, 1, 2048, 192)
  missing = dict(good)
  del missing["Mixed_6e.branch7x7dbl_5.bn.running_var"]
  with pytest.raises(ValueError, match=r"weights.npz.*1 keys missing.*Mixed_6e.branch7x7dbl_5.bn"
                                       r".running_var.*pt_inception-2015-12-05-6726825d.pth"):
    load(missing)
  with pytest.raises(ValueError, match=r"unexpected keys.*AuxLogits.fc.weight"):
    load({**good, "AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)})
  with pytest.raises(ValueError, match=r"weights.npz: fc.weight has shape \(1000, 2048\), the FID "
                                       r"Inception-v3 has \(1008, 2048\)"):
    load({**good, "fc.weight": np.zeros((1000, 2048), np.float32)})
  with pytest.raises(ValueError, match=r"torch_state_dict_zip.pth is not the FID Inception-v3"):
    inception.InceptionFeatures(os.path.join(DATA, "torch_state_dict_zip.pth"))
  with pytest.raises(FileNotFoundError, match=r"nowhere.pth does not exist.*Download "
                                              r"pt_inception-2015-12-05-6726825d.pth .*6726825d0af5"
                                              r".*https://github.com/mseitzer/pytorch-fid/releases"
                                              r".*--config.eval.inception_weights="):
    inception.InceptionFeatures(str(tmp_path / "nowhere.pth"))


def test_extractor_choice(smoke_config):
  assert extractors.feature_extractor_name(smoke_config) == "classifier"
  smoke_config.eval.feature_extractor = "inception"
  with pytest.raises(FileNotFoundError, match="eval.inception_weights is not set.*Download"):
    extractors.make_extractor(smoke_config)
  smoke_config.eval.feature_extractor = "classifier"
  smoke_config.data.resolution = 64
  with pytest.raises(ValueError, match="fashion_mnist at resolution 32 only.*feature_extractor="
                                       "inception"):
    extractors.feature_extractor_name(smoke_config)
  smoke_config.eval.feature_extractor = "vgg"
  with pytest.raises(ValueError, match="'vgg'.*'classifier', 'catalog', 'inception'"):
    config_lib.resolve(smoke_config)


@pytest.mark.slow
def test_evaluate_command_with_inception_features(smoke_config, standin_weights, feature_cache,
                                                  tmp_path):
  """`python -m pgen evaluate --npz` on Inception pool3: FD, KID and the k-NN metrics from
  Inception, the classifier's class metrics besides (Fashion-MNIST at 32), the extractor
  named in the table and in the reference cache's file name."""
  images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 1), np.uint8)
  npz = str(tmp_path / "samples.npz")
  np.savez(npz, images=images)
  result = subprocess.run(
      [sys.executable, "-m", "pgen", "evaluate", "--npz", npz,
       "--config", os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py"),
       f"--config.data.data_dir={smoke_config.data.data_dir}", "--config.data.download=False",
       "--config.eval.reference_split=test", "--config.eval.num_reference=24",
       "--config.eval.feature_extractor=inception",
       f"--config.eval.inception_weights={standin_weights}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PGEN_CACHE_DIR": feature_cache})
  assert result.returncode == 0, result.stderr[-3000:]
  table = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
  sha = inception.file_sha256(standin_weights)
  assert table["feature_extractor"] == f"inception-fid-{sha[:12]}"
  assert "not the standard FID weights" in table["inception_weights"]
  assert table["reference"] == "fashion_mnist/test (24 images)" and table["num_samples"] == "24"
  for name in ("fd", "kid", "precision", "recall", "density", "coverage", "classifier_score",
               "class_entropy", "ms_ssim"):
    assert np.isfinite(float(table[name])), name
  assert float(table["fd"]) > 0
  cached = [n for n in os.listdir(feature_cache) if n.endswith(f"inception-fid-{sha[:12]}.npz")]
  assert cached == [f"ref_fashion_mnist_test_n24_r32_pad0_inception-fid-{sha[:12]}.npz"]
  with np.load(os.path.join(feature_cache, cached[0])) as reference:
    assert reference["features"].shape == (24, 2048)
