"""Reading and cleaning one catalog photo for `python -m pgen prepare` (PIL and NumPy only).

    options = CleanOptions(trim=True, min_size=32, max_size=1024)
    result = clean_image("/photos/shoes/a.jpg", options, encode=True)
    result.problem      # None, or why the file is skipped ("corrupt", "too_small", ...)
    result.encoded      # PNG (or JPEG) bytes of the cleaned RGB image

Cleaning is deterministic, so `prepare` can analyse every file once (hashes, sizes) and
decode the kept ones again when it writes them, instead of holding all pixels in memory.
"""

import dataclasses
import hashlib
import io
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
ENCODINGS = ("png", "jpeg")
# Side of the grey image the perceptual hash is computed from, and of its DCT corner kept.
_PHASH_SIDE, _PHASH_BITS_SIDE = 32, 8


@dataclasses.dataclass(frozen=True)
class CleanOptions:
  trim: bool = True  # Crop uniform borders (product whitespace) of any colour.
  trim_tolerance: int = 24  # Largest channel difference from the border colour that is border
  # (JPEG noise near edges reaches about 20 at quality 70).
  # Shorter side of the photo as given (before trimming) below this: skipped as too small.
  # A thin product (trousers, a belt) on a large photo is kept however narrow it is.
  min_size: int = 32
  max_size: int = 1024  # Longer side above this is shrunk to it (Lanczos); 0 keeps every size.
  encoding: str = "png"  # How cleaned images are stored: "png" (lossless) or "jpeg" (q=95).

  def __post_init__(self):
    if self.encoding not in ENCODINGS:
      raise ValueError(f"encoding={self.encoding!r} is unknown; choose one of {ENCODINGS}.")
    if self.min_size < 1 or self.max_size < 0 or (self.max_size and self.max_size < self.min_size):
      raise ValueError(f"min_size={self.min_size} and max_size={self.max_size} must satisfy "
                       "1 <= min_size <= max_size (max_size=0: no cap).")


@dataclasses.dataclass
class CleanResult:
  """What happened to one file. `problem` is None for an image that is kept."""
  problem: str | None = None  # "unreadable", "corrupt", "too_small", "blank", "too_large"
  reason: str = ""  # A sentence for the report.
  source_format: str = ""  # PIL's format ("JPEG", "PNG", "WEBP", ...).
  source_mode: str = ""  # PIL's mode before conversion ("RGB", "L", "RGBA", "CMYK", ...).
  conversion: str = ""  # How it became RGB, empty when it already was.
  original_size: tuple = (0, 0)  # (width, height) as decoded (EXIF rotation applied).
  stored_size: tuple = (0, 0)  # (width, height) after trimming and the max_size cap.
  trimmed: bool = False
  downscaled: bool = False
  file_sha256: str = ""  # Of the file's bytes (the manifest's record of the source).
  pixel_sha256: str = ""  # Of the stored pixels: equal for exact copies in any file format.
  phash: int = 0  # 64-bit DCT perceptual hash of the grey image.
  thumbnail: bytes = b""  # 4x4 RGB means: tells colour variants of one shape apart.
  encoded: bytes = b""  # Only with encode=True.


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str]:
  """RGB version of any PIL mode; transparency is composited on white."""
  mode = image.mode
  has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
  if has_alpha:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    composited = Image.alpha_composite(white, rgba).convert("RGB")
    return composited, f"{mode} with alpha composited on white"
  if mode == "RGB":
    return image, ""
  if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
    values = np.asarray(image, np.float64)
    top = 255.0 if values.max() <= 255 else 65535.0
    if mode == "F" and values.max() <= 1.0:
      top = 1.0
    grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB"), f"{mode} (high bit depth) scaled to 8-bit RGB"
  described = {"L": "grayscale", "1": "black-and-white", "P": "palette", "CMYK": "CMYK"}
  return image.convert("RGB"), f"{described.get(mode, mode)} converted to RGB"


