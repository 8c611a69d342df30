"""The tape every training step runs its ops through: op numbering, recording, fault injection.

The models never call a kernel directly: each op goes through :meth:`Tape.op`, which gives it its
index in the step's canonical order (the order the model code issues ops in, which is fixed). The
same code path therefore serves three purposes, with no second implementation that could drift:

* plain training (nothing recorded: only the op counter advances);
* replay for the op-level trace (``record=True``): every op's name, attributes, input *log
  positions* and output tensor are kept, where the log starts with the state tensors and the batch
  (:meth:`Tape.begin`) and then receives each op's output;
* fault injection: at one (step, op), one element of the op's output is corrupted before any later
  op reads it -- what a cheating or faulty solver would do. The corruption flips the top mantissa
  bit (bit 22) of a float32, which changes a normal value by a factor between 2/3 and 3/2 and never
  makes a NaN or an infinity; integers get +1. (A flip of the lowest bit is often washed out: a
  1-ulp change of a gradient can round away in the optimizer and the run rejoins the honest one.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from protocol.errors import VerigradError
from protocol.models.kernels import KERNELS


class TapeError(VerigradError):
    """An op read a tensor that is neither a logged tensor nor an earlier op's output, or a fault
    names an op or element that the step does not have."""


@dataclass(frozen=True)
class Fault:
    """Corrupt element ``element`` (row-major) of the output of op ``op`` (0-based) at step ``step``
    (see :func:`corrupt_element`)."""

    step: int
    op: int
    element: int

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``STEP:OP:ELEMENT`` (three integers >= 0), as given to ``--inject``."""
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise TapeError(f"--inject: expected STEP:OP:ELEMENT with three integers >= 0, got {text!r}")
        step, op, element = (int(p) for p in parts)
        return cls(step, op, element)


@dataclass
class OpRecord:
    """One recorded op: its index, name, attributes, where its inputs sit in the log, its output."""

    index: int
    name: str
    attrs: dict[str, Any]
    input_positions: list[int]
    output_position: int
    output: torch.Tensor = field(repr=False)
    inputs: list[torch.Tensor] = field(repr=False)


#: The bit a fault flips in a float32 element (the top mantissa bit).
FAULT_BIT = 1 << 22


def corrupt_element(t: torch.Tensor, element: int) -> torch.Tensor:
    """A copy of ``t`` with element ``element`` corrupted: float32 bit 22 flipped, integers plus one."""
    if not 0 <= element < t.numel():
        raise TapeError(f"--inject: element {element} out of range for an output of {t.numel()} elements")
    out = t.clone()
    flat = out.view(-1)
    if out.dtype == torch.float32:
        bits = flat.view(torch.int32)
        bits[element] = bits[element] ^ FAULT_BIT
    else:
        flat[element] = flat[element] + 1
    return out


class Tape:
    """Numbers ops, records them on demand, injects one fault on demand (see the module doc)."""

    def __init__(self, step: int = 0, *, record: bool = False, fault: Fault | None = None) -> None:
        self.step = step
        self.record = record
        self.fault = fault if fault is not None and fault.step == step else None
        self.fault_fired = False
        self.count = 0
        self.records: list[OpRecord] = []
        self.log_names: list[str] = []
        self._log: list[torch.Tensor] = []
        self._pos: dict[int, int] = {}

    def begin(self, named: Sequence[tuple[str, torch.Tensor]]) -> None:
        """Register the step's starting tensors (state, then batch) as the log's first entries."""
        if self.record:
            for name, t in named:
                self._add(name, t)

    def _add(self, name: str, t: torch.Tensor) -> int:
        pos = len(self._log)
        self._log.append(t)
        self.log_names.append(name)
        self._pos[id(t)] = pos
        return pos

    def position(self, t: torch.Tensor) -> int:
        """Log position of a tensor that was registered or produced on this tape."""
        try:
            return self._pos[id(t)]
        except KeyError:
            raise TapeError("an op read a tensor that is not in the step's log") from None

    def op(self, name: str, *inputs: torch.Tensor, **attrs: Any) -> torch.Tensor:
        """Run kernel ``KERNELS[name](*inputs, **attrs)`` as the next op of the step; returns its output."""
        index = self.count
        self.count += 1
        try:
            fn = KERNELS[name]
        except KeyError:
            raise TapeError(f"no kernel named {name!r}") from None
        out = fn(*inputs, **attrs)
        if self.fault is not None and self.fault.op == index:
            out = corrupt_element(out, self.fault.element)
            self.fault_fired = True
        if self.record:
            in_pos = [self.position(t) for t in inputs]
            pos = self._add(f"op{index}:{name}", out)
            self.records.append(OpRecord(index, name, dict(attrs), in_pos, pos, out, list(inputs)))
        return out

    def finish(self) -> None:
        """Raise if this step was to be faulted but has no such op."""
        if self.fault is not None and not self.fault_fired:
            raise TapeError(f"--inject: step {self.step} has {self.count} ops, no op {self.fault.op}")

    @property
    def log(self) -> list[torch.Tensor]:
        """The recorded log's tensors in order (state, batch, then one output per op)."""
        return list(self._log)
