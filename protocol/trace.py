"""Replay and the three trace levels below the checkpoint trace, from the very code that trains.

For any step t, :class:`Replayer` starts from the nearest checkpoint at or before t (read from the
artifact store when a manifest is given, else recomputed from S_0) and runs :func:`protocol.train.run_step`
-- the training function itself, whose every arithmetic step is a RepOps op -- forward. It produces:

(a) :meth:`Replayer.interval`: the state roots S_k, S_k+1, ..., S_k+c of t's checkpoint interval
    (level 2 of the game; its ends are the two checkpoint leaves of level 1);
(b) :meth:`Replayer.op_trace`: the op-level trace of step t (level 3), recorded on a
    ``repops.Tape``: the append-only log of tensor ids starts with S_t's tensors, the step's batch and
    its constant, then receives each op's output; after each op its root is a leaf. The links are explicit data: each op lists the log positions of its inputs,
    and ``next_state`` lists the log positions of S_t+1's tensors, so :func:`verify_op_trace` can check
    that the log starts at S_t and ends at S_t+1 without trusting the solver;
(c) :meth:`Replayer.scalar_trace`: for one op and one output element, the canonical scalar program
    of that element (``OpRecord.scalar_trace`` of RepOps: the op's own kernel run on the tracing
    backend) with the register file after each instruction, checked against the recorded output.

A fault (``protocol.train.Fault``) replays a faulty run exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from protocol import repops as R
from protocol.commit import LocalStore, OpLog, state_commitment, tensor_id
from protocol.errors import VerigradError
from protocol.models import build_model
from protocol.spec import TaskSpec, open_dataset, spec_hash
from protocol.train import (
    Fault,
    State,
    StepContext,
    checkpoint_steps,
    initial_state,
    load_checkpoint,
    resolve_device,
    run_step,
    run_step_with_fault,
    state_root_of,
)


class TraceError(VerigradError):
    """A replay that cannot be produced or a trace whose links do not check."""


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


@dataclass
class IntervalTrace:
    """Level 2: the state roots of one checkpoint interval, S_start ... S_end."""

    start: int
    end: int
    state_roots: list[bytes]

    def root_at(self, step: int) -> bytes:
        """S_step for start <= step <= end."""
        if not self.start <= step <= self.end:
            raise TraceError(f"step {step} is outside the interval [{self.start}, {self.end}]")
        return self.state_roots[step - self.start]

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "state_roots": [_hex(r) for r in self.state_roots]}


@dataclass
class OpEntry:
    """One op of the step: its inputs' and output's log positions and the log root after it."""

    index: int
    name: str
    attrs: dict[str, Any]
    inputs: list[int]
    output: int
    output_id: bytes
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "attrs": self.attrs, "inputs": self.inputs,
                "output": self.output, "output_id": _hex(self.output_id), "root": _hex(self.root)}


@dataclass
class OpTrace:
    """Level 3: the op-level trace of step ``step`` (S_step -> S_step+1)."""

    step: int
    start_names: list[str]
    log_ids: list[bytes]
    state_size: int
    state_root: bytes
    start_root: bytes
    ops: list[OpEntry]
    next_state: list[tuple[str, int]]
    next_state_root: bytes
    records: list[R.OpRecord] = field(repr=False, default_factory=list)

    @property
    def leaves(self) -> list[bytes]:
        """Level 3's sequence: the log root at the start, then after each op."""
        return [self.start_root] + [op.root for op in self.ops]

    def to_json(self) -> dict[str, Any]:
        """Everything a verifier needs to check the links (tensors themselves are not included)."""
        return {
            "step": self.step,
            "state_root": _hex(self.state_root),
            "next_state_root": _hex(self.next_state_root),
            "start": [{"name": n, "id": _hex(i)} for n, i in zip(self.start_names, self.log_ids, strict=False)],
            "state_size": self.state_size,
            "start_root": _hex(self.start_root),
            "ops": [op.to_json() for op in self.ops],
            "next_state": [{"name": n, "position": p} for n, p in self.next_state],
        }


