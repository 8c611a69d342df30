"""Bit-exact differential tests of the on-chain binary32 arbiter (``Float32Arbiter``).

The dispute game ends with the contract recomputing one float32 operation; if the contract disagrees
with IEEE-754 on a single input pair, an honest party can lose. So every basic operation is checked
bit for bit, on well over 100,000 operand pairs each, against two independent references: Berkeley
SoftFloat (``softfloatpy``, round to nearest even) and numpy's float32 (the host FPU). Every NaN is
canonicalised to 0x7FC00000 before comparing, which is the float policy the arbiter implements.

The vectors are random bit patterns, random normal numbers, and targeted cases: every pair of a
list of special values (zeros, subnormals, the largest finite, infinities, NaNs with several
payloads and signs), exponent differences of 0..40 (24–26 is where an addend stops mattering),
exact ties at the rounding point and pairs just above and below them, catastrophic cancellation,
subnormal results, and the overflow and underflow boundaries.

The bulk runs in a handful of batched ``eth_call``\\ s against one contract deployed on the test
session's anvil; calldata is encoded and results decoded with numpy, so the whole module runs in
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import softfloatpy as sf
from web3 import Web3

from protocol.chain.batch import encode_uint_arrays

pytestmark = pytest.mark.anvil

CANONICAL_NAN = 0x7FC00000
SEED = 0x5F32_0004
BATCH = 4096  # pairs per eth_call: ~2,500 gas each incl. calldata, well under anvil's 60M gas limit
CALL_GAS = 55_000_000

U32 = np.uint32
U64 = np.uint64

# Special operands: each appears with both signs and is paired with every other one.
SPECIAL_MAGNITUDES = [
    0x00000000,  # 0
    0x00000001,  # smallest subnormal 2^-149
    0x00000002,
    0x00000003,
    0x00400000,  # 2^-127, a subnormal with one bit
    0x007FFFFF,  # largest subnormal
    0x00800000,  # smallest normal 2^-126
    0x00800001,
    0x00FFFFFF,
    0x0C800000,
    0x33000000,  # 2^-25
    0x33800000,  # 2^-24
    0x34000000,  # 2^-23
    0x3DCCCCCD,  # 0.1
    0x3F7FFFFF,  # 1 - 2^-24
    0x3F800000,  # 1
    0x3F800001,  # 1 + 2^-23
    0x3FC00000,  # 1.5
    0x40000000,  # 2
    0x40400000,  # 3
    0x4B000000,  # 2^23
    0x4B800000,  # 2^24
    0x4B800001,
    0x7E800000,  # 2^126
    0x7F000000,  # 2^127
    0x7F7FFFFE,
    0x7F7FFFFF,  # largest finite
    0x7F800000,  # infinity
    0x7F800001,  # signalling NaN
    0x7FA00000,  # signalling NaN with another payload
    0x7FC00000,  # the canonical quiet NaN
    0x7FC00001,  # quiet NaN with a payload
    0x7FFFFFFF,
]
SPECIALS = np.array(SPECIAL_MAGNITUDES + [m | 0x80000000 for m in SPECIAL_MAGNITUDES], dtype=U32)

BINARY_OPS = ("add", "sub", "mul", "div")


# ================================================================================================
#                                          references
# ================================================================================================


def canonical(bits: np.ndarray) -> np.ndarray:
    """The bit patterns with every NaN replaced by the canonical quiet NaN."""
    bits = bits.astype(U32)
    nan = (bits & U32(0x7FFFFFFF)) > U32(0x7F800000)
    return np.where(nan, U32(CANONICAL_NAN), bits).astype(U32)


_SF_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": sf.f32_add,
    "sub": sf.f32_sub,
    "mul": sf.f32_mul,
    "div": sf.f32_div,
}


def _sf(bits: int) -> sf.Float32:
    return sf.Float32.from_bytes(int(bits).to_bytes(4, "big"))


def softfloat_ref(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Berkeley SoftFloat's result of ``op`` (round to nearest even) for every pair, as bits."""
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    fn = _SF_OPS[op]
    out = np.fromiter(
        (
            int.from_bytes(fn(_sf(x), _sf(y)).to_bytes(), "big")
            for x, y in zip(a.tolist(), b.tolist(), strict=True)
        ),
        dtype=U32,
        count=len(a),
    )
    return canonical(out)


def numpy_ref(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The host FPU's float32 result of ``op`` through numpy, as bits."""
    fa, fb = a.view(np.float32), b.view(np.float32)
    with np.errstate(all="ignore"):
        r = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](fa, fb)
    return canonical(r.astype(np.float32).view(U32))


