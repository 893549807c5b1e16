r"""Makes an RGB product catalog from the real Fashion-MNIST files, as a shop would export
it: a folder of photos of mixed sizes and formats (garments tinted in several colours on
white, with margins, mostly portrait frames) and a `file,label,colour` CSV.

    python bench/make_rgb_catalog.py --out photos --per_combination 200
    python -m pgen prepare --src photos --labels photos/labels.csv --name rgb_catalog \
        --out ~/pgen_data

Each photo is one Fashion-MNIST image (the training split, in file order, of the chosen
categories): its ink becomes the colour's dye, shaded by the garment's own grey levels,
on a white background, enlarged 2-4x with a margin of 5-25% on each side, saved as JPEG,
PNG or WebP. Everything follows from --seed: the same arguments give the same files.
"""

import argparse
import csv
import gzip
import os

import numpy as np
from PIL import Image

IDX_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
# The shop's words for the categories used by default, one of each kind of product.
DEFAULT_CATEGORIES = {"T-shirt/top": "tshirt", "Trouser": "trouser", "Dress": "dress",
                      "Sneaker": "sneaker", "Bag": "bag"}
COLOURS = {"red": (200, 30, 35), "green": (40, 150, 60), "blue": (35, 70, 190),
           "yellow": (235, 190, 30), "black": (30, 30, 30), "purple": (120, 50, 150)}
DEFAULT_COLOURS = ("red", "green", "blue", "yellow")
FORMATS = (("jpg", {"quality": 92}), ("png", {}), ("webp", {"quality": 90}))
CSV_NAME = "labels.csv"


def read_idx(path: str) -> np.ndarray:
  """The array in an IDX file (gzipped or not)."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  dims = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
  return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _idx_path(idx_dir: str, name: str) -> str:
  for candidate in (name, name + ".gz"):
    if os.path.isfile(os.path.join(idx_dir, candidate)):
      return os.path.join(idx_dir, candidate)
  raise SystemExit(f"{idx_dir} has no {name}(.gz): run `apt-get install "
                   "dataset-fashion-mnist` or pass --idx_dir.")


def tinted(garment: np.ndarray, colour) -> np.ndarray:
  """A (28, 28) grey garment (0 = background) as an RGB one dyed `colour` on white: the ink
  is the dye's opacity, and its grey level the light on the fabric."""
  ink = garment.astype(np.float32)[..., None] / 255.0
  shade = 0.55 + 0.45 * ink  # Darker folds, lighter highlights, the colour kept.
  dye = np.asarray(colour, np.float32) * shade
  return np.clip(255.0 * (1.0 - ink) + dye * ink, 0, 255).round().astype(np.uint8)


def photo(garment: np.ndarray, colour, rng: np.random.Generator) -> Image.Image:
  """The tinted garment enlarged 2-4x with white margins, in a frame usually taller than
  wide."""
  scale = int(rng.integers(2, 5))
  image = Image.fromarray(tinted(garment, colour)).resize((28 * scale, 28 * scale),
                                                          Image.BICUBIC)
  side = 28 * scale
  left, right = (int(side * f) for f in rng.uniform(0.05, 0.25, 2))
  top, bottom = (int(side * f) for f in rng.uniform(0.05, 0.25, 2))
  if rng.random() < 0.7:  # Portrait: more room above and below.
    extra = int(side * rng.uniform(0.1, 0.4))
    top, bottom = top + extra // 2, bottom + extra - extra // 2
  canvas = Image.new("RGB", (left + side + right, top + side + bottom), (255, 255, 255))
  canvas.paste(image, (left, top))
  return canvas


def make_catalog(out: str, per_combination: int, *, categories=None, colours=DEFAULT_COLOURS,
                 seed: int = 0, idx_dir: str = IDX_DIR) -> dict:
  """Writes per_combination photos of every (category, colour) under `out` and `out`/
  labels.csv; returns {(category, colour): count}. `categories`: {Fashion-MNIST class name:
  the catalog's name} (DEFAULT_CATEGORIES if None)."""
  categories = dict(DEFAULT_CATEGORIES if categories is None else categories)
  unknown = sorted(set(categories) - set(CLASS_NAMES)) + sorted(set(colours) - set(COLOURS))
  if unknown:
    raise SystemExit(f"Unknown categories or colours {unknown}; the categories are "
                     f"{list(CLASS_NAMES)} and the colours {list(COLOURS)}.")
  garments = read_idx(_idx_path(idx_dir, "train-images-idx3-ubyte"))
  classes = read_idx(_idx_path(idx_dir, "train-labels-idx1-ubyte"))
  rng = np.random.default_rng(seed)
  rows, counts = [], {}
  for class_name, category in categories.items():
    # Each colour takes its own garments: no garment appears in two colours.
    members = np.flatnonzero(classes == CLASS_NAMES.index(class_name))
    needed = per_combination * len(colours)
    if len(members) < needed:
      raise SystemExit(f"{class_name} has {len(members)} images; {needed} are needed.")
    for c, colour in enumerate(colours):
      folder = os.path.join(out, category)
      os.makedirs(folder, exist_ok=True)
      for i, index in enumerate(members[c * per_combination:(c + 1) * per_combination]):
        extension, options = FORMATS[int(rng.integers(len(FORMATS)))]
        name = f"{category}/{colour}_{i:05d}.{extension}"
        photo(garments[index], COLOURS[colour], rng).save(os.path.join(out, name), **options)
        rows.append({"file": name, "label": category, "colour": colour})
      counts[(category, colour)] = per_combination
  with open(os.path.join(out, CSV_NAME), "w", newline="") as f:
    writer = csv.DictWriter(f, ("file", "label", "colour"))
    writer.writeheader()
    writer.writerows(rows)
  return counts


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="Folder for the photos and labels.csv.")
  parser.add_argument("--per_combination", type=int, default=200,
                      help="Photos of each category in each colour.")
  parser.add_argument("--colours", nargs="+", default=list(DEFAULT_COLOURS),
                      help=f"Of {', '.join(COLOURS)}.")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--idx_dir", default=IDX_DIR, help="The Fashion-MNIST IDX files.")
  args = parser.parse_args()
  counts = make_catalog(args.out, args.per_combination, colours=tuple(args.colours),
                        seed=args.seed, idx_dir=args.idx_dir)
  print(f"Wrote {sum(counts.values())} photos of {len(DEFAULT_CATEGORIES)} categories x "
        f"{len(args.colours)} colours to {args.out}, labels in "
        f"{os.path.join(args.out, CSV_NAME)}.")


if __name__ == "__main__":
  main()
