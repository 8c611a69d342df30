"""The on-chain RepOps instruction dispatcher against the off-chain reference evaluator.

``Float32Arbiter.execute(opcode, x0, x1, x2)`` (the ``RepOpsISA`` library) is what the one-step
verifier runs at the bottom of a dispute; ``protocol.repops.isa.execute`` is what honest parties
run off chain. They must agree bit for bit on every instruction, or an honest party could lose a
dispute. This module checks every executable opcode on special and random operands (and the int32
conversions additionally against Berkeley SoftFloat), in batched eth_calls on the session anvil.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import softfloatpy as sf
from web3 import Web3

from protocol.chain.batch import encode_uint_arrays
from protocol.repops.isa import ARITY, Imm, In, Instr, Opcode, Reg, execute

pytestmark = pytest.mark.anvil

U32 = np.uint32
BATCH = 4096
CALL_GAS = 55_000_000
SEED = 0x5F32_15A0

SPECIALS = [
    0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F000000, 0xBF000000, 0x3F800000,
    0xBF800000, 0x3FC00000, 0x40200000, 0xC0200000, 0x4B000000, 0x4B7FFFFF, 0x4EFFFFFF, 0x4F000000,
    0xCF000000, 0xCF000001, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
    0x7F800001, 0x7FFFFFFF,
]  # fmt: skip
EXECUTABLE = [op for op in Opcode if op != Opcode.LOAD]


def _words(rng: np.random.Generator, n: int) -> np.ndarray:
    """Operands for one opcode: a quarter specials, a quarter small-exponent floats, the rest random."""
    specials = np.array(SPECIALS, dtype=U32)[rng.integers(0, len(SPECIALS), n)]
    randoms = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(U32)
    # Floats of moderate magnitude, around the int32 range and half-integers: conversion edge cases.
    exp = rng.integers(118, 160, n).astype(U32)
    moderate = (
        (rng.integers(0, 2, n).astype(U32) << U32(31))
        | (exp << U32(23))
        | rng.integers(0, 1 << 23, n).astype(U32)
    )
    ints = rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64).astype(np.int64) >> rng.integers(0, 31, n)
    pick = rng.integers(0, 4, n)
    return np.choose(pick, [specials, randoms, moderate, (ints & 0xFFFFFFFF).astype(U32)]).astype(U32)


def isa_vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(opcodes, x0, x1, x2) covering every executable opcode with 6,000 operand triples each."""
    rng = np.random.default_rng(SEED)
    ops, xs = [], []
    for op in EXECUTABLE:
        n = 6000
        x0, x1, x2 = _words(rng, n), _words(rng, n), _words(rng, n)
        if op in (Opcode.SHL, Opcode.SHR, Opcode.SAR):
            x1 = rng.integers(0, 64, n).astype(U32)  # counts beyond 31 check the masking
        if op == Opcode.SELECT:
            x0 = np.where(rng.random(n) < 0.5, U32(0), x0).astype(U32)
        if op in (Opcode.IEQ, Opcode.FEQ, Opcode.FLE):
            x1 = np.where(rng.random(n) < 0.3, x0, x1).astype(U32)
        ops.append(np.full(n, int(op), dtype=U32))
        xs.append((x0, x1, x2))
    return (
        np.concatenate(ops),
        np.concatenate([x[0] for x in xs]),
        np.concatenate([x[1] for x in xs]),
        np.concatenate([x[2] for x in xs]),
    )


def execute_batch(w3: Web3, address: str, ops: np.ndarray, *xs: np.ndarray) -> np.ndarray:
    """``Float32Arbiter.executeBatch`` over all rows, BATCH rows per eth_call."""
    selector = Web3.keccak(text="executeBatch(uint8[],uint32[],uint32[],uint32[])")[:4]
    out = []
    for start in range(0, len(ops), BATCH):
        chunk = [a[start : start + BATCH] for a in (ops, *xs)]
        raw = bytes(w3.eth.call({"to": address, "data": encode_uint_arrays(selector, chunk), "gas": CALL_GAS}))
        n = len(chunk[0])
        assert int.from_bytes(raw[32:64], "big") == n
        out.append(np.frombuffer(raw[64:], dtype=">u4").reshape(n, 8)[:, 7].astype(U32))
    return np.concatenate(out)


@pytest.fixture(scope="module")
def arbiter(anvil_chain: Any) -> tuple[Web3, str]:
    """One Float32Arbiter on the session anvil: (web3, address)."""
    contract = anvil_chain.deploy("Float32Arbiter", key=anvil_chain.dev_keys[0])
    return anvil_chain.w3, contract.address


def test_execute_matches_reference_evaluator(arbiter: tuple[Web3, str]) -> None:
    """Every executable opcode agrees with protocol.repops.isa.execute on 6,000 operand triples."""
    ops, x0, x1, x2 = isa_vectors()
    got = execute_batch(*arbiter, ops, x0, x1, x2)
    rows = zip(ops.tolist(), x0.tolist(), x1.tolist(), x2.tolist(), strict=True)
    want = np.array([execute(Opcode(o), [a, b, c][: ARITY[Opcode(o)]]) for o, a, b, c in rows], dtype=U32)
    bad = np.nonzero(got != want)[0]
    detail = "; ".join(
        f"{Opcode(int(ops[i])).name}({x0[i]:#010x},{x1[i]:#010x},{x2[i]:#010x}): got {got[i]:#010x} want {want[i]:#010x}"
        for i in bad[:8]
    )
    assert len(bad) == 0, f"{len(bad)} of {len(ops)} differ: {detail}"
    assert set(np.unique(ops).tolist()) == {int(op) for op in EXECUTABLE}


