r"""One-off: the reference outputs that tests/unit/evaluation/test_inception.py checks pgen's Inception against.

Runs pytorch-fid itself, in a separate virtual environment (pgen does not depend on torch):

    python3 -m venv /tmp/fidref && /tmp/fidref/bin/pip install torch torchvision pytorch-fid
    /tmp/fidref/bin/python tests/data/make_inception_reference.py [--full_pth_dir /tmp]

Writes, next to this file:
  inception_reference.npz    pytorch-fid's pool3 features and fc logits of the fixture
                             images under the stand-in weights of inception_fixtures.py,
                             resized inputs at probe pixels, and the state_dict keys/shapes;
  torch_state_dict_zip.pth   a small state_dict of mixed dtypes, views and a Parameter, in
  torch_state_dict_legacy.pth  torch's zip format and in its legacy (pre-1.6) format, which
  torch_state_dict_expected.npz  the 2019 FID weights file may use; and their values.
--full_pth_dir also writes the whole stand-in state_dict (95 MB) in both formats, to check
the reader on a file of the real size by hand; those are not committed.
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import pytorch_fid
import torch
import torch.nn.functional as F
import torchvision
from pytorch_fid import inception as fid_inception

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inception_fixtures  # noqa: E402


def fid_model(state_dict):
  """pytorch-fid's InceptionV3(pool3) with `state_dict` in place of the downloaded weights."""
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state_dict
  model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
  return model.eval()


def architecture_shapes():
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: None
  original = torch.nn.Module.load_state_dict
  torch.nn.Module.load_state_dict = lambda self, state_dict, *a, **k: None
  try:
    net = fid_inception.fid_inception_v3()
  finally:
    torch.nn.Module.load_state_dict = original
  return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def small_state_dict():
  """Mixed dtypes, an int64 scalar, views with offsets and strides, a Parameter, an empty
  tensor: what the reader must rebuild exactly."""
  conv = torchvision.models.inception.BasicConv2d(3, 4, kernel_size=3)
  torch.manual_seed(0)
  with torch.no_grad():
    for p in conv.parameters():
      p.copy_(torch.randn_like(p))
    conv.bn.running_mean.copy_(torch.randn(4))
    conv.bn.num_batches_tracked.fill_(7)
  state_dict = conv.state_dict()  # OrderedDict with _metadata, as in the real file.
  base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
  state_dict["view.offset"] = base[2:4, 3:8]  # Shares base's storage at an offset.
  state_dict["view.transposed"] = base.t()
  state_dict["dtype.float64"] = torch.linspace(-1, 1, 7, dtype=torch.float64)
  state_dict["dtype.float16"] = torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16)
  state_dict["dtype.bfloat16"] = torch.tensor([1.5, -3.0, 256.0], dtype=torch.bfloat16)
  state_dict["dtype.int32"] = torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32)
  state_dict["dtype.uint8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
  state_dict["dtype.bool"] = torch.tensor([True, False, True])
  state_dict["empty"] = torch.zeros(0, 3)
  state_dict["parameter"] = torch.nn.Parameter(torch.ones(2, 2) * 3)
  return state_dict


def save_both_formats(state_dict, stem):
  torch.save(state_dict, stem + "_zip.pth")
  torch.save(state_dict, stem + "_legacy.pth", _use_new_zipfile_serialization=False)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--full_pth_dir", default=None)
  args = parser.parse_args()
  torch.set_num_threads(2)

  shapes = architecture_shapes()
  arrays = inception_fixtures.random_state_dict(shapes)
  state_dict = collections.OrderedDict((k, torch.from_numpy(arrays[k])) for k in shapes)
  model = fid_model(state_dict)
  rows, cols = inception_fixtures.probe_pixels()
  pool3, logits, probes = [], [], []
  with torch.no_grad():
    for name, images in inception_fixtures.reference_images().items():
      x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255  # As ToTensor() does.
      x = x.expand(-1, 3, -1, -1)  # As PIL's convert("RGB") does for grayscale.
      features = model(x)[0].flatten(1)
      pool3.append(features.numpy())
      logits.append(F.linear(features, state_dict["fc.weight"], state_dict["fc.bias"]).numpy())
      resized = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
      probes.append(resized.permute(0, 2, 3, 1)[:, rows, cols].numpy())
      print(f"{name}: pool3 mean {features.mean():.4f} std {features.std():.4f} "
            f"zero fraction {(features == 0).float().mean():.3f}")
  versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
              "pytorch_fid": pytorch_fid.__version__, "numpy": np.__version__}
  np.savez_compressed(os.path.join(HERE, "inception_reference.npz"),
                      pool3=np.concatenate(pool3), logits=np.concatenate(logits),
                      resized_probes=np.concatenate(probes),
                      state_dict_shapes=json.dumps({k: list(v) for k, v in shapes.items()}),
                      versions=json.dumps(versions))
  print(f"{len(shapes)} state_dict entries; versions {versions}")

  small = small_state_dict()
  save_both_formats(small, os.path.join(HERE, "torch_state_dict"))
  expected = {k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).numpy()
              for k, v in small.items()}
  np.savez(os.path.join(HERE, "torch_state_dict_expected.npz"), **expected)

  if args.full_pth_dir:
    save_both_formats(state_dict, os.path.join(args.full_pth_dir, "fid_inception_standin"))
    np.savez(os.path.join(args.full_pth_dir, "fid_inception_standin.npz"), **arrays)


if __name__ == "__main__":
  main()