def verify_op_trace(tr: OpTrace) -> None:
    """Check the links of an op trace from its ids alone; raise :class:`TraceError` on the first break.

    * the log's first ``state_size`` entries are S_t: their state root is ``state_root``;
    * every op reads only earlier entries and appends exactly the next one;
    * the log roots recomputed from the ids equal the committed leaves;
    * the designated ``next_state`` entries, in state order, have state root ``next_state_root``.
    """
    n_start = len(tr.start_names)
    ids = tr.log_ids
    if len(ids) != n_start + len(tr.ops):
        raise TraceError(f"log has {len(ids)} ids, expected {n_start} start entries + {len(tr.ops)} ops")
    names = tr.start_names[: tr.state_size]
    if state_commitment(zip(names, ids[: tr.state_size], strict=True)).root != tr.state_root:
        raise TraceError(f"step {tr.step}: the log's first {tr.state_size} entries are not S_{tr.step}")
    log = OpLog(ids[:n_start])
    if log.root != tr.start_root:
        raise TraceError(f"step {tr.step}: start root does not match the start entries")
    for j, op in enumerate(tr.ops):
        if op.index != j or op.output != n_start + j:
            raise TraceError(f"op {j}: expected index {j} writing entry {n_start + j}, got {op.index}/{op.output}")
        bad = [p for p in op.inputs if not 0 <= p < op.output]
        if bad:
            raise TraceError(f"op {j} ({op.name}) reads entry {bad[0]}, not an earlier log entry")
        if ids[op.output] != op.output_id:
            raise TraceError(f"op {j} ({op.name}): output id differs from log entry {op.output}")
        if log.append_op([op.output_id]) != op.root:
            raise TraceError(f"op {j} ({op.name}): log root after the op does not match")
    nxt = [(name, ids[pos]) for name, pos in tr.next_state]
    if [n for n, _ in nxt] != names:
        raise TraceError(f"step {tr.step}: next_state names/order differ from S_{tr.step}'s")
    if state_commitment(nxt).root != tr.next_state_root:
        raise TraceError(f"step {tr.step}: the designated entries are not S_{tr.step + 1}")


@dataclass
class ScalarTrace:
    """Level 4: one output element's canonical scalar program and the value after each instruction.

    ``values[m]`` is the bits instruction ``m`` wrote; the last one is the element (``output_bits``
    is what the op's output holds: equal unless the op was faulted). ``reads`` are the (input slot,
    flat index) elements the program loads; slot i is the op's input i, i.e. log entry ``inputs[i]``.
    """

    step: int
    op: int
    name: str
    element: int
    inputs: list[int]
    program: list[R.Instr]
    values: list[int]
    output_bits: int
    reads: list[tuple[int, int]]

    @property
    def matches(self) -> bool:
        """True when the program's result is the recorded element (False exactly for a faulty op)."""
        return bool(self.values) and self.values[-1] == self.output_bits

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "op": self.op, "name": self.name, "element": self.element,
                "inputs": self.inputs, "program": [str(i) for i in self.program],
                "values": [f"0x{v:08x}" for v in self.values], "output_bits": f"0x{self.output_bits:08x}",
                "matches": self.matches}