# ================================================================================================
#                                 batched eth_call with numpy ABI
# ================================================================================================


def _decode_u32_array(raw: bytes, n: int) -> np.ndarray:
    """Decode a returned ``uint32[]`` / ``uint8[]`` of length ``n`` (one 32-byte word per element)."""
    assert int.from_bytes(raw[32:64], "big") == n, "returned array has the wrong length"
    words = np.frombuffer(raw[64:], dtype=">u4").reshape(n, 8)
    return words[:, 7].astype(U32)


def call_batch(w3: Web3, address: str, signature: str, *arrays: np.ndarray) -> np.ndarray:
    """Run ``signature`` element-wise over ``arrays`` in BATCH-sized eth_calls; results as uint32."""
    selector = Web3.keccak(text=signature)[:4]
    out = []
    for start in range(0, len(arrays[0]), BATCH):
        chunk = [arr[start : start + BATCH] for arr in arrays]
        data = encode_uint_arrays(selector, list(chunk))
        raw = w3.eth.call({"to": address, "data": data, "gas": CALL_GAS})
        out.append(_decode_u32_array(bytes(raw), len(chunk[0])))
    return np.concatenate(out)


@pytest.fixture(scope="module")
def arbiter(anvil_chain: Any) -> tuple[Web3, str]:
    """One Float32Arbiter on the session anvil: (web3, address)."""
    contract = anvil_chain.deploy("Float32Arbiter", key=anvil_chain.dev_keys[0])
    return anvil_chain.w3, contract.address


# ================================================================================================
#                                           vectors
# ================================================================================================


def _pack(sign: np.ndarray, exp: np.ndarray, frac: np.ndarray) -> np.ndarray:
    return ((sign.astype(U32) << U32(31)) | (exp.astype(U32) << U32(23)) | frac.astype(U32)).astype(U32)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2, n)


def _fracs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 23, n)


