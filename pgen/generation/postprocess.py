"""Post-processing of generated product images for display, with Pillow's own operations
(off unless asked for).

    steps = parse("autocontrast,sharpen,upscale=4")
    image = apply(steps, pil_image)        # in the order given
    describe(steps)                        # "autocontrast,sharpen,upscale=4" for manifests

| step | what it does (Pillow) |
|---|---|
| autocontrast | stretch the grey levels to the full range (ImageOps.autocontrast, 1% cutoff) |
| equalize | equalize the histogram (ImageOps.equalize) |
| color=F | scale the saturation by F (ImageEnhance.Color) |
| contrast=F | scale the contrast by F (ImageEnhance.Contrast) |
| sharpen | unsharp mask, radius 2, 80%, threshold 2 (ImageFilter.UnsharpMask) |
| upscale=N | enlarge N times with Lanczos resampling (Image.resize) |
"""

from typing import Callable

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from pgen.errors import ArgumentError


def _factor(name: str, value: str | None) -> float:
  try:
    factor = float(value)
  except (TypeError, ValueError):
    raise ArgumentError(f"postprocess {name}={value}: give a number, e.g. {name}=1.2.",
                        argument="postprocess") from None
  if factor <= 0:
    raise ArgumentError(f"postprocess {name}={value} must be positive.", argument="postprocess")
  return factor


def _upscale(value):
  times = int(_factor("upscale", value))
  return lambda image: image.resize((image.width * times, image.height * times),
                                    Image.Resampling.LANCZOS)


_STEPS: dict[str, Callable] = {
    "autocontrast": lambda value: lambda image: ImageOps.autocontrast(image, cutoff=1),
    "equalize": lambda value: ImageOps.equalize,
    "color": lambda value: lambda image: ImageEnhance.Color(image).enhance(_factor("color", value)),
    "contrast": lambda value: lambda image: ImageEnhance.Contrast(image).enhance(
        _factor("contrast", value)),
    "sharpen": lambda value: lambda image: image.filter(
        ImageFilter.UnsharpMask(radius=2, percent=80, threshold=2)),
    "upscale": _upscale,
}
_TAKES_VALUE = ("color", "contrast", "upscale")


def parse(spec: str | None) -> list[tuple[str, str | None, Callable]]:
  """[(name, value, operation)] for a comma-separated `spec` such as
  "autocontrast,sharpen,upscale=4"; [] for None or ""."""
  steps = []
  for item in filter(None, (spec or "").split(",")):
    name, _, value = item.strip().partition("=")
    if name not in _STEPS:
      raise ArgumentError(f"postprocess step {name!r} is unknown; choose from "
                          f"{sorted(_STEPS)} (e.g. autocontrast,sharpen,upscale=4).",
                          argument="postprocess")
    if (name in _TAKES_VALUE) != bool(value):
      raise ArgumentError(f"postprocess {item}: " + (f"{name} takes a value, e.g. {name}=2"
                          if name in _TAKES_VALUE else f"{name} takes no value"),
                          argument="postprocess")
    steps.append((name, value or None, _STEPS[name](value)))
  return steps


def describe(steps) -> str:
  return ",".join(name if value is None else f"{name}={value}" for name, value, _ in steps)


def apply(steps, image: Image.Image) -> Image.Image:
  for _, _, operation in steps:
    image = operation(image)
  return image