class Replayer:
    """Replays steps of a run (honest or with its fault) from checkpoints; see the module doc."""

    def __init__(self, spec: TaskSpec, *, device: str | torch.device = "cpu", fault: Fault | None = None,
                 store: LocalStore | None = None, manifest: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.device = resolve_device(device)
        self.fault = fault
        dataset = open_dataset(spec)
        self.model = build_model(spec, dataset)
        self.ctx = StepContext(spec, self.model, dataset, self.device)
        self.store = store
        self.digests: dict[int, str] = {}
        if manifest is not None:
            if manifest.get("spec_hash") != spec_hash(spec):
                raise TraceError(f"the manifest is for spec {manifest.get('spec_hash')}, not {spec_hash(spec)}")
            self.digests = {int(c["step"]): c["digest"] for c in manifest["checkpoints"] if c.get("digest")}
        self._names: list[str] | None = None

    # -- states -------------------------------------------------------------------------------------

    def checkpoint_before(self, step: int) -> int:
        """The last checkpoint step at or before ``step``."""
        if not 0 <= step <= self.spec.steps:
            raise TraceError(f"step {step} out of range [0, {self.spec.steps}]")
        return max(c for c in checkpoint_steps(self.spec) if c <= step)

    def _checkpoint_state(self, cp: int) -> State:
        if cp == 0:
            return initial_state(self.model, self.device)
        if self.store is not None and cp in self.digests:
            names = self.state_names()
            return load_checkpoint(self.store, self.digests[cp], self.device, names)
        return self.state_at(cp, from_checkpoint=self.checkpoint_before(cp - 1))

    def state_names(self) -> list[str]:
        """Tensor names of a state, in state order."""
        if self._names is None:
            self._names = list(initial_state(self.model, torch.device("cpu")))
        return self._names

    def state_at(self, step: int, from_checkpoint: int | None = None) -> State:
        """S_step, replayed from the nearest checkpoint (or from ``from_checkpoint``)."""
        cp = self.checkpoint_before(step) if from_checkpoint is None else from_checkpoint
        state = self._checkpoint_state(cp)
        for t in range(cp, step):
            state = run_step_with_fault(self.ctx, state, t, self.fault).state
        return state

    # -- level 2 ------------------------------------------------------------------------------------

    def interval(self, step: int) -> IntervalTrace:
        """Per-step state roots of the checkpoint interval containing ``step`` (step < steps)."""
        if not 0 <= step < self.spec.steps:
            raise TraceError(f"step {step} out of range [0, {self.spec.steps})")
        cps = checkpoint_steps(self.spec)
        start = self.checkpoint_before(step)
        end = min(c for c in cps if c > start)
        state = self._checkpoint_state(start)
        roots = [state_root_of(state)]
        for t in range(start, end):
            state = run_step_with_fault(self.ctx, state, t, self.fault).state
            roots.append(state_root_of(state))
        return IntervalTrace(start, end, roots)

    # -- level 3 ------------------------------------------------------------------------------------

    def op_trace(self, step: int) -> OpTrace:
        """The op-level trace of step ``step``, recorded on a RepOps tape while replaying ``run_step``."""
        if not 0 <= step < self.spec.steps:
            raise TraceError(f"step {step} out of range [0, {self.spec.steps})")
        state = self.state_at(step)
        inject = self.fault.repops_fault() if self.fault is not None and self.fault.step == step else None
        with R.Tape(inject=inject) as tape:
            res = run_step(self.ctx, state, step)
        records = tape.records
        names = [n for n, _ in res.start]
        position = {id(t): i for i, (_, t) in enumerate(res.start)}
        n_start = len(res.start)
        for rec in records:
            position[id(rec.output)] = n_start + rec.index

        def pos_of(t: torch.Tensor, what: str) -> int:
            try:
                return position[id(t)]
            except KeyError:
                raise TraceError(f"step {step}: {what} is neither a start tensor nor an op output") from None

        state_ids = state_commitment([(n, t.detach().cpu()) for n, t in state.items()]).ids
        ids = state_ids + [tensor_id(t.detach().cpu()) for _, t in res.start[len(state):]]
        ids += [tensor_id(rec.output.detach().cpu()) for rec in records]
        log = OpLog(ids[:n_start])
        start_root = log.root
        ops = []
        for rec in records:
            out_pos = n_start + rec.index
            root = log.append_op([ids[out_pos]])
            inputs = [pos_of(t, f"input {i} of op {rec.index} ({rec.op})") for i, t in enumerate(rec.inputs)]
            ops.append(OpEntry(rec.index, rec.op, _plain(rec.attrs), inputs, out_pos, ids[out_pos], root))
        next_state = [(name, pos_of(t, f"next-state tensor {name}")) for name, t in res.state.items()]
        return OpTrace(
            step=step, start_names=names, log_ids=ids, state_size=len(state),
            state_root=state_commitment(zip(list(state), state_ids, strict=True)).root,
            start_root=start_root, ops=ops, next_state=next_state,
            next_state_root=state_commitment([(name, ids[pos]) for name, pos in next_state]).root,
            records=records,
        )

    # -- level 4 ------------------------------------------------------------------------------------

    def scalar_trace(self, step: int, op: int, element: int, trace: OpTrace | None = None) -> ScalarTrace:
        """The canonical scalar program of output ``element`` of op ``op`` at ``step``, executed.

        The program is RepOps' (the op's own kernel on the tracing backend, run by the reference
        evaluator); ``matches`` is False exactly when the recorded element differs (a faulty op).
        """
        tr = trace if trace is not None else self.op_trace(step)
        if not 0 <= op < len(tr.records):
            raise TraceError(f"step {step} has {len(tr.records)} ops, no op {op}")
        rec = tr.records[op]
        numel = rec.output.numel()
        if not 0 <= element < numel:
            raise TraceError(f"op {op} ({rec.op}) has {numel} output elements, no element {element}")
        st = rec.scalar_trace(element)
        values = [st.value(m) for m in range(len(st.program))]
        out_bits = _bits_of(rec.output.detach().cpu().reshape(-1), element)
        return ScalarTrace(step, op, rec.op, element, tr.ops[op].inputs, list(st.program), values,
                           out_bits, list(st.reads))


def _bits_of(flat: torch.Tensor, element: int) -> int:
    if flat.dtype == torch.float32:
        return int(flat.view(torch.int32)[element].item()) & 0xFFFFFFFF
    return int(flat[element].item()) & 0xFFFFFFFF


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in attrs.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m protocol.trace SPEC --step T [--op J --element E]``: print the levels of one step.

    Level 2 (the interval's state roots), level 3 (every op with its input positions and the log root
    after it) and, with ``--op``/``--element``, level 4 (the element's scalar program with the value
    after each instruction). ``--inject`` replays a faulty run; ``--json`` prints one JSON object.
    """
    import argparse
    import json
    import sys

    from protocol.spec import load_spec

    ap = argparse.ArgumentParser(prog="python -m protocol.trace", description="Print the trace levels of one step.")
    ap.add_argument("spec", help="spec name or path")
    ap.add_argument("--steps", type=int, default=None, help="the run's step count (default: the spec's)")
    ap.add_argument("--step", type=int, required=True, help="the step to trace (0-based)")
    ap.add_argument("--op", type=int, default=None, help="op index for a scalar trace")
    ap.add_argument("--element", type=int, default=0, help="output element for a scalar trace")
    ap.add_argument("--inject", default=None, metavar="STEP:OP:ELEMENT", help="replay a faulty run")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.steps is not None:
            spec = spec.with_steps(args.steps)
        rep = Replayer(spec, device=args.device, fault=Fault.parse(args.inject) if args.inject else None)
        interval = rep.interval(args.step)
        tr = rep.op_trace(args.step)
        verify_op_trace(tr)
        st = rep.scalar_trace(args.step, args.op, args.element, trace=tr) if args.op is not None else None
    except VerigradError as exc:
        print(f"trace: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = {"interval": interval.to_json(), "op_trace": tr.to_json(),
               "scalar_trace": st.to_json() if st is not None else None}
        print(json.dumps(out))
        return 0
    print(f"steps {interval.start}..{interval.end}:")
    for i, r in enumerate(interval.state_roots):
        print(f"  S_{interval.start + i} {_hex(r)}")
    print(f"step {tr.step}: {len(tr.start_names)} start entries, {len(tr.ops)} ops, start root {_hex(tr.start_root)}")
    for op in tr.ops:
        ins = ", ".join(tr.start_names[p] if p < len(tr.start_names) else f"op{p - len(tr.start_names)}"
                        for p in op.inputs)
        print(f"  op{op.index:<4d} {op.name:24s} ({ins}) -> root {_hex(op.root)[:18]}")
    if st is not None:
        print(f"op {st.op} ({st.name}) element {st.element}: {len(st.program)} instructions, "
              f"matches={st.matches}")
        for instr, v in zip(st.program, st.values, strict=True):
            print(f"  {instr!s:48s} -> 0x{v:08x}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
