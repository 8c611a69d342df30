"""Elementary functions built only from the RepOps instruction set.

Vendor math libraries (``torch.exp``, ``torch.sqrt``, libm, CUDA's intrinsics) differ between builds
and devices, so each function here is a fixed sequence of + - * /, comparisons, selects and integer
operations on the float's bits: range reduction, a polynomial or Newton iteration, reconstruction.
Every branch is computed and the answer chosen with SELECT, so the instruction sequence never depends
on the data. Each function takes a backend ``k`` (see :mod:`protocol.repops.backend`) and runs
vectorised on torch or traced on the scalar evaluator.

Constants are given as binary32 bit patterns or as Python floats that are exactly the binary32 value
meant (``k.const`` rounds to nearest). Accuracy against float64, measured over dense sweeps by
``tests/test_repops_fmath.py``, is recorded in docs/REPOPS.md.
"""

from __future__ import annotations

from typing import Any

from protocol.repops.policy import CANONICAL_NAN_BITS, POS_INF_BITS

V = Any  # a backend value (torch tensor or traced array)

# exp: Cody–Waite reduction x = n*ln2 + r with ln2 split so n*LN2_HI is exact for |n| <= 255.
LOG2E = 0x3FB8AA3B  # 1.44269502
EXP_LN2_HI = 0x3F317200  # 0.693145752 (16 significant bits)
EXP_LN2_LO = 0x35BFBE8E  # 1.42860677e-06
EXP_LO = -104.0  # below: the result rounds to +0
EXP_HI = 89.0  # above: the result overflows to +inf
# Taylor coefficients 1/k! for k = 7..2 (binary32-rounded); c1 = c0 = 1.
EXP_POLY = (1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)

# log: x = 2^e * m, m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f), log(1+f) = 2 atanh(s).
LOG_LN2_HI = 0x3F317180  # 0.693138123
LOG_LN2_LO = 0x3717F7D1  # 9.05800061e-06
SQRT2 = 0x3FB504F3  # 1.41421354
# R(z) = z * (2/3 + z*(2/5 + z*(2/7 + z*(2/9 + z*2/11)))), z = s^2 (Taylor series of 2 atanh(s)/s - 2)
LOG_POLY = (2.0 / 11.0, 2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0)

# tanh: |x| < TANH_SMALL uses its odd Taylor series in z = x^2; above, 1 - 2 / (exp(2|x|) + 1).
TANH_SMALL = 0.55
TANH_POLY = (
    18888466084.0 / 194896477400625.0,
    -443861162.0 / 1856156927625.0,
    6404582.0 / 10854718875.0,
    -929569.0 / 638512875.0,
    21844.0 / 6081075.0,
    -1382.0 / 155925.0,
    62.0 / 2835.0,
    -17.0 / 315.0,
    2.0 / 15.0,
    -1.0 / 3.0,
)


# erf: |x| < 0.75 Taylor series x + x * (P(x^2) - 1), P(z) = 2/sqrt(pi) * sum_n (-z)^n / (n! (2n+1)),
# n = 0..11;
# 0.75 <= |x| < 4: 1 - exp(-x^2) * G(t), t = (x - 2.375) * (1/1.625), G a degree-14 fit of
# erfcx(x) = erfc(x) e^{x^2} on [0.75, 4] (Chebyshev interpolation at 4000 nodes, converted to
# monomials, rounded to binary32); |x| >= 4: 1.
ERF_C0M1 = 0x3E0375D4  # 2/sqrt(pi) - 1: the constant term is split off as x + x * (P(z) - 1)
ERF_SMALL = (
    0xB0A8EB8C, 0x327E62B9, 0xB42FBA17, 0x35DCF365, 0xB77A692E, 0x38FCD193,
    0xBA6016DA, 0x3BAB2DE7, 0xBCDC1672, 0x3DE71791, 0xBEC093A3, ERF_C0M1,
)  # fmt: skip
ERF_G = (
    0x3721B4C2, 0xB7CB744D, 0x37D9F42A, 0xB88809AA, 0x39569DF4, 0xB9F9522F, 0x3A88F996, 0xBB178847,
    0x3BA317DC, 0xBC2986E9, 0x3CAA2ECF, 0xBD247BF8, 0x3D986CAF, 0xBE06BEF6, 0x3E61CC3F,
)  # fmt: skip
ERF_SPLIT = 0.75
ERF_CENTER = 2.375
ERF_INV_HALF = 0x3F1D89D9  # 1/1.625