def _sf_bits(x: Any) -> int:
    return int.from_bytes(x.to_bytes(), "big")


def _sf_to_i32(bits: int) -> int:
    """SoftFloat's f32_to_i32 (round to nearest even) of an in-range float, as uint32 bits."""
    x = sf.Float32.from_bytes(bits.to_bytes(4, "big"))
    return sf.f32_to_i32(x, sf.RoundingMode.NEAR_EVEN, False).to_int() & 0xFFFFFFFF


def test_int_conversions_match_softfloat(arbiter: tuple[Web3, str]) -> None:
    """I2F and in-range F2I agree with SoftFloat's i32_to_f32 / f32_to_i32 (round to nearest even)."""
    rng = np.random.default_rng([SEED, 1])
    n = 20000
    ints = (rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64) >> rng.integers(0, 31, n)).astype(np.int64)
    ints[:6] = [0, 1, -1, (1 << 31) - 1, -(1 << 31), (1 << 24) + 1]
    i_bits = (ints & 0xFFFFFFFF).astype(U32)
    # Floats within the int32 range: random, and exact half-integers (ties) of every parity.
    halves = (rng.integers(-(1 << 22), 1 << 22, n).astype(np.float32) + np.float32(0.5)).view(U32)
    mags = rng.integers(0, 0x4F000000, n).astype(U32)
    signs = rng.integers(0, 2, n).astype(U32) << U32(31)
    f_bits = np.concatenate([halves, (mags | signs).astype(U32)])
    zeros_i, zeros_f = np.zeros(n, U32), np.zeros(len(f_bits), U32)
    got_f = execute_batch(*arbiter, np.full(n, int(Opcode.I2F), U32), i_bits, zeros_i, zeros_i)
    got_i = execute_batch(*arbiter, np.full(len(f_bits), int(Opcode.F2I), U32), f_bits, zeros_f, zeros_f)
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    want_f = np.array([_sf_bits(sf.i32_to_f32(sf.Int32.from_int(int(v)))) for v in ints.tolist()], dtype=U32)
    want_i = np.array([_sf_to_i32(b) for b in f_bits.tolist()], dtype=U32)
    assert np.array_equal(got_f, want_f), np.nonzero(got_f != want_f)[0][:8]
    assert np.array_equal(got_i, want_i), np.nonzero(got_i != want_i)[0][:8]
    # And the host: numpy's int32 -> float32 rounds to nearest even as well.
    assert np.array_equal(got_f, ints.astype(np.int32).astype(np.float32).view(U32))


def test_execute_load_reverts(arbiter: tuple[Web3, str]) -> None:
    """LOAD is a proof matter, not arithmetic: the dispatcher rejects it with UnknownOpcode(0x30)."""
    w3, address = arbiter
    data = (
        Web3.keccak(text="execute(uint8,uint32,uint32,uint32)")[:4]
        + int(Opcode.LOAD).to_bytes(32, "big")
        + bytes(96)
    )
    with pytest.raises(Exception) as info:
        w3.eth.call({"to": address, "data": data})
    selector = Web3.keccak(text="UnknownOpcode(uint8)")[:4].hex()
    assert selector in repr(info.value) or selector in str(info.value.args)


def _random_instr(rng: np.random.Generator) -> Instr:
    """A well-formed instruction with random operands of every kind."""
    op = EXECUTABLE[int(rng.integers(0, len(EXECUTABLE)))] if rng.random() < 0.9 else Opcode.LOAD
    srcs: list[Reg | In | Imm] = []
    for i in range(ARITY[op]):
        kind = 3 if (op == Opcode.LOAD and i == 0) else int(rng.integers(1, 4))
        value = int(rng.integers(0, 1 << 32))
        if kind == 1:
            srcs.append(Reg(int(rng.integers(0, 1 << 16))))
        elif kind == 2:
            srcs.append(In(int(rng.integers(0, 256)), value))
        else:
            srcs.append(Imm(value))
    return Instr(op, int(rng.integers(0, 1 << 16)), tuple(srcs))


def test_decode_instr_matches_encode(arbiter: tuple[Web3, str], anvil_chain: Any) -> None:
    """``decodeInstr`` reads back exactly what isa.py's ``Instr.encode`` wrote, for every opcode."""
    contract = anvil_chain.contract("Float32Arbiter", arbiter[1])
    rng = np.random.default_rng([SEED, 2])
    kinds = {Reg: 1, In: 2, Imm: 3}
    for _ in range(120):
        ins = _random_instr(rng)
        opcode, dst, srcs = contract.functions.decodeInstr(ins.encode()).call()
        assert (opcode, dst) == (int(ins.op), ins.dst)
        for i, (kind, slot, value) in enumerate(srcs):
            if i >= len(ins.srcs):
                assert (kind, slot, value) == (0, 0, 0)
                continue
            src = ins.srcs[i]
            assert kind == kinds[type(src)]
            # In is (slot, flat index); Reg and Imm carry one value.
            assert (slot, value) == ((src[0], src[1]) if isinstance(src, In) else (0, src[0]))
