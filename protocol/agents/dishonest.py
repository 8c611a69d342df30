"""The ways a solver daemon can cheat, for drills and dispute scenarios.

An honest solver trains every step with the reproducible engine. A dishonest one is the same daemon
with one of these switched on; it commits and publishes what it computed and defends it in the game
as well as a cheater can, from a replay of its own dishonest run:

* ``--inject STEP:OP:ELEMENT`` (:class:`protocol.train.Fault`): one scalar of one op's output is wrong
  at one step. Every later step follows honestly from it, so the game goes down to that op and
  element and the contract recomputes it.
* ``--corrupt-step S``: the state after step S is altered (one scalar of the first parameter) outside
  any op, and training goes on from it. The solver's per-step roots are its own run, so the game
  reaches level 3 at step S, where the solver must show an op log from S_S to S_S+1: an honest step
  does not end at its altered state, and it cannot commit the ops (it loses on time).
* ``--corrupt-checkpoint N``: the same alteration made to the state it commits as checkpoint N
  (after step N*c), i.e. the last step of an interval.
* ``--lazy skip``: every odd step is skipped (the state is carried over unchanged);
  ``--lazy initial``: no step is done at all, and S_0 is committed at every checkpoint and as the
  result. Both are caught like an altered state: a skipped step has no op log ending at its claim.
* ``--withhold``: the artifacts are not served (the HTTP server answers from an empty store), so
  nobody can fetch the manifest, the checkpoints or a disputed output.

:class:`Tamper` says what the run's state is after each step; :func:`train_dishonest` trains with
it and :class:`TamperedReplayer` replays it (the solver's side of the game).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from protocol.commit import LocalStore, TraceTree
from protocol.errors import VerigradError
from protocol.models import build_model
from protocol.spec import TaskSpec, load_dataset, open_dataset
from protocol.trace import IntervalTrace, Replayer, TraceError
from protocol.train import (
    FAULT_XOR,
    Checkpoint,
    Fault,
    State,
    StepContext,
    TrainResult,
    checkpoint_steps,
    initial_state,
    manifest_of,
    run_step_with_fault,
    state_root_of,
)

LAZY_MODES = ("skip", "initial")


@dataclass(frozen=True)
class Tamper:
    """What a dishonest run does to its state between steps (none of it through an op)."""

    corrupt_step: int | None = None  # alter S_{t+1} after step t == corrupt_step
    lazy: str | None = None  # "skip" (odd steps not done) or "initial" (no step done)

    def __post_init__(self) -> None:
        if self.lazy is not None and self.lazy not in LAZY_MODES:
            raise VerigradError(f"--lazy: expected one of {', '.join(LAZY_MODES)}, got {self.lazy!r}")

    @classmethod
    def of(cls, spec: TaskSpec, corrupt_step: int | None, corrupt_checkpoint: int | None,
           lazy: str | None) -> Tamper | None:
        """The tamper for a run of ``spec`` (None for an honest one); a checkpoint index N becomes the
        step whose result is checkpoint N."""
        if corrupt_checkpoint is not None:
            cps = checkpoint_steps(spec)
            if not 1 <= corrupt_checkpoint < len(cps):
                raise VerigradError(f"--corrupt-checkpoint: expected 1..{len(cps) - 1}, got {corrupt_checkpoint}")
            corrupt_step = cps[corrupt_checkpoint] - 1
        if corrupt_step is not None and not 0 <= corrupt_step < spec.steps:
            raise VerigradError(f"--corrupt-step: step {corrupt_step} is not below the run's {spec.steps} steps")
        if corrupt_step is None and lazy is None:
            return None
        return cls(corrupt_step, lazy)

    def runs(self, step: int) -> bool:
        """Whether the dishonest run computes step ``step`` at all."""
        return self.lazy is None or (self.lazy == "skip" and step % 2 == 0)

    def after(self, step: int, state: State) -> State:
        """The state it keeps after step ``step`` (``state``: what it computed, or carried over)."""
        if step != self.corrupt_step:
            return state
        name = next(iter(state))  # the first parameter, in state order
        bad = dict(state)
        flat = state[name].detach().clone().reshape(-1)
        flat.view(torch.int32)[0] ^= FAULT_XOR  # the top mantissa bit of element 0, as a fault flips it
        bad[name] = flat.reshape(state[name].shape)
        return bad


def advance(ctx: StepContext, state: State, step: int, fault: Fault | None, tamper: Tamper | None,
            losses: list[float] | None = None) -> State:
    """S_step -> the dishonest run's S_step+1 (the step's loss appended to ``losses``; 0 if skipped)."""
    if tamper is not None and not tamper.runs(step):
        if losses is not None:
            losses.append(0.0)
        return state
    res = run_step_with_fault(ctx, state, step, fault)
    if losses is not None:
        losses.append(float(res.loss.item()))
    return tamper.after(step, res.state) if tamper is not None else res.state


def train_dishonest(spec: TaskSpec, *, out_dir: str | Path, fault: Fault | None, tamper: Tamper,
                    on_checkpoint: Any = None) -> TrainResult:
    """:func:`protocol.train.train` with ``tamper`` applied between steps: the same checkpoints, store
    layout and manifest, of a run that is not the task's."""
    started = time.perf_counter()
    dev = torch.device("cpu")
    dataset = open_dataset(spec)
    model = build_model(spec, dataset)
    ctx = StepContext(spec, model, dataset, dev)
    store = LocalStore(out_dir)
    state = initial_state(model, dev)
    trace = TraceTree()
    checkpoints: list[Checkpoint] = []
    wanted = set(checkpoint_steps(spec))
    losses: list[float] = []

    def commit(step: int) -> None:
        root = state_root_of(state)
        cp = Checkpoint(step, root, store.put_tensors({n: t.detach().cpu() for n, t in state.items()}))
        checkpoints.append(cp)
        trace_root = trace.append_checkpoint(root)
        if on_checkpoint is not None:
            on_checkpoint(cp, trace_root)

    commit(0)
    for step in range(spec.steps):
        state = advance(ctx, state, step, fault, tamper, losses)
        if step + 1 in wanted:
            commit(step + 1)
    params = {n: state[n] for n, _ in model.param_shapes()}
    metrics = model.evaluate(params, load_dataset(spec.dataset.name, "test", spec.model.block_size), dev)
    result = TrainResult(spec, spec.steps, trace.root, checkpoints[-1].state_root, checkpoints, losses,
                         metrics, str(dev), time.perf_counter() - started, fault=fault)
    manifest = manifest_of(result)
    result.manifest_digest = store.put_json(manifest)
    result.out_dir = str(store.root)
    Path(store.root, "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return result


class TamperedReplayer(Replayer):
    """The dishonest run replayed from its own checkpoints (levels 1 and 2 are its own); level 3 is
    an honest step from its own S_t, which is all an op log can show."""

    def __init__(self, spec: TaskSpec, tamper: Tamper, **kw: Any) -> None:
        super().__init__(spec, **kw)
        self.tamper = tamper

    def state_at(self, step: int, from_checkpoint: int | None = None) -> State:
        cp = self.checkpoint_before(step) if from_checkpoint is None else from_checkpoint
        state = self._checkpoint_state(cp)
        for t in range(cp, step):
            state = advance(self.ctx, state, t, self.fault, self.tamper)
        return state

    def interval(self, step: int) -> IntervalTrace:
        if not 0 <= step < self.spec.steps:
            raise TraceError(f"step {step} out of range [0, {self.spec.steps})")
        start = self.checkpoint_before(step)
        end = min(c for c in checkpoint_steps(self.spec) if c > start)
        state = self._checkpoint_state(start)
        roots = [state_root_of(state)]
        for t in range(start, end):
            state = advance(self.ctx, state, t, self.fault, self.tamper)
            roots.append(state_root_of(state))
        return IntervalTrace(start, end, roots)