def pow2(k: Any, n: V) -> V:
    """2**n as binary32 for integer bits n with -126 <= n <= 127 (built from the exponent field)."""
    return k.fl(k.shl(k.iadd(n, k.imm(127)), 23))


def _nan(k: Any) -> V:
    return k.const_bits(CANONICAL_NAN_BITS)


def inf(k: Any) -> V:
    """+inf as a backend constant."""
    return k.const_bits(POS_INF_BITS)


def horner(k: Any, coeffs: tuple[float, ...], x: V) -> V:
    """c[0]*x^(n-1) + ... + c[n-1], as p <- c + p*x (FMULADD, two roundings) from the highest degree."""
    p = k.const(coeffs[0])
    for c in coeffs[1:]:
        p = k.muladd(k.const(c), p, x)
    return p


def horner_bits(k: Any, coeffs: tuple[int, ...], x: V) -> V:
    """:func:`horner` with coefficients given as binary32 bit patterns."""
    p = k.const_bits(coeffs[0])
    for c in coeffs[1:]:
        p = k.muladd(k.const_bits(c), p, x)
    return p


def sqrt(k: Any, x: V) -> V:
    """Square root.

    Subnormals are scaled by 2^24 first. x = m * 4^q with m in [1, 4) from the exponent bits;
    y0 = (2 + m) / 3 (as 2/3 + m/3), three Heron steps y <- 0.5 * (y + m / y), then y * 2^q
    (and * 2^-12 for scaled subnormals). sqrt(+-0) = +-0, sqrt(+inf) = +inf, sqrt(x < 0) = NaN.
    """
    tiny = k.lt(x, k.const(2.0**-126))
    xs = k.select(tiny, k.mul(x, k.const(2.0**24)), x)
    b = k.bits(xs)
    ee = k.isub(k.and_(k.shr(b, 23), k.imm(0xFF)), k.imm(127))
    q = k.sar(ee, 1)
    r = k.isub(ee, k.shl(q, 1))
    m = k.fl(k.or_(k.and_(b, k.imm(0x7FFFFF)), k.shl(k.iadd(r, k.imm(127)), 23)))
    y = k.muladd(k.const(2.0 / 3.0), k.const(1.0 / 3.0), m)
    half = k.const(0.5)
    for _ in range(3):
        y = k.mul(half, k.add(y, k.div(m, y)))
    res = k.mul(y, pow2(k, q))
    res = k.select(tiny, k.mul(res, k.const(2.0**-12)), res)
    return _specials_sqrt(k, x, res)


def _specials_sqrt(k: Any, x: V, res: V) -> V:
    res = k.select(k.eq(x, inf(k)), x, res)
    res = k.select(k.eq(x, k.const(0.0)), x, res)
    res = k.select(k.lt(x, k.const(0.0)), _nan(k), res)
    return k.select(k.eq(x, x), res, _nan(k))


def exp(k: Any, x: V) -> V:
    """e**x.

    x is clamped to [-104, 89] (the results outside round to +0 / overflow to +inf anyway);
    n = round_half_even(x * log2(e)) (F2I), r = (x - n*LN2_HI) - n*LN2_LO, p = Taylor polynomial of
    degree 7 in r by Horner, result = (p * 2^(n>>1)) * 2^(n - (n>>1)) so that gradual underflow rounds
    once. NaN stays NaN, exp(-inf) = +0, exp(+inf) = +inf.
    """
    xc = k.fmin(k.fmax(x, k.const(EXP_LO)), k.const(EXP_HI))
    n = k.f2i(k.mul(xc, k.const_bits(LOG2E)))
    nf = k.i2f(n)
    r = k.sub(xc, k.mul(nf, k.const_bits(EXP_LN2_HI)))
    r = k.sub(r, k.mul(nf, k.const_bits(EXP_LN2_LO)))
    p = horner(k, EXP_POLY, r)
    n1 = k.sar(n, 1)
    n2 = k.isub(n, n1)
    return k.mul(k.mul(p, pow2(k, n1)), pow2(k, n2))


