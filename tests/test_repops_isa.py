"""The scalar instruction set: exact semantics, agreement with soft-float and with the torch backend."""

from __future__ import annotations

import numpy as np
import pytest
import softfloatpy as sf
import torch

from protocol.repops import isa
from protocol.repops.backend import TorchBackend
from protocol.repops.isa import Imm, In, Instr, Opcode, Reg
from protocol.repops.policy import CANONICAL_NAN_BITS, RepOpsError, canon_bits, f32_bits

EDGE = [
    0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0xBF800000,
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x4B000000, 0x4AFFFFFF, 0x3F000000,
    0x40200000, 0xC0200000, 0x4F000000, 0xCF000000, 0x4F000001, 0x3FC00000, 0x34000000, 0x0CA00000,
]  # fmt: skip


def operand_bits(n: int, seed: int) -> np.ndarray:
    """Random bit patterns mixed with edge cases (zeros, subnormals, inf, NaN, extremes), NaNs canonical."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    near_one = (np.float32(1.0) + rng.standard_normal(n).astype(np.float32)).view(np.uint32)
    raw[::3] = near_one[::3]
    raw[: len(EDGE)] = EDGE
    raw[len(EDGE) : 2 * len(EDGE)] = np.roll(EDGE, 5)
    return np.array([canon_bits(int(b)) for b in raw], dtype=np.uint32)


def to_torch_float(b: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(b.view(np.int32).copy()).view(torch.float32)


def torch_bits(t: torch.Tensor) -> list[int]:
    """Bits of a TorchBackend value: bool (0/1), int32 (register bits) or float32 (NaN canonical)."""
    if t.dtype == torch.bool:
        return [int(v) for v in t.reshape(-1).tolist()]
    if t.dtype == torch.int32:
        return [int(v) & 0xFFFFFFFF for v in t.reshape(-1).tolist()]
    return [canon_bits(int(v) & 0xFFFFFFFF) for v in t.view(torch.int32).reshape(-1).tolist()]


def to_torch_int(b: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(b, dtype=np.uint32).view(np.int32).copy())


def sf32(bits: int) -> sf.Float32:
    return sf.Float32.from_bytes(int(bits).to_bytes(4, "big"))


def sfbits(x: sf.Float32) -> int:
    return canon_bits(int.from_bytes(x.to_bytes(), "big"))


FLOAT_BINARY = {
    Opcode.FADD: ("add", sf.f32_add),
    Opcode.FSUB: ("sub", sf.f32_sub),
    Opcode.FMUL: ("mul", sf.f32_mul),
    Opcode.FDIV: ("div", sf.f32_div),
}


@pytest.mark.parametrize("op", list(FLOAT_BINARY))
def test_float_ops_match_softfloat_and_torch(op: Opcode) -> None:
    a = operand_bits(1200, 1)
    b = operand_bits(1200, 2)
    method, soft = FLOAT_BINARY[op]
    k = TorchBackend(torch.device("cpu"), [], [])
    got_torch = torch_bits(getattr(k, method)(to_torch_float(a), to_torch_float(b)))
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        ref = sfbits(soft(sf32(x), sf32(y)))
        got = isa.execute(op, [x, y])
        assert got == ref, (op.name, hex(x), hex(y), hex(got), hex(ref))
        assert got_torch[i] == ref, (op.name, hex(x), hex(y), hex(got_torch[i]), hex(ref))


def test_fmuladd_rounds_twice() -> None:
    # (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46: the product rounds to 1 + 2^-22 before the add, so
    # c + a*b with c = -(1 + 2^-22) is exactly 0, while a fused multiply-add would give 2^-46.
    a = f32_bits(1.0 + 2.0**-23)
    c = f32_bits(-(1.0 + 2.0**-22))
    assert isa.execute(Opcode.FMULADD, [c, a, a]) == 0
    prod = isa.execute(Opcode.FMUL, [a, a])
    assert isa.execute(Opcode.FMULADD, [c, a, a]) == isa.execute(Opcode.FADD, [c, prod])
    k = TorchBackend(torch.device("cpu"), [], [])
    ta = to_torch_float(np.array([a], dtype=np.uint32))
    tc = to_torch_float(np.array([c], dtype=np.uint32))
    assert torch_bits(k.muladd(tc, ta, ta)) == [0]


def test_nan_results_are_canonical() -> None:
    inf, ninf, zero = 0x7F800000, 0xFF800000, 0
    assert isa.execute(Opcode.FMUL, [zero, inf]) == CANONICAL_NAN_BITS
    assert isa.execute(Opcode.FADD, [inf, ninf]) == CANONICAL_NAN_BITS
    assert isa.execute(Opcode.FDIV, [zero, zero]) == CANONICAL_NAN_BITS
    assert isa.execute(Opcode.FNEG, [CANONICAL_NAN_BITS]) == CANONICAL_NAN_BITS
    assert isa.execute(Opcode.FNEG, [zero]) == 0x80000000
    assert isa.execute(Opcode.FABS, [0x80000000]) == 0


def test_min_max_compare_select_semantics() -> None:
    one, two, nan = f32_bits(1.0), f32_bits(2.0), CANONICAL_NAN_BITS
    assert isa.execute(Opcode.FMAX, [one, two]) == two
    assert isa.execute(Opcode.FMIN, [one, two]) == one
    assert isa.execute(Opcode.FMAX, [nan, one]) == nan  # NaN in a propagates
    assert isa.execute(Opcode.FMAX, [one, nan]) == one  # NaN in b is ignored
    assert isa.execute(Opcode.FMAX, [0x80000000, 0]) == 0x80000000  # equal: a
    assert isa.execute(Opcode.FLT, [nan, one]) == 0 and isa.execute(Opcode.FEQ, [nan, nan]) == 0
    assert isa.execute(Opcode.FEQ, [0, 0x80000000]) == 1
    assert isa.execute(Opcode.FLE, [one, one]) == 1
    assert isa.execute(Opcode.SELECT, [5, one, two]) == one
    assert isa.execute(Opcode.SELECT, [0, one, two]) == two


@pytest.mark.parametrize(
    ("x", "want"),
    [(2.5, 2), (3.5, 4), (-2.5, -2), (-0.5, 0), (0.49999997, 0), (1e10, 2**31 - 1), (-1e10, -(2**31)),
     (float("inf"), 2**31 - 1), (float("-inf"), -(2**31)), (float("nan"), 0), (2147483520.0, 2147483520)],
)  # fmt: skip
def test_f2i_rounds_half_even_and_saturates(x: float, want: int) -> None:
    got = isa.execute(Opcode.F2I, [f32_bits(x)])
    assert got == want & 0xFFFFFFFF
    k = TorchBackend(torch.device("cpu"), [], [])
    t = torch.tensor([x], dtype=torch.float32)
    assert torch_bits(k.f2i(t)) == [want & 0xFFFFFFFF]


def test_i2f_rounds_to_nearest_even() -> None:
    vals = [0, 1, -1, 16777217, 16777219, -16777217, 2**31 - 1, -(2**31), 123456789]
    k = TorchBackend(torch.device("cpu"), [], [])
    got_t = torch_bits(k.i2f(to_torch_int(np.array([v & 0xFFFFFFFF for v in vals], dtype=np.uint64))))
    for v, gt in zip(vals, got_t, strict=True):
        ref = sfbits(sf.i32_to_f32(sf.Int32.from_int(v)))
        assert isa.execute(Opcode.I2F, [v & 0xFFFFFFFF]) == ref, v
        assert gt == ref, v


@pytest.mark.parametrize(
    ("op", "method"),
    [(Opcode.IADD, "iadd"), (Opcode.ISUB, "isub"), (Opcode.IMUL, "imul"), (Opcode.AND, "and_"),
     (Opcode.OR, "or_"), (Opcode.XOR, "xor"), (Opcode.IEQ, "ieq"), (Opcode.ILT, "ilt")],
)  # fmt: skip
def test_integer_ops_match_torch(op: Opcode, method: str) -> None:
    a = operand_bits(500, 3).astype(np.int64)
    b = operand_bits(500, 4).astype(np.int64)
    b[::7] = a[::7]
    k = TorchBackend(torch.device("cpu"), [], [])
    got = torch_bits(getattr(k, method)(to_torch_int(a), to_torch_int(b)))
    want = [isa.execute(op, [int(x), int(y)]) for x, y in zip(a, b, strict=True)]
    assert got == want


def test_select_on_bits_matches_the_evaluator() -> None:
    a = operand_bits(300, 8)
    b = operand_bits(300, 9)
    c = (np.arange(300) % 3 == 0).astype(np.int64)
    k = TorchBackend(torch.device("cpu"), [], [])
    got_f = torch_bits(k.select(torch.from_numpy(c.astype(bool)), to_torch_float(a), to_torch_float(b)))
    got_i = torch_bits(k.select(torch.from_numpy(c.astype(bool)), to_torch_int(a), to_torch_int(b)))
    want = [isa.execute(Opcode.SELECT, [int(x), int(y), int(z)]) for x, y, z in zip(c, a, b, strict=True)]
    assert got_f == got_i == want


@pytest.mark.parametrize(("op", "method"), [(Opcode.SHL, "shl"), (Opcode.SHR, "shr"), (Opcode.SAR, "sar")])
def test_shifts_match_torch(op: Opcode, method: str) -> None:
    a = operand_bits(200, 5).astype(np.int64)
    k = TorchBackend(torch.device("cpu"), [], [])
    for s in (0, 1, 7, 23, 31):
        got = torch_bits(getattr(k, method)(to_torch_int(a), s))
        assert got == [isa.execute(op, [int(x), s]) for x in a]
    assert isa.execute(Opcode.SAR, [0x80000000, 31]) == 0xFFFFFFFF
    assert isa.execute(Opcode.SHR, [0x80000000, 31]) == 1


def test_step_reads_operands_and_writes_one_register() -> None:
    inputs = {(0, 3): f32_bits(2.0), (1, 0): f32_bits(3.0)}
    prog = [
        Instr(Opcode.FMULADD, 0, (Imm(f32_bits(1.0)), In(0, 3), In(1, 0))),  # 1 + 2*3
        Instr(Opcode.FSUB, 1, (Reg(0), Imm(f32_bits(0.5)))),
        Instr(Opcode.LOAD, 0, (Imm(1), Imm(0))),
    ]
    states = isa.run(prog, 2, lambda s, i: inputs[(s, i)])
    assert states[0] == [f32_bits(7.0), 0]
    assert states[1] == [f32_bits(7.0), f32_bits(6.5)]
    assert states[2] == [f32_bits(3.0), f32_bits(6.5)]
    with pytest.raises(Exception, match="operands"):
        isa.step(Instr(Opcode.FADD, 0, (Reg(0),)), [0], lambda s, i: 0)


def test_encode_is_fixed_width_and_distinguishes_operands() -> None:
    a = Instr(Opcode.FMULADD, 2, (Reg(2), In(1, 70000), Imm(0x3F800000)))
    b = Instr(Opcode.FMULADD, 2, (Reg(2), In(1, 70001), Imm(0x3F800000)))
    assert len(a.encode()) == 21 and len(Instr(Opcode.FNEG, 0, (Reg(1),)).encode()) == 21
    assert a.encode() != b.encode()
    assert a.encode()[0] == 0x05 and a.encode()[1:3] == b"\x00\x02"


def test_decode_inverts_encode_and_rejects_garbage() -> None:
    prog = [
        Instr(Opcode.FMULADD, 2, (Reg(2), In(1, 70000), Imm(0x3F800000))),
        Instr(Opcode.FNEG, 0, (Reg(1),)),
        Instr(Opcode.LOAD, 1, (Imm(1), Reg(0))),
        Instr(Opcode.SELECT, 3, (Reg(0), Imm(0xFF800000), In(0, 0))),
    ]
    for ins in prog:
        assert Instr.decode(ins.encode()) == ins
    bad_op = bytes([0xEE]) + prog[1].encode()[1:]
    with pytest.raises(RepOpsError, match="unknown opcode"):
        Instr.decode(bad_op)
    with pytest.raises(RepOpsError, match="takes 2 operands"):
        Instr.decode(bytes([int(Opcode.FADD)]) + prog[1].encode()[1:])
    with pytest.raises(RepOpsError, match="21 bytes"):
        Instr.decode(b"\x01")


def test_check_policy_detects_flushed_subnormals() -> None:
    from protocol.repops.policy import PolicyError, check_policy

    check_policy("cpu")
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    try:
        with pytest.raises(PolicyError, match="subnormals are flushed"):
            check_policy("cpu")
    finally:
        torch.set_flush_denormal(False)
    check_policy("cpu")
