r"""The reference point: PyTorch's DCGAN (pytorch/examples, 32x32, ngf=ndf=64, nz=100) on CPU.

    python -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0 numpy
    /tmp/torch/bin/python bench/pytorch_dcgan.py [--batch 64] [--steps 100]

Times one D update plus one G update per step on a synthetic batch (compute only, as the
pgen variant table does), and prints images/s.
"""

import argparse
import time

import torch
from torch import nn


def generator(nz=100, ngf=64, nc=1):
  return nn.Sequential(
      nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
      nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2),
      nn.ReLU(True),
      nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
      nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(ndf=64, nc=1):
  return nn.Sequential(
      nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2),
      nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4),
      nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--warmup", type=int, default=10)
  args = parser.parse_args()
  torch.manual_seed(0)
  g, d = generator(), discriminator()
  g_opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
  loss = nn.BCEWithLogitsLoss()
  real = torch.rand(args.batch, 1, 32, 32) * 2 - 1
  ones, zeros = torch.ones(args.batch), torch.zeros(args.batch)

  def step():
    fake = g(torch.randn(args.batch, 100, 1, 1))
    d.zero_grad()
    d_loss = loss(d(real).view(-1), ones) + loss(d(fake.detach()).view(-1), zeros)
    d_loss.backward()
    d_opt.step()
    g.zero_grad()
    loss(d(fake).view(-1), ones).backward()
    g_opt.step()

  for _ in range(args.warmup):
    step()
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  elapsed = time.perf_counter() - start
  print(f"PyTorch {torch.__version__} DCGAN, {torch.get_num_threads()} threads, batch "
        f"{args.batch}: {args.steps * args.batch / elapsed:.0f} images/s")


if __name__ == "__main__":
  main()
