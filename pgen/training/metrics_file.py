"""Every scalar a run logs, as JSON lines in <workdir>/metrics.jsonl: what `compare` and
other tools read without TensorBoard.

    writer = metric_writers.MultiWriter([default_writer, JsonLinesWriter(workdir)])
    writer.write_scalars(100, {"g_loss": 0.7})      # {"step": 100, "time": ..., "g_loss": 0.7}
    read_scalars(workdir)                           # {step: {"time": ..., "g_loss": ...}}

A resumed run logs again the steps after its last checkpoint; the newest line of a step
wins when reading, as the run that continued is the one whose state went on.
"""

import json
import os
import time

import numpy as np

from pgen.core import workdir as workdir_files

FILE = workdir_files.METRICS


class JsonLinesWriter:
  """A metric writer with CLU's MetricWriter methods (so a MultiWriter takes it) that
  appends scalars to <workdir>/metrics.jsonl; other kinds of summary are TensorBoard's
  alone. It does not derive from CLU's interface: importing CLU loads TensorFlow, which the
  readers of this file (`compare`) do without."""

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, FILE)

  def write_scalars(self, step: int, scalars) -> None:
    line = {"step": int(step), "time": time.time(),
            **{k: float(np.asarray(v)) for k, v in scalars.items()}}
    with open(self._path, "a") as f:
      f.write(json.dumps(line) + "\n")

  def write_summaries(self, step, values, metadata=None) -> None:
    del step, values, metadata

  def write_images(self, step, images) -> None:
    del step, images

  def write_videos(self, step, videos) -> None:
    del step, videos

  def write_audios(self, step, audios, *, sample_rate) -> None:
    del step, audios, sample_rate

  def write_texts(self, step, texts) -> None:
    del step, texts

  def write_histograms(self, step, arrays, num_buckets=None) -> None:
    del step, arrays, num_buckets

  def write_hparams(self, hparams) -> None:
    del hparams

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def read_scalars(workdir: str) -> dict[int, dict]:
  """{step: {name: value, "time": seconds since the epoch}} of a run's metrics.jsonl (empty
  when it has none); a line cut short by a killed run is skipped."""
  path = os.path.join(workdir, FILE)
  steps: dict[int, dict] = {}
  if not os.path.exists(path):
    return steps
  with open(path) as f:
    for text in f:
      try:
        line = json.loads(text)
      except json.JSONDecodeError:
        continue
      steps.setdefault(line.pop("step"), {}).update(line)
  return steps
