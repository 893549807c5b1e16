"""The train step as compiled programs: jit with explicit shardings, donation, and one
program per combination of lazy regularizers, chosen on the host by the step number.

    train_step = compile_train_step(config, setup, mesh)
    state, metrics = train_step(state, batch)               # reads state.step (a sync)
    state, metrics = train_step.at(step)(state, batch)      # the loop's: `step` updates done
    cost = train_step.compile(state, batch)                 # every program, ahead of time

The maths is pgen/gan/objectives.py's `train_step`; this module only compiles it. Lazy
regularizers (R1 and R2 every r1_every steps, path length every pl_every) are a static
`LazyPhases` argument, so a run compiles one program per combination it meets (at most
four) and each program runs exactly its work. A `lax.cond` on the step would keep one
program, but XLA:CPU compiles the convolutions inside a conditional's branches as plain
loops, many times slower than the same convolutions outside one.
"""

import collections
import functools
import math
from typing import Callable

import ml_collections

from pgen.core import compiler, sharding
from pgen.gan import objectives
from pgen.gan.state import Setup, state_shardings
from pgen.gan.step_spec import LazyPhases, StepOptions, StepSpec
from pgen.training import performance


def lazy_phases(step: int, opts: StepOptions) -> LazyPhases:
  """What the update after `step` completed updates runs (every k-th, from step 0)."""
  return LazyPhases(r1=opts.gradient_penalties and step % opts.r1_every == 0,
                    path_length=opts.pl_weight > 0 and step % opts.pl_every == 0)


def lazy_cycle(opts: StepOptions) -> dict[LazyPhases, float]:
  """Each combination of lazy regularizers a run meets, with its share of the steps."""
  cycle = math.lcm(opts.r1_every if opts.gradient_penalties else 1,
                   opts.pl_every if opts.pl_weight > 0 else 1)
  counts = collections.Counter(lazy_phases(step, opts) for step in range(cycle))
  return {phases: count / cycle for phases, count in counts.items()}


def jit_train_step(step_fn, abstract_state, mesh, deterministic: bool = False):
  """`step_fn(state, batch, phases)` jitted with explicit shardings (a program per
  `phases`); the input state's buffers are donated."""
  shardings = state_shardings(abstract_state)
  batch = sharding.batch_split(mesh)
  return compiler.jit(step_fn, deterministic=deterministic, static_argnums=(2,),
                      in_shardings=(shardings, batch),
                      out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))


class TrainStep:
  """The jitted step with its lazy regularizers chosen by the step number, on the host:
  `at(step)` is the (state, batch) -> (state, metrics) function of the update after `step`
  completed updates; calling it directly reads `state.step` (one device sync)."""

  def __init__(self, jitted, opts: StepOptions):
    self._jitted, self._opts = jitted, opts
    self._compiled = {}  # LazyPhases -> ahead-of-time compiled program

  def at(self, step: int) -> Callable:
    phases = lazy_phases(step, self._opts)
    if phases in self._compiled:
      return self._compiled[phases]
    return lambda state, batch: self._jitted(state, batch, phases)

  def __call__(self, state, batch):
    return self.at(int(sharding.to_host(state.step)))(state, batch)

  def trace(self, state, batch, phases: LazyPhases = LazyPhases()):
    """The program of `phases` traced for (state, batch): `.lower()` gives its StableHLO,
    `.lower(lowering_platforms=("cuda",))` that of another platform than this machine's."""
    return self._jitted.trace(state, batch, phases)

  def lower(self, state, batch, phases: LazyPhases = LazyPhases()):
    """The program of `phases` lowered for (state, batch) on this machine's platform."""
    return self.trace(state, batch, phases).lower()

  def compile(self, state, batch) -> performance.StepCost:
    """Compiles, ahead of time, every program the run meets; their cost per step averaged
    over the regularizers' cycle (the most memory of any)."""
    costs = []
    for phases, share in lazy_cycle(self._opts).items():
      self._compiled[phases], cost = performance.compile_lowered(
          self.lower(state, batch, phases))
      costs.append((cost, share))
    return performance.StepCost.mean(costs)


def compile_train_step(config: ml_collections.ConfigDict, setup: Setup, mesh,
                       make_reward: Callable | None = None) -> TrainStep:
  """The jitted train step for `setup` (XLA compiles each program on first use, or all at
  once with `.compile(state, batch)`); `make_reward` as StepSpec.create takes it."""
  spec = StepSpec.create(config, setup, mesh, make_reward)
  step_fn = functools.partial(objectives.train_step, spec=spec)
  return TrainStep(jit_train_step(step_fn, setup.abstract_state, mesh, config.deterministic),
                   spec.options)
