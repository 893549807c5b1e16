"""Tiny generated product catalogs for tests: drawn shapes on white, saved as real files."""

import io
import os

import numpy as np
from PIL import Image, ImageDraw


def product(seed: int, size=(64, 80), colour=None, margin: int = 12, background=(255, 255, 255)):
  """An RGB image of `size` (width, height): a few random shapes inside a uniform margin."""
  rng = np.random.default_rng(seed)
  width, height = size
  image = Image.new("RGB", size, background)
  draw = ImageDraw.Draw(image)
  for _ in range(4):
    x0, y0 = rng.integers(margin, width // 2), rng.integers(margin, height // 2)
    x1 = rng.integers(x0 + 4, width - margin)
    y1 = rng.integers(y0 + 4, height - margin)
    fill = colour or tuple(int(v) for v in rng.integers(0, 200, 3))
    (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
  # The content touches the margin on every side, so trimming finds exactly this box.
  draw.rectangle((margin, margin, width - margin - 1, margin), fill=(20, 20, 20))
  draw.rectangle((margin, height - margin - 1, width - margin - 1, height - margin - 1),
                 fill=(20, 20, 20))
  draw.rectangle((margin, margin, margin, height - margin - 1), fill=(20, 20, 20))
  draw.rectangle((width - margin - 1, margin, width - margin - 1, height - margin - 1),
                 fill=(20, 20, 20))
  return image


def save(image: Image.Image, path: str, **kwargs) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, **kwargs)
  return path


def make_messy_catalog(root: str) -> dict:
  """A folder with every problem `prepare` must report; returns what the report should say."""
  shoes, bags = os.path.join(root, "shoes"), os.path.join(root, "bags")
  save(product(1), f"{shoes}/a.jpg", quality=95)
  save(product(2), f"{shoes}/b.png")
  save(product(3), f"{shoes}/c.webp", lossless=True)
  save(product(4).convert("L"), f"{shoes}/d_gray.png")
  rgba = Image.new("RGBA", (64, 80), (0, 0, 0, 0))  # Transparent: becomes white.
  rgba.paste(product(5).crop((12, 12, 52, 68)), (12, 12))
  save(rgba, f"{shoes}/e_rgba.png")
  save(product(6).convert("CMYK"), f"{shoes}/f_cmyk.jpg", quality=95)
  with open(f"{shoes}/a.jpg", "rb") as f:
    original = f.read()
  with open(f"{shoes}/g_copy.jpg", "wb") as f:
    f.write(original)
  near = Image.open(io.BytesIO(original)).resize((61, 76), Image.LANCZOS)
  save(near, f"{shoes}/h_near.jpg", quality=70)
  save(product(1, colour=(30, 160, 40)), f"{shoes}/i_green_variant.jpg", quality=95)
  save(product(7, size=(12, 10), margin=0), f"{shoes}/j_tiny.png")
  with open(f"{shoes}/k_truncated.jpg", "wb") as f:
    f.write(original[:len(original) // 2])
  with open(f"{shoes}/l_garbage.png", "wb") as f:
    f.write(np.random.default_rng(0).bytes(500))
  open(f"{shoes}/m_empty.webp", "wb").close()
  save(Image.new("RGB", (50, 50), (255, 255, 255)), f"{shoes}/n_blank.png")
  for i in range(5):  # Landscape products in a second class.
    save(product(100 + i, size=(112, 64)), f"{bags}/bag_{i}.jpg", quality=95)
  with open(os.path.join(root, "notes.txt"), "w") as f:
    f.write("not an image")
  save(product(200), os.path.join(root, "loose.png"))
  return {
      "kept": {"shoes": 7, "bags": 5},  # a b c d e f i; bags 0-4
      "skipped": {"shoes/j_tiny.png": "too_small", "shoes/k_truncated.jpg": "corrupt",
                  "shoes/l_garbage.png": "corrupt", "shoes/m_empty.webp": "corrupt",
                  "shoes/n_blank.png": "blank", "loose.png": "no_class"},
      "duplicates": {"shoes/g_copy.jpg": ("shoes/a.jpg", "exact"),
                     "shoes/h_near.jpg": ("shoes/a.jpg", "near")},
      "converted": {"shoes/d_gray.png": "grayscale", "shoes/e_rgba.png": "alpha composited",
                    "shoes/f_cmyk.jpg": "CMYK"},
      "not_images": ["notes.txt"],
  }


def make_catalog(root: str, sizes=((64, 80), (80, 64), (56, 56), (104, 72)), per_class: int = 12,
                 classes=("bags", "shoes", "tops")) -> int:
  """A clean catalog of `per_class` images in each class with mixed sizes; returns the count."""
  seed = 0
  for name in classes:
    for i in range(per_class):
      size = sizes[seed % len(sizes)]
      ext = ("jpg", "png", "webp")[seed % 3]
      kwargs = {"quality": 95} if ext == "jpg" else {}
      save(product(1000 + seed, size=size), os.path.join(root, name, f"{i:03d}.{ext}"), **kwargs)
      seed += 1
  return seed