def _content_box(pixels: np.ndarray, tolerance: int):
  """(left, top, right, bottom) of what differs from a uniform border, or None when the
  corners disagree (no uniform border); an empty box () when the image is one colour."""
  corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int16)
  if (corners.max(axis=0) - corners.min(axis=0)).max() > tolerance:
    return None
  background = np.median(corners, axis=0).astype(np.int16)
  content = (np.abs(pixels.astype(np.int16) - background) > tolerance).any(axis=-1)
  rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
  if rows.size == 0:
    return ()
  return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def perceptual_hash(image: Image.Image) -> int:
  """pHash: signs of the low-frequency DCT of a 32x32 grey version against their median.
  Re-encoding, mild resizing and JPEG artefacts change a few of the 64 bits at most."""
  grey = np.asarray(image.convert("L").resize((_PHASH_SIDE, _PHASH_SIDE), Image.LANCZOS),
                    np.float64)
  n = np.arange(_PHASH_SIDE)
  dct = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * _PHASH_SIDE))
  low = (dct @ grey @ dct.T)[:_PHASH_BITS_SIDE, :_PHASH_BITS_SIDE].ravel()
  bits = low > np.median(low)
  return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def _thumbnail(image: Image.Image) -> bytes:
  return np.asarray(image.resize((4, 4), Image.BOX), np.uint8).tobytes()


def thumbnail_distance(a: bytes, b: bytes) -> float:
  """Mean absolute difference (0..255) of two 4x4 RGB thumbnails."""
  return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16)
                      - np.frombuffer(b, np.uint8).astype(np.int16)).mean())


def _open(path: str, result: CleanResult) -> Image.Image | None:
  """Decodes the whole file, or records why it cannot be and returns None."""
  try:
    if not stat.S_ISREG(os.stat(path).st_mode):  # A FIFO would block the read forever.
      result.problem, result.reason = "not_a_file", "not a regular file (a pipe or device)"
      return None
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    result.problem, result.reason = "unreadable", f"cannot be read ({e.strerror or e})"
    return None
  result.file_sha256 = hashlib.sha256(data).hexdigest()
  if not data:
    result.problem, result.reason = "corrupt", "empty file (0 bytes)"
    return None
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data))
      result.source_format, result.source_mode = image.format or "", image.mode
      image.load()  # Truncated or damaged pixel data fails here, not at open().
      image = ImageOps.exif_transpose(image)
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    result.problem, result.reason = "too_large", f"too many pixels to decode safely ({e})"
    return None
  except UnidentifiedImageError:
    result.problem = "corrupt"
    result.reason = "not a readable image (unknown format or damaged header)"
    return None
  except (OSError, SyntaxError, ValueError, EOFError) as e:  # PIL's decoders raise all of these.
    result.problem, result.reason = "corrupt", f"damaged image data ({e})"
    return None
  return image


def clean_image(path: str, options: CleanOptions, *, encode: bool = False) -> CleanResult:
  """Decodes `path` to RGB, trims, caps its size, and hashes it; never raises for a bad file."""
  result = CleanResult()
  image = _open(path, result)
  if image is None:
    return result
  image, result.conversion = _to_rgb(image)
  result.original_size = image.size
  pixels = np.asarray(image)
  box = _content_box(pixels, options.trim_tolerance)
  if box == ():
    result.problem, result.reason = "blank", "blank: the whole image is one colour"
    return result
  if min(image.size) < options.min_size:
    result.problem = "too_small"
    result.reason = (f"too small: the photo is {image.size[0]}x{image.size[1]} px, shorter "
                     f"side under --min_size={options.min_size}")
    return result
  if options.trim and box is not None and box != (0, 0, *image.size):
    image, result.trimmed = image.crop(box), True
  width, height = image.size
  if options.max_size and max(width, height) > options.max_size:
    scale = options.max_size / max(width, height)
    image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                         Image.LANCZOS)
    result.downscaled = True
  result.stored_size = image.size
  stored = np.asarray(image)
  result.pixel_sha256 = hashlib.sha256(
      np.asarray(stored.shape, np.int64).tobytes() + stored.tobytes()).hexdigest()
  result.phash = perceptual_hash(image)
  result.thumbnail = _thumbnail(image)
  if encode:
    buffer = io.BytesIO()
    if options.encoding == "png":
      image.save(buffer, format="PNG")
    else:
      image.save(buffer, format="JPEG", quality=95)
    result.encoded = buffer.getvalue()
  return result
