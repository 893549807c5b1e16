r"""StyleGAN2's style-mixing grid (Karras et al. 2019, figure 3): rows give the coarse
styles, columns the fine ones.

    python -m pgen generate --workdir runs/sg2 --style_mixing 4x6 --out mixing.png \
        [--mix_cutoff K] [--truncation 0.7] [--seed 0] [--class Bag]

The top row holds the column latents' own images and the left column the row latents';
cell (r, c) takes the first K ws (the coarse layers: silhouette, pose) from row r's latent
and the rest (the fine layers: colour, texture) from column c's. Row latents come from
seeds `seed`, `seed + 1`, ..., column latents from the seeds after them; K defaults to half
the ws. A conditional generator draws every image of the grid in one class (`--class`,
default the first).
"""

import numpy as np

from pgen.core import pixels
from pgen.errors import ArgumentError
from pgen.generation import generators


def parse_grid(spec: str) -> tuple[int, int]:
  """"4x6" -> (4, 6)."""
  try:
    rows, cols = (int(n) for n in spec.lower().split("x"))
  except ValueError:
    rows = cols = 0
  if rows < 1 or cols < 1:
    raise ArgumentError(f"style_mixing={spec} must be ROWSxCOLUMNS, e.g. 4x6.",
                        argument="style_mixing")
  return rows, cols


def mixing_grid(generator: generators.TrainedGenerator, rows: int, cols: int, *,
                seed: int = 0, cutoff: int | None = None, label: int | None = None):
  """(rows + 1, cols + 1) tiles as uint8 (N, H, W, C), in row order, the corner blank."""
  if generator.mix_styles is None:
    raise ArgumentError(
        f"style_mixing needs the workdir of a StyleGAN2 run (model.name='stylegan2'); "
        f"{generator.source} is {'an export' if generator.config is None else 'not one'} "
        "(an export holds the generator as one function of z).", argument="style_mixing")
  num_ws = generator.num_ws
  cutoff = num_ws // 2 if cutoff is None else cutoff
  if not 0 <= cutoff <= num_ws:
    raise ArgumentError(f"mix_cutoff={cutoff} must be in [0, {num_ws}] (the generator "
                        f"takes {num_ws} ws).", argument="mix_cutoff")
  z = generators.latents_for_seeds(generator, range(seed, seed + rows + cols))
  z_rows, z_cols = z[:rows], z[rows:]
  labels = (np.full((max(rows, cols),), label or 0, np.int32) if generator.conditional
            else None)
  row_images = generator.render(z_rows, None if labels is None else labels[:rows])
  col_images = generator.render(z_cols, None if labels is None else labels[:cols])
  tiles = [np.full_like(col_images[0], 255), *col_images]
  for r in range(rows):
    coarse = np.repeat(np.asarray(z_rows[r:r + 1]), cols, axis=0)
    mixed = generator.mix_styles(coarse, z_cols, None if labels is None else labels[:cols],
                                 cutoff)
    tiles += [row_images[r], *mixed]
  return np.stack(tiles)


def write_style_mixing(generator: generators.TrainedGenerator, out: str, spec: str, *,
                       seed: int = 0, cutoff: int | None = None,
                       label: int | None = None) -> str:
  """Writes the grid of `spec` ("ROWSxCOLS") to the PNG `out`; returns it."""
  if not out.endswith(".png"):
    raise ArgumentError(f"out={out} must end in .png for a style-mixing grid.",
                        argument="out")
  rows, cols = parse_grid(spec)
  tiles = mixing_grid(generator, rows, cols, seed=seed, cutoff=cutoff, label=label)
  pixels.save_png(pixels.image_grid(tiles, columns=cols + 1), out)
  return out