def _shuffled_pair(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap the operands of a random half of the pairs (tests both operand orders)."""
    swap = rng.integers(0, 2, len(a)).astype(bool)
    return np.where(swap, b, a).astype(U32), np.where(swap, a, b).astype(U32)


def special_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of special operands (NaN/inf/zero/subnormal/extreme in every position)."""
    a, b = np.meshgrid(SPECIALS, SPECIALS, indexing="ij")
    return a.ravel(), b.ravel()


def generic_pairs(rng: np.random.Generator, n_bits: int, n_normal: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random bit patterns, plus random normal numbers of moderate exponent."""
    a_bits = rng.integers(0, 1 << 32, n_bits, dtype=np.uint64).astype(U32)
    b_bits = rng.integers(0, 1 << 32, n_bits, dtype=np.uint64).astype(U32)
    a_norm = _pack(_signs(rng, n_normal), rng.integers(97, 158, n_normal), _fracs(rng, n_normal))
    b_norm = _pack(_signs(rng, n_normal), rng.integers(97, 158, n_normal), _fracs(rng, n_normal))
    # Special operands against random ones: NaN/inf/zero in either position with ordinary partners.
    n_mix = 4096
    s = SPECIALS[rng.integers(0, len(SPECIALS), n_mix)]
    r = rng.integers(0, 1 << 32, n_mix, dtype=np.uint64).astype(U32)
    s_a, s_b = _shuffled_pair(rng, s, r)
    return np.concatenate([a_bits, a_norm, s_a]), np.concatenate([b_bits, b_norm, s_b])


def add_pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Targeted addends: exponent differences, ties, cancellation, subnormals, overflow."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    # Exponent differences 0..40, densest around 22..28 where the smaller addend stops mattering.
    for d in range(41):
        n = 3000 if 22 <= d <= 28 else 700
        ea = rng.integers(d + 1, 255, n)
        a = _pack(_signs(rng, n), ea, _fracs(rng, n))
        b = _pack(_signs(rng, n), ea - d, _fracs(rng, n))
        parts.append(_shuffled_pair(rng, a, b))
    # Exact ties: b is exactly half an ulp of a (or 1.5 / 2.5 ulps), and one b-ulp above or below.
    n = 12000
    ea = rng.integers(26, 255, n)
    a = _pack(_signs(rng, n), ea, _fracs(rng, n))
    halves = np.array([0x000000, 0x400000, 0x200000], dtype=U32)[rng.integers(0, 3, n)]
    # exponent ea - 24 with fraction 0 is half an ulp of a; fraction 0x400000 at ea - 23 is 1.5 ulp ...
    eb = np.where(halves == 0, ea - 24, ea - 23)
    b = _pack(_signs(rng, n), eb, halves)
    nudge = rng.integers(-1, 2, n).astype(np.int64)
    b = (b.astype(np.int64) + nudge).astype(U32)
    parts.append(_shuffled_pair(rng, a, b))
    # Ties at the subnormal scale: sums of tiny numbers that land exactly between two subnormals
    # cannot happen (subnormals are exact), but halfway cases of small normals do.
    n = 6000
    a = _pack(_signs(rng, n), rng.integers(1, 26, n), _fracs(rng, n))
    b = _pack(_signs(rng, n), np.zeros(n, dtype=np.int64), _fracs(rng, n))
    parts.append(_shuffled_pair(rng, a, b))
    # Catastrophic cancellation: b = -(a + k) for small pattern offsets k.
    n = 10000
    a = _pack(_signs(rng, n), rng.integers(0, 255, n), _fracs(rng, n))
    k = rng.integers(-4, 5, n).astype(np.int64)
    b_mag = np.clip((a & U32(0x7FFFFFFF)).astype(np.int64) + k, 0, 0x7F7FFFFF).astype(U32)
    b = (b_mag | (~a & U32(0x80000000))).astype(U32)
    parts.append(_shuffled_pair(rng, a, b))
    # Overflow boundary: near the largest finite plus about half its ulp.
    n = 6000
    a = _pack(np.zeros(n, dtype=np.int64), np.full(n, 254), rng.integers((1 << 23) - 64, 1 << 23, n))
    b = _pack(np.zeros(n, dtype=np.int64), rng.integers(228, 233, n), _fracs(rng, n))
    sign = _signs(rng, n).astype(U32) << U32(31)
    parts.append(_shuffled_pair(rng, a | sign, b | sign))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _near_tie_products(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Significand pairs whose 48-bit product lies at, or one unit off, a rounding midpoint."""
    q = rng.integers(1 << 23, 1 << 24, n).astype(U64)
    s = rng.integers(23, 25, n).astype(U64)
    target = (U64(2) * q + U64(1)) << (s - U64(1))  # (q + 1/2) * 2^s: a midpoint at 24 bits
    ma = rng.integers(1 << 23, 1 << 24, n).astype(U64)
    mb = (target + ma // U64(2)) // ma
    mb = (mb.astype(np.int64) + rng.integers(-1, 2, n)).astype(U64)
    ok = (mb >= U64(1 << 23)) & (mb < U64(1 << 24))
    # Exact ties: an odd ma below 2^25/3 times 3 * 2^22 is a midpoint exactly.
    n_exact = n // 4
    ma_exact = rng.integers(1 << 22, (1 << 25) // 6, n_exact).astype(U64) * U64(2) + U64(1)
    mb_exact = np.full(n_exact, 3 << 22, dtype=U64)
    return (
        np.concatenate([ma[ok], ma_exact]).astype(np.int64),
        np.concatenate([mb[ok], mb_exact]).astype(np.int64),
    )


def mul_pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Targeted factors: midpoints, overflow/underflow boundaries, subnormal operands."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    ma, mb = _near_tie_products(rng, 40000)
    n = len(ma)
    ea = rng.integers(1, 255, n)
    # Result exponent ea + eb - 127 anywhere from deep underflow to overflow, mostly normal.
    er = np.where(rng.random(n) < 0.7, rng.integers(1, 254, n), rng.integers(-30, 260, n))
    eb = np.clip(er - ea + 127, 1, 254)
    a = _pack(_signs(rng, n), ea, ma & ((1 << 23) - 1))
    b = _pack(_signs(rng, n), eb, mb & ((1 << 23) - 1))
    parts.append(_shuffled_pair(rng, a, b))
    # Results around the subnormal range and the overflow threshold with random significands.
    n = 20000
    ea = rng.integers(1, 255, n)
    er = np.where(rng.random(n) < 0.5, rng.integers(-26, 3, n), rng.integers(252, 257, n))
    eb = np.clip(er - ea + 127, 1, 254)
    a = _pack(_signs(rng, n), ea, _fracs(rng, n))
    b = _pack(_signs(rng, n), eb, _fracs(rng, n))
    parts.append(_shuffled_pair(rng, a, b))
    # Subnormal operands times normals large enough to bring the product back to the normal range.
    n = 12000
    a = _pack(_signs(rng, n), np.zeros(n, dtype=np.int64), _fracs(rng, n))
    b = _pack(_signs(rng, n), rng.integers(100, 255, n), _fracs(rng, n))
    parts.append(_shuffled_pair(rng, a, b))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def div_pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Targeted quotients: near midpoints, exact quotients, overflow/underflow, subnormals."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    # ma / mb within a hair of (q + 1/2) * 2^-s: ma = round((2q + 1) * mb / 2^(s+1)).
    n = 40000
    q = rng.integers(1 << 23, 1 << 24, n).astype(U64)
    mb = rng.integers(1 << 23, 1 << 24, n).astype(U64)
    s = rng.integers(23, 25, n).astype(U64)
    # (2q + 1) * mb < 2^49, exact in uint64.
    num = (U64(2) * q + U64(1)) * mb
    ma = (num + (U64(1) << s)) >> (s + U64(1))
    ma = (ma.astype(np.int64) + rng.integers(-1, 2, n)).astype(U64)
    ok = (ma >= U64(1 << 23)) & (ma < U64(1 << 24))
    ma, mb = ma[ok].astype(np.int64), mb[ok].astype(np.int64)
    n = len(ma)
    eb = rng.integers(1, 255, n)
    er = np.where(rng.random(n) < 0.7, rng.integers(1, 254, n), rng.integers(-30, 260, n))
    ea = np.clip(er + eb - 127, 1, 254)
    parts.append(
        (
            _pack(_signs(rng, n), ea, ma & ((1 << 23) - 1)),
            _pack(_signs(rng, n), eb, mb & ((1 << 23) - 1)),
        )
    )
    # Exact quotients: ma = mb * k.
    n = 8000
    k = rng.integers(1, 16, n)
    mb = rng.integers(1 << 23, 1 << 24, n) >> rng.integers(0, 5, n)
    mb = np.maximum(mb, 1)
    ma = mb * k
    shift = np.maximum(0, np.ceil(np.log2(ma + 1)).astype(np.int64) - 24)
    ma, mb = ma >> shift, mb >> shift
    good = (ma >= (1 << 23)) & (ma < (1 << 24)) & (mb >= (1 << 23))
    ma, mb = ma[good], mb[good]
    n = len(ma)
    eb = rng.integers(1, 255, n)
    ea = np.clip(rng.integers(1, 254, n), 1, 254)
    parts.append(
        (_pack(_signs(rng, n), ea, ma & ((1 << 23) - 1)), _pack(_signs(rng, n), eb, mb & ((1 << 23) - 1)))
    )
    # Quotients around underflow and overflow with random significands.
    n = 20000
    eb = rng.integers(1, 255, n)
    er = np.where(rng.random(n) < 0.5, rng.integers(-26, 3, n), rng.integers(252, 257, n))
    ea = np.clip(er + eb - 127, 1, 254)
    parts.append((_pack(_signs(rng, n), ea, _fracs(rng, n)), _pack(_signs(rng, n), eb, _fracs(rng, n))))
    # Subnormal dividends and divisors.
    n = 12000
    sub = _pack(_signs(rng, n), np.zeros(n, dtype=np.int64), _fracs(rng, n))
    other = _pack(_signs(rng, n), rng.integers(0, 255, n), _fracs(rng, n))
    parts.append(_shuffled_pair(rng, sub, other))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def vectors(op: str) -> tuple[np.ndarray, np.ndarray]:
    """All operand pairs for ``op``: specials, generic random, and the op's targeted cases."""
    rng = np.random.default_rng([SEED, BINARY_OPS.index(op)])
    targeted = {"add": add_pairs, "sub": add_pairs, "mul": mul_pairs, "div": div_pairs}[op](rng)
    sp = special_pairs()
    gen = generic_pairs(rng, 30000, 20000)
    a = np.concatenate([sp[0], gen[0], targeted[0]]).astype(U32)
    b = np.concatenate([sp[1], gen[1], targeted[1]]).astype(U32)
    return a, b


def _mismatches(a: np.ndarray, b: np.ndarray, got: np.ndarray, want: np.ndarray, limit: int = 8) -> str:
    bad = np.nonzero(got != want)[0][:limit]
    return "; ".join(f"{a[i]:#010x},{b[i]:#010x}: got {got[i]:#010x} want {want[i]:#010x}" for i in bad)


# ================================================================================================
#                                            tests
# ================================================================================================


@pytest.mark.parametrize("op", BINARY_OPS)
def test_references_agree(op: str) -> None:
    """SoftFloat and the host FPU agree on the vectors, so either is a fair reference."""
    a, b = vectors(op)
    want, host = softfloat_ref(op, a, b), numpy_ref(op, a, b)
    assert np.array_equal(want, host), _mismatches(a, b, host, want)


@pytest.mark.parametrize("op", BINARY_OPS)
def test_arbiter_matches_softfloat_bit_exactly(arbiter: tuple[Web3, str], op: str) -> None:
    """``Float32Arbiter.<op>`` equals Berkeley SoftFloat on >= 100,000 vectors, bit for bit."""
    a, b = vectors(op)
    assert len(a) >= 100_000
    got = call_batch(*arbiter, f"{op}Batch(uint32[],uint32[])", a, b)
    want = softfloat_ref(op, a, b)
    bad = int(np.count_nonzero(got != want))
    assert bad == 0, f"{bad} of {len(a)} differ: " + _mismatches(a, b, got, want)
    # The results cover the cases the vectors were built for.
    mag = got & U32(0x7FFFFFFF)
    assert np.any(got == U32(CANONICAL_NAN)) and np.any(mag == U32(0x7F800000))
    assert np.any((mag > 0) & (mag < U32(0x00800000))), "no subnormal results"
    assert np.any(got == U32(0x80000000)) and np.any(got == U32(0))


def test_comparisons_match_softfloat(arbiter: tuple[Web3, str]) -> None:
    """lt / le / eq agree with SoftFloat's quiet comparisons on specials, random and close pairs."""
    rng = np.random.default_rng([SEED, 99])
    sp = special_pairs()
    gen = generic_pairs(rng, 20000, 10000)
    # Close pairs: equal, one ulp apart, and opposite-sign zeros.
    base = rng.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(U32)
    near = (base.astype(np.int64) + rng.integers(-1, 2, 20000)).astype(np.int64) & 0xFFFFFFFF
    a = np.concatenate([sp[0], gen[0], base]).astype(U32)
    b = np.concatenate([sp[1], gen[1], near.astype(U32)]).astype(U32)
    got = call_batch(*arbiter, "cmpBatch(uint32[],uint32[])", a, b)
    fa, fb = [_sf(x) for x in a.tolist()], [_sf(y) for y in b.tolist()]
    want = np.array(
        [
            int(sf.f32_lt_quiet(x, y)) | int(sf.f32_le_quiet(x, y)) << 1 | int(sf.f32_eq(x, y)) << 2
            for x, y in zip(fa, fb, strict=True)
        ],
        dtype=U32,
    )
    assert np.array_equal(got, want), _mismatches(a, b, got, want)
    with np.errstate(invalid="ignore"):
        host = (
            (a.view(np.float32) < b.view(np.float32)).astype(U32)
            | (a.view(np.float32) <= b.view(np.float32)).astype(U32) << U32(1)
            | (a.view(np.float32) == b.view(np.float32)).astype(U32) << U32(2)
        )
    assert np.array_equal(got, host), _mismatches(a, b, got, host)


def test_single_call_functions_match_batches(arbiter: tuple[Web3, str], anvil_chain: Any) -> None:
    """The external single-op functions (what a dispute calls) return what the batches return."""
    w3, address = arbiter
    contract = anvil_chain.contract("Float32Arbiter", address)
    pairs = [
        (0x3F800000, 0x33800000),
        (0x7F7FFFFF, 0x7F7FFFFF),
        (0x00000001, 0x3F000000),
        (0xFF800000, 0x7FC00001),
    ]
    for x, y in pairs:
        for op in BINARY_OPS:
            want = int(softfloat_ref(op, np.array([x], dtype=U32), np.array([y], dtype=U32))[0])
            assert getattr(contract.functions, op)(x, y).call() == want
        assert contract.functions.lt(x, y).call() == bool(sf.f32_lt_quiet(_sf(x), _sf(y)))
        assert contract.functions.eq(x, y).call() == bool(sf.f32_eq(_sf(x), _sf(y)))


def test_batch_length_mismatch_reverts(arbiter: tuple[Web3, str]) -> None:
    """Operand arrays of different lengths are rejected with BatchLengthMismatch(2, 1)."""
    w3, address = arbiter
    data = encode_uint_arrays(Web3.keccak(text="addBatch(uint32[],uint32[])")[:4], [np.zeros(2, U32), np.zeros(2, U32)])
    # Patch the second array's length word to 1: a well-formed call with mismatched lengths.
    second_len_at = 4 + 64 + 32 * 3
    data = data[:second_len_at] + (1).to_bytes(32, "big") + data[second_len_at + 32 :]
    with pytest.raises(Exception) as info:
        w3.eth.call({"to": address, "data": data})
    selector = Web3.keccak(text="BatchLengthMismatch(uint256,uint256)")[:4].hex()
    assert selector in str(info.value.args) or selector in repr(info.value)
