"""How results of several runs are put side by side: seeds pooled to mean ± std (min-max),
values formatted, Markdown tables, a metric over time with one line per setting. Shared by
`python -m pgen compare` and bench/quality.py, so both read the same.

    pool([6.0, 5.0, 7.0]).format(2)                  # "6.00 ± 1.00 (5.00-7.00)"
    format_value(None)                               # "—"
    markdown_table(["recipe", "FD"], [["dcgan", "5.72"]])   # ["| recipe | FD |", ...]
    plot_curves("fd.png", [("training step", [Curve("lr 2e-4", steps, fds)])], "FD")
"""

import dataclasses
import statistics
from collections.abc import Sequence

from pgen.errors import PgenError

MISSING = "—"


class MatplotlibMissingError(PgenError, ImportError):
  """A plot was asked for and matplotlib is not installed (it is no dependency of training)."""


@dataclasses.dataclass(frozen=True)
class Spread:
  """Values of one setting over its seeds."""
  mean: float
  std: float  # Sample standard deviation (n - 1): the seeds are a sample of all seeds.
  min: float
  max: float
  n: int

  def format(self, digits: int = 2) -> str:
    """`mean ± std (min-max)`; a single seed has no spread to show, only its value."""
    if self.n == 1:
      return f"{self.mean:.{digits}f}"
    return (f"{self.mean:.{digits}f} ± {self.std:.{digits}f} "
            f"({self.min:.{digits}f}-{self.max:.{digits}f})")


def pool(values: Sequence[float]) -> Spread:
  """The spread of one setting's values, one per seed."""
  values = [float(v) for v in values]
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return Spread(statistics.fmean(values), std, min(values), max(values), len(values))


def format_value(value: float | None, digits: int = 2) -> str:
  """A number as tables show it; a value a run does not have is a dash, not a blank."""
  return MISSING if value is None else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  """The lines of a Markdown table of formatted cells."""
  return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
          *("| " + " | ".join(row) + " |" for row in rows)]


@dataclasses.dataclass(frozen=True)
class Curve:
  """One line of a plot; `runs` are (x, y) of the runs it is the mean of, drawn thin."""
  label: str
  x: Sequence[float]
  y: Sequence[float]
  runs: tuple = ()


def _pyplot():
  try:
    import matplotlib  # noqa: PLC0415  Only plots need it.
  except ImportError:
    raise MatplotlibMissingError(
        "plotting needs matplotlib, which is not installed: pip install matplotlib "
        "(into pgen's environment, e.g. .venv/bin/pip install matplotlib).") from None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  return plt


def plot_curves(path: str, panels: Sequence[tuple[str, Sequence[Curve]]], ylabel: str, *,
                log_y: bool = False, colour_map: str = "tab10",
                legend_below: bool = False) -> None:
  """Draws panels side by side (each an x label and its curves) into the image `path`.
  Curve i has the same colour in every panel, and the legend (the first panel's labels)
  stands beside the panels, or below them for long labels (`legend_below`), where it hides
  no line. tab10's colours are the most distinct; tab20's (in light and dark pairs) are for
  more lines than that."""
  plt = _pyplot()
  colours = plt.get_cmap(colour_map)
  figure, axes_row = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5),
                                  squeeze=False)
  for axes, (xlabel, curves) in zip(axes_row[0], panels):
    for i, curve in enumerate(curves):
      colour = colours(i % colours.N)
      for x, y in curve.runs:
        axes.plot(x, y, color=colour, linewidth=0.7, alpha=0.45)
      axes.plot(curve.x, curve.y, color=colour, marker="o", label=curve.label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if log_y:
      axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
  first = axes_row[0][0]
  handles, labels = first.get_legend_handles_labels()
  if legend_below:
    figure.set_figheight(4.5 + 0.22 * len(labels))
    figure.legend(handles, labels, fontsize=7, loc="lower center")
    figure.tight_layout(rect=(0, 0.22 * len(labels) / figure.get_figheight() + 0.02, 1, 1))
  else:
    figure.legend(handles, labels, fontsize=7, loc="center right")
    figure.tight_layout(rect=(0, 0, 1 - 0.34 / len(panels), 1))
  figure.savefig(path, dpi=110)
  plt.close(figure)
