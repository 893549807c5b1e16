r"""The reference point: PyTorch's DCGAN (pytorch/examples; ngf=ndf=64, nz=100) at 32x32
(one channel, pgen's Fashion-MNIST job) or 64x64 (RGB, the examples' own net), on the CPU or
a GPU, eager or `torch.compile`d, float32 or bf16 autocast.

    python -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0 numpy
    /tmp/torch/bin/python bench/pytorch_dcgan.py [--batch 64] [--steps 100]
    python bench/pytorch_dcgan.py --device cuda --size 64 --batch 256 [--compile] [--bf16]

Times one D update plus one G update per step on a synthetic batch already on the device
(compute only, as bench/bench_accelerator.py does), and prints images/s.
"""

import argparse
import time

import torch
from torch import nn


def generator(size, nz=100, ngf=64, nc=1):
  """ConvTranspose stack from 1x1 to `size` (32: three doublings after 4x4; 64: four)."""
  widths = [ngf * 8, ngf * 4, ngf * 2, ngf] if size == 64 else [ngf * 4, ngf * 2, ngf]
  layers = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(True)]
  for w_in, w_out in zip(widths, widths[1:]):
    layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out),
               nn.ReLU(True)]
  return nn.Sequential(*layers, nn.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False),
                       nn.Tanh())


def discriminator(size, ndf=64, nc=1):
  widths = [ndf, ndf * 2, ndf * 4, ndf * 8] if size == 64 else [ndf, ndf * 2, ndf * 4]
  layers = [nn.Conv2d(nc, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
  for w_in, w_out in zip(widths, widths[1:]):
    layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out),
               nn.LeakyReLU(0.2, True)]
  return nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--size", type=int, default=32, choices=(32, 64))
  parser.add_argument("--device", default="cpu")
  parser.add_argument("--compile", action="store_true", help="torch.compile G and D.")
  parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU).")
  args = parser.parse_args()
  torch.manual_seed(0)
  device = torch.device(args.device)
  channels = 3 if args.size == 64 else 1
  g = generator(args.size, nc=channels).to(device)
  d = discriminator(args.size, nc=channels).to(device)
  if args.compile:
    g, d = torch.compile(g), torch.compile(d)
  g_opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
  loss = nn.BCEWithLogitsLoss()
  real = torch.rand(args.batch, channels, args.size, args.size, device=device) * 2 - 1
  ones = torch.ones(args.batch, device=device)
  zeros = torch.zeros(args.batch, device=device)
  autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

  def step():
    with autocast:
      fake = g(torch.randn(args.batch, 100, 1, 1, device=device))
      d_loss = loss(d(real).view(-1).float(), ones) + loss(d(fake.detach()).view(-1).float(),
                                                           zeros)
    d.zero_grad()
    d_loss.backward()
    d_opt.step()
    with autocast:
      g_loss = loss(d(fake).view(-1).float(), ones)
    g.zero_grad()
    g_loss.backward()
    g_opt.step()

  def synchronize():
    if device.type == "cuda":
      torch.cuda.synchronize()

  for _ in range(args.warmup):
    step()
  synchronize()
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  synchronize()
  elapsed = time.perf_counter() - start
  name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
      f"CPU, {torch.get_num_threads()} threads")
  mode = ("torch.compile" if args.compile else "eager") + (", bf16 autocast" if args.bf16 else
                                                           ", float32")
  print(f"PyTorch {torch.__version__} DCGAN-{args.size}, {name}, {mode}, batch {args.batch}: "
        f"{args.steps * args.batch / elapsed:.0f} images/s", flush=True)


if __name__ == "__main__":
  main()
