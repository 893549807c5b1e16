"""What the compiled train step costs, and how much of the hardware it uses.

    compiled, cost = compile_step(jitted, state, batch)   # ahead of time, timed
    cost = StepCost.mean([(plain_cost, 0.75), (regularized_cost, 0.25)])
    cost.flops_per_step, cost.compile_s, cost.memory_bytes    # XLA's cost and memory analyses
    peak = peak_tflops(jax.devices()[0].device_kind, "bfloat16")   # None if unknown (CPUs)
    tflops, mfu = utilization(cost.flops_per_step, step_s, peak)

MFU (model FLOPs utilization) is the step's FLOPs, as XLA's cost analysis counts them for
one device, per second, over the device's dense peak for the compute dtype. The peaks
are the vendors' dense figures (no sparsity). For float32, GPUs count as TF32 (what XLA
runs float32 convolutions and matrix products in by default on them) and TPUs as bfloat16
(their default precision makes one bfloat16 pass). `config.peak_tflops` overrides the table.
"""

import dataclasses
import time

import jax

# (substring of jax's device_kind, bfloat16 TFLOP/s, float32 TFLOP/s), first match wins.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0, 378.0),
    ("H100 NVL", 835.0, 418.0),
    ("H100", 989.4, 494.7),  # SXM.
    ("H200", 989.4, 494.7),
    ("A100", 312.0, 156.0),
    ("L4", 121.0, 60.0),
    ("TPU v4", 275.0, 275.0),
    ("TPU v5 lite", 197.0, 197.0),  # v5e.
    ("TPU v5", 459.0, 459.0),  # v5p.
    ("TPU v6 lite", 918.0, 918.0),  # v6e (Trillium).
)


@dataclasses.dataclass(frozen=True)
class StepCost:
  flops_per_step: float | None  # Per device, as XLA's cost analysis counts them.
  compile_s: float
  memory_bytes: dict  # XLA's memory analysis per device: arguments, outputs, temporaries.

  @property
  def peak_memory_bytes(self) -> int | None:
    """What the step holds at once: arguments and outputs (donated buffers counted once)
    and temporaries."""
    m = self.memory_bytes
    if not m:
      return None
    return m["argument"] + m["output"] - m["alias"] + m["temp"]

  def record(self) -> dict:
    return {"flops_per_step": self.flops_per_step, "compile_s": round(self.compile_s, 3),
            "memory_bytes": self.memory_bytes, "peak_memory_bytes": self.peak_memory_bytes}

  @classmethod
  def mean(cls, costs_and_shares) -> "StepCost":
    """The cost of a step that runs each program with its share of the steps: FLOPs
    averaged, compile times summed, the memory of the program that needs the most."""
    costs_and_shares = list(costs_and_shares)
    flops = [cost.flops_per_step for cost, _ in costs_and_shares]
    most = max((cost for cost, _ in costs_and_shares),
               key=lambda cost: cost.peak_memory_bytes or 0)
    return cls(None if None in flops else sum(f * share for f, (_, share)
                                              in zip(flops, costs_and_shares)),
               sum(cost.compile_s for cost, _ in costs_and_shares), most.memory_bytes)


def _flops(compiled) -> float | None:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per device program.
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def _memory(compiled) -> dict:
  analysis = compiled.memory_analysis()
  if analysis is None:
    return {}
  return {"argument": analysis.argument_size_in_bytes, "output": analysis.output_size_in_bytes,
          "alias": analysis.alias_size_in_bytes, "temp": analysis.temp_size_in_bytes}


def compile_lowered(lowered):
  """(the compiled executable of a lowered program, its StepCost)."""
  start = time.perf_counter()
  compiled = lowered.compile()
  return compiled, StepCost(_flops(compiled), time.perf_counter() - start, _memory(compiled))


def compile_step(jitted, *args):
  """(the compiled executable of `jitted` for `args`, its StepCost)."""
  return compile_lowered(jitted.lower(*args))


def peak_tflops(device_kind: str, dtype: str, override: float | None = None) -> float | None:
  """The dense peak of one device for `dtype` ("bfloat16" or "float32"); None when the
  device is not in PEAK_TFLOPS (CPUs: MFU is then left out, not guessed)."""
  if override:
    return override
  for name, bf16, fp32 in PEAK_TFLOPS:
    if name in device_kind:
      return bf16 if dtype == "bfloat16" else fp32
  return None


def utilization(flops_per_step: float | None, step_s: float, peak: float | None):
  """(TFLOP/s per device, MFU or None)."""
  if not flops_per_step or step_s <= 0:
    return None, None
  tflops = flops_per_step / step_s / 1e12
  return tflops, (tflops / peak if peak else None)


def device_peak_memory_bytes() -> int | None:
  """The most memory the first local device has held (GPUs and TPUs report it; CPUs not)."""
  stats = jax.local_devices()[0].memory_stats()
  return (stats or {}).get("peak_bytes_in_use")