def log(k: Any, x: V) -> V:
    """Natural logarithm.

    Subnormals are scaled by 2^25. x = 2^e * m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact),
    s = f / (2 + f), z = s*s, R = z * P(z) (Taylor series of 2*atanh), hfsq = 0.5*f*f, then
    log(x) = e*LN2_HI - ((hfsq - (s*(hfsq + R) + e*LN2_LO)) - f).
    log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, NaN stays NaN.
    """
    tiny = k.lt(x, k.const(2.0**-126))
    xs = k.select(tiny, k.mul(x, k.const(2.0**25)), x)
    adj = k.select(tiny, k.imm(25), k.imm(0))
    b = k.bits(xs)
    e = k.isub(k.isub(k.and_(k.shr(b, 23), k.imm(0xFF)), k.imm(127)), adj)
    m = k.fl(k.or_(k.and_(b, k.imm(0x7FFFFF)), k.imm(0x3F800000)))
    big = k.lt(k.const_bits(SQRT2), m)
    m = k.select(big, k.mul(m, k.const(0.5)), m)
    e = k.iadd(e, big)
    f = k.sub(m, k.const(1.0))
    s = k.div(f, k.add(k.const(2.0), f))
    z = k.mul(s, s)
    big_r = k.mul(z, horner(k, LOG_POLY, z))
    hfsq = k.mul(k.mul(k.const(0.5), f), f)
    ef = k.i2f(e)
    t = k.add(k.mul(s, k.add(hfsq, big_r)), k.mul(ef, k.const_bits(LOG_LN2_LO)))
    res = k.sub(k.mul(ef, k.const_bits(LOG_LN2_HI)), k.sub(k.sub(hfsq, t), f))
    res = k.select(k.eq(x, inf(k)), x, res)
    res = k.select(k.eq(x, k.const(0.0)), k.neg(inf(k)), res)
    res = k.select(k.lt(x, k.const(0.0)), _nan(k), res)
    return k.select(k.eq(x, x), res, _nan(k))


def tanh(k: Any, x: V) -> V:
    """Hyperbolic tangent.

    a = |x|; for a < 0.55 the odd Taylor series a + a*z*P(z), z = a*a (terms to a^21); otherwise
    1 - 2 / (exp(2a) + 1) (which reaches 1 and stays there, exp overflowing to inf included). The
    sign of x is then OR-ed back into the bits, so tanh(-0) = -0. NaN stays NaN.
    """
    a = k.abs(x)
    z = k.mul(a, a)
    small = k.muladd(a, k.mul(a, z), horner(k, TANH_POLY, z))
    e2 = exp(k, k.add(a, a))
    large = k.sub(k.const(1.0), k.div(k.const(2.0), k.add(e2, k.const(1.0))))
    res = k.select(k.lt(a, k.const(TANH_SMALL)), small, large)
    return k.fl(k.or_(k.bits(res), k.and_(k.bits(x), k.imm(0x80000000))))


def erf(k: Any, x: V) -> V:
    """Error function.

    a = |x|; a < 0.75: a + a * (P(a*a) - 1) (Taylor, 12 terms); otherwise with c = min(a, 4):
    1 - exp(-(c*c)) * G((c - 2.375) * (1/1.625)), G a polynomial fit of erfcx on [0.75, 4]; erf rounds
    to 1 from 3.92 on. The sign of x is OR-ed back (erf(-0) = -0, erf(-inf) = -1). NaN stays NaN.
    """
    a = k.abs(x)
    small = k.muladd(a, a, horner_bits(k, ERF_SMALL, k.mul(a, a)))
    c = k.fmin(a, k.const(4.0))
    t = k.mul(k.sub(c, k.const(ERF_CENTER)), k.const_bits(ERF_INV_HALF))
    e = exp(k, k.neg(k.mul(c, c)))
    large = k.sub(k.const(1.0), k.mul(e, horner_bits(k, ERF_G, t)))
    res = k.select(k.lt(a, k.const(ERF_SPLIT)), small, large)
    return k.fl(k.or_(k.bits(res), k.and_(k.bits(x), k.imm(0x80000000))))
