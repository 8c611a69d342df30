"""Recording, observing and corrupting the ops of a training step.

Every RepOps op call made inside ``with Tape() as tape:`` appends an :class:`OpRecord` (op name,
attributes, input and output tensors) in call order, which is the canonical graph order of the step:
forward, backward and optimizer ops as the training code issues them. The op index j counts ops
within the tape from 0. An observer sees each record as it is made (to hash tensors on the fly
without keeping them), and a :class:`Fault` corrupts one scalar of one op's output before anything
downstream reads it, which is how dispute scenarios create a cheating solver: exactly that element
and what depends on it differ.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from protocol.repops.ops import Attrs, ScalarTrace, compute, trace
from protocol.repops.policy import CANONICAL_NAN_BITS, RepOpsError

_current: contextvars.ContextVar[Tape | None] = contextvars.ContextVar("repops_tape", default=None)


@dataclass(frozen=True)
class Fault:
    """Corrupt element ``element`` (flat index) of the output of op number ``op_index``.

    The element's bits are XOR-ed with ``xor_mask`` (default: the lowest mantissa bit), the smallest
    possible lie. A NaN that results is written as the canonical NaN.
    """

    op_index: int
    element: int
    xor_mask: int = 1


@dataclass
class OpRecord:
    """One op call: ``output = op(*inputs; attrs)``, number ``index`` within its tape."""

    index: int
    op: str
    attrs: Attrs
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor
    faulted: bool = False

    def scalar_trace(self, element: int) -> ScalarTrace:
        """The canonical program of output element ``element`` run on this record's inputs.

        ``.matches`` is False exactly when the recorded element is not what the program computes
        (an injected fault, or a cheat).
        """
        return trace(self.op, self.inputs, self.attrs, element, expected=self.output)

    def recompute(self) -> torch.Tensor:
        """The op's output recomputed from the recorded inputs (what an honest party gets)."""
        return compute(self.op, self.inputs, self.attrs)


@dataclass
class Tape:
    """Context manager recording every op call in canonical order.

    observer: called with each :class:`OpRecord` right after the op ran (and after any fault).
    inject: a :class:`Fault` to apply.
    keep: keep the records in ``records`` (set False to only stream them to the observer).
    """

    observer: Callable[[OpRecord], None] | None = None
    inject: Fault | None = None
    keep: bool = True
    records: list[OpRecord] = field(default_factory=list)
    count: int = 0
    _token: Any = None

    def __enter__(self) -> Tape:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
        self._token = None

    def __len__(self) -> int:
        return self.count

    def _record(
        self, name: str, attrs: Attrs, inputs: Sequence[torch.Tensor], out: torch.Tensor
    ) -> torch.Tensor:
        j = self.count
        self.count += 1
        faulted = False
        if self.inject is not None and self.inject.op_index == j:
            out = corrupt(out, self.inject.element, self.inject.xor_mask)
            faulted = True
        rec = OpRecord(j, name, dict(attrs), tuple(inputs), out, faulted)
        if self.keep:
            self.records.append(rec)
        if self.observer is not None:
            self.observer(rec)
        return out


def current_tape() -> Tape | None:
    """The tape ops are being recorded on, if any."""
    return _current.get()


def corrupt(t: torch.Tensor, element: int, xor_mask: int = 1) -> torch.Tensor:
    """A copy of float32 tensor ``t`` with the bits of one element XOR-ed with ``xor_mask``."""
    if not 0 <= element < t.numel():
        raise RepOpsError(f"fault element {element} is outside an output of {t.numel()} elements")
    out = t.clone().contiguous()
    bits = out.view(torch.int32).reshape(-1)
    old = int(bits[element]) & 0xFFFFFFFF
    new = old ^ (xor_mask & 0xFFFFFFFF)
    if (new & 0x7F800000) == 0x7F800000 and (new & 0x7FFFFF):
        new = CANONICAL_NAN_BITS
    bits[element] = new - (1 << 32) if new & 0x80000000 else new
    return out


def apply(name: str, inputs: Sequence[torch.Tensor], attrs: Attrs | None = None) -> torch.Tensor:
    """Run op ``name`` and record it on the current tape (if any). Every public op goes through here."""
    attrs = dict(attrs or {})
    out = compute(name, inputs, attrs)
    tape = _current.get()
    if tape is not None:
        out = tape._record(name, attrs, inputs, out)
    return out
