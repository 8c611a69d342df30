// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Float32
/// @notice IEEE-754 binary32 arithmetic on raw `uint32` bit patterns: the arithmetic the one-step
///         arbiter uses to recompute a single disputed float32 operation.
/// @dev Float policy (shared with the reproducible-operator engine, see docs/ARCHITECTURE.md):
///      - round to nearest, ties to even, for every rounding operation;
///      - gradual underflow: subnormal inputs and results are exact IEEE subnormals, never flushed;
///      - signed zeros and infinities exactly as IEEE-754 says (x - x = +0, -0 + -0 = -0, ...);
///      - every NaN result is the single canonical quiet NaN 0x7FC00000, whatever the payload or
///        sign of a NaN input; comparisons with a NaN are false (quiet, never revert).
///
///      Representation used inside the library: a finite operand is unpacked into an integer
///      significand `m` and a biased exponent `e` with value = m * 2^(e - 150). For a normal
///      number m carries the hidden bit (2^23 <= m < 2^24); a subnormal has e = 1 and m = fraction.
///      Because the EVM word is 256 bits wide, sums, products and quotients of significands are
///      computed exactly (or with an explicit sticky bit) in one word, and a single shared routine,
///      `_roundPack`, normalises and rounds every result. That replaces SoftFloat's 32-bit
///      shift-and-jam tricks with plain wide integer arithmetic.
///
///      Layout of the rounding routine's working significand: 24 result bits followed by three
///      extra bits, guard (G), round (R) and sticky (S), where S is the OR of every bit shifted out
///      below it ("shift right jamming"). RNE then rounds up when GRS > 100b, or GRS == 100b and the
///      kept LSB is 1.
// Every narrowing cast below packs a value already known to fit (a sign bit OR-ed with a pattern
// below 2^31, an int32 result below 2^31 in magnitude, or a deliberate two's-complement
// reinterpretation of a 32-bit word), and the shifts of a constant 1 build bit masks on purpose.
// forge-lint: disable-start(unsafe-typecast, incorrect-shift)
library Float32 {
    // =============================================================================================
    //                                         CONSTANTS
    // =============================================================================================

    /// @notice The sign bit of a binary32 pattern.
    uint32 internal constant SIGN_MASK = 0x80000000;
    /// @notice Everything but the sign bit (the magnitude).
    uint32 internal constant ABS_MASK = 0x7FFFFFFF;
    /// @notice The 23 stored fraction bits.
    uint32 internal constant FRAC_MASK = 0x007FFFFF;
    /// @notice +infinity; also the smallest magnitude whose exponent field is all ones.
    uint32 internal constant POS_INF = 0x7F800000;
    /// @notice -infinity.
    uint32 internal constant NEG_INF = 0xFF800000;
    /// @notice The one NaN every operation returns.
    uint32 internal constant CANONICAL_NAN = 0x7FC00000;
    /// @notice +0.
    uint32 internal constant POS_ZERO = 0x00000000;
    /// @notice -0.
    uint32 internal constant NEG_ZERO = 0x80000000;
    /// @notice +1.0.
    uint32 internal constant ONE = 0x3F800000;

    /// @dev The hidden bit of a normal significand.
    uint256 private constant HIDDEN_BIT = 0x800000;
    /// @dev Exponent bias (127) plus fraction width (23): value = m * 2^(e - 150).
    int256 private constant SIG_BIAS = 150;
    /// @dev Extra quotient bits of `div`: with a 1..24-bit dividend and divisor, (mA << 64) / mB
    ///      keeps at least 41 significant bits, far more than the 27 (24 + G, R, S) rounding needs.
    uint256 private constant DIV_SHIFT = 64;
    /// @dev Exponent difference from which the smaller addend can no longer change an RNE sum.
    ///      Any d >= 26 would do (see `add`); 32 keeps the exact aligned sum below 2^57.
    uint256 private constant ADD_FAR = 32;

    // =============================================================================================
    //                                       CLASSIFICATION
    // =============================================================================================

    /// @notice True when `x` is any NaN (exponent all ones, fraction nonzero), whatever its sign.
    function isNaN(uint32 x) internal pure returns (bool) {
        return x & ABS_MASK > POS_INF;
    }

    /// @notice True when `x` is +infinity or -infinity.
    function isInf(uint32 x) internal pure returns (bool) {
        return x & ABS_MASK == POS_INF;
    }

    /// @notice True when `x` is +0 or -0.
    function isZero(uint32 x) internal pure returns (bool) {
        return x & ABS_MASK == 0;
    }

    /// @notice True when `x` is neither infinite nor NaN.
    function isFinite(uint32 x) internal pure returns (bool) {
        return x & ABS_MASK < POS_INF;
    }

    /// @notice `x` itself, or the canonical NaN when `x` is any NaN.
    function canonicalize(uint32 x) internal pure returns (uint32) {
        return isNaN(x) ? CANONICAL_NAN : x;
    }

    // =============================================================================================
    //                                         ARITHMETIC
    // =============================================================================================

    /// @notice IEEE-754 binary32 addition a + b, round to nearest even.
    /// @dev Algorithm:
    ///      1. Specials: a NaN operand gives the canonical NaN; inf + (-inf) gives the canonical NaN;
    ///         otherwise an infinite operand is the result.
    ///      2. Order the operands by magnitude (|x| >= |y|) so the result takes x's sign and a
    ///         magnitude subtraction never goes negative. Unpack both to (m, e).
    ///      3. Alignment: with d = ex - ey, shift x's significand LEFT by d instead of shifting y's
    ///         right, so the aligned sum mx * 2^d +/- my is exact (no guard/sticky bits needed yet);
    ///         its value is that integer times 2^(ey - 150).
    ///         When d >= 26 the smaller addend satisfies |y| < 2^(ey - 126) <= 2^(ex - 152), which is
    ///         strictly less than half the spacing of binary32 numbers on either side of |x| (x is
    ///         normal there), so round-to-nearest returns x unchanged; the code returns x for
    ///         d >= ADD_FAR (32) and keeps the exact path below, bounding the sum by 2^57.
    ///      4. An exact zero sum is +0, except -0 + -0 = -0 (IEEE 754 §6.3 under RNE).
    ///      5. Cancellation needs no special case: `_roundPack` finds the leading bit of the exact
    ///         sum wherever it is, normalises, then rounds with guard/round/sticky bits.
    /// @param a The first operand's bit pattern.
    /// @param b The second operand's bit pattern.
    /// @return The bit pattern of the correctly rounded sum.
    function add(uint32 a, uint32 b) internal pure returns (uint32) {
        uint256 x = a;
        uint256 y = b;
        uint256 absX = x & ABS_MASK;
        uint256 absY = y & ABS_MASK;
        if (absX > POS_INF || absY > POS_INF) return CANONICAL_NAN;
        // Binary32 patterns of one sign order like their magnitudes: swap so that |x| >= |y|.
        if (absX < absY) {
            (x, y) = (y, x);
            (absX, absY) = (absY, absX);
        }
        if (absX == POS_INF) {
            // inf + (-inf) is invalid; inf + inf and inf + finite are inf.
            if (absY == POS_INF && x != y) return CANONICAL_NAN;
            return uint32(x);
        }
        (uint256 mx, uint256 ex) = _unpack(absX);
        (uint256 my, uint256 ey) = _unpack(absY);
        // unchecked: |x| >= |y| implies ex >= ey (the exponent field is the pattern's top bits and a
        // subnormal's field 0 is unpacked to 1, the exponent of the smallest normal), so d >= 0.
        // mx < 2^24 and d < ADD_FAR = 32 keep mx << d below 2^56; since mx * 2^d >= my, the
        // subtraction cannot underflow.
        unchecked {
            uint256 d = ex - ey;
            if (d >= ADD_FAR) return uint32(x);
            uint256 m = mx << d;
            if ((x ^ y) & SIGN_MASK == 0) {
                m += my;
            } else {
                m -= my;
            }
            // Exact zero: both operands -0 keeps -0; x + (-x) and +0 + -0 are +0 under RNE.
            if (m == 0) return uint32(x & y & SIGN_MASK);
            return _roundPack(x & SIGN_MASK, m, int256(ey) - SIG_BIAS);
        }
    }

    /// @notice IEEE-754 binary32 subtraction a - b, round to nearest even.
    /// @dev a - b is exactly a + (-b) in IEEE-754, signed zeros included (+0 - +0 = +0 + -0 = +0,
    ///      -0 - +0 = -0 + -0 = -0), so flip b's sign bit and add. A NaN b stays a NaN after the
    ///      flip and `add` canonicalises it.
    /// @param a The minuend's bit pattern.
    /// @param b The subtrahend's bit pattern.
    /// @return The bit pattern of the correctly rounded difference.
    function sub(uint32 a, uint32 b) internal pure returns (uint32) {
        return add(a, b ^ SIGN_MASK);
    }

    /// @notice IEEE-754 binary32 multiplication a * b, round to nearest even.
    /// @dev Algorithm:
    ///      1. Specials: NaN operand -> canonical NaN; inf * 0 -> canonical NaN; inf * nonzero ->
    ///         inf; 0 * finite -> zero. Every such result carries sign(a) XOR sign(b).
    ///      2. Unpack to (m, e); subnormal significands are used as they are (no pre-normalisation).
    ///      3. The 48-bit product ma * mb is exact in one word; its value is the product times
    ///         2^(ea + eb - 300).
    ///      4. `_roundPack` normalises the exact product (its leading bit may sit anywhere from bit
    ///         0 to bit 47 because of subnormal inputs), reduces it to 24 bits plus guard/round/
    ///         sticky, handles overflow to infinity and underflow to a subnormal, and rounds RNE.
    /// @param a The first factor's bit pattern.
    /// @param b The second factor's bit pattern.
    /// @return The bit pattern of the correctly rounded product.
    function mul(uint32 a, uint32 b) internal pure returns (uint32) {
        uint256 absA = a & ABS_MASK;
        uint256 absB = b & ABS_MASK;
        if (absA > POS_INF || absB > POS_INF) return CANONICAL_NAN;
        uint256 sign = (a ^ b) & SIGN_MASK;
        if (absA == POS_INF || absB == POS_INF) {
            if (absA == 0 || absB == 0) return CANONICAL_NAN;
            return uint32(sign | POS_INF);
        }
        if (absA == 0 || absB == 0) return uint32(sign);
        (uint256 ma, uint256 ea) = _unpack(absA);
        (uint256 mb, uint256 eb) = _unpack(absB);
        // unchecked: ma, mb < 2^24 so the product is below 2^48; ea, eb <= 254 so the exponent
        // arithmetic stays within [-298, 208].
        unchecked {
            return _roundPack(sign, ma * mb, int256(ea + eb) - 2 * SIG_BIAS);
        }
    }

    /// @notice IEEE-754 binary32 division a / b, round to nearest even.
    /// @dev Algorithm:
    ///      1. Specials: NaN operand -> canonical NaN; inf/inf and 0/0 -> canonical NaN; inf/finite
    ///         and nonzero/0 -> inf; finite/inf and 0/nonzero -> zero; signs XOR.
    ///      2. Unpack to (m, e). Scale the dividend by 2^64 and divide once: q = (ma << 64) / mb.
    ///         Even for the extreme 1 / (2^24 - 1) this leaves q >= 2^40, i.e. at least 41
    ///         significant quotient bits, more than the 24 + guard + round that rounding reads.
    ///      3. Sticky: a nonzero remainder means the exact quotient lies strictly between q and
    ///         q + 1. As q >= 2^40, `_roundPack` shifts it right by at least 14 bits, so every
    ///         rounding boundary (tie point) is a multiple of 2^16 in q's unit: neither the exact
    ///         quotient nor the odd q | 1 can sit on one, and no boundary lies between them. So RNE
    ///         of (q | 1) equals RNE of the exact quotient.
    ///      4. `_roundPack` normalises q * 2^(ea - eb - 64), handles overflow/underflow, rounds RNE.
    /// @param a The dividend's bit pattern.
    /// @param b The divisor's bit pattern.
    /// @return The bit pattern of the correctly rounded quotient.
    function div(uint32 a, uint32 b) internal pure returns (uint32) {
        uint256 absA = a & ABS_MASK;
        uint256 absB = b & ABS_MASK;
        if (absA > POS_INF || absB > POS_INF) return CANONICAL_NAN;
        uint256 sign = (a ^ b) & SIGN_MASK;
        if (absA == POS_INF) {
            if (absB == POS_INF) return CANONICAL_NAN;
            return uint32(sign | POS_INF);
        }
        if (absB == POS_INF) return uint32(sign);
        if (absB == 0) {
            if (absA == 0) return CANONICAL_NAN;
            return uint32(sign | POS_INF);
        }
        if (absA == 0) return uint32(sign);
        (uint256 ma, uint256 ea) = _unpack(absA);
        (uint256 mb, uint256 eb) = _unpack(absB);
        // unchecked: ma < 2^24, so ma << 64 < 2^88; mb >= 1 (b is nonzero) so the division is
        // defined; ea, eb are in [1, 254] so the exponent stays within [-317, 189].
        unchecked {
            uint256 num = ma << DIV_SHIFT;
            uint256 q = num / mb;
            if (q * mb != num) q |= 1;
            return _roundPack(sign, q, int256(ea) - int256(eb) - int256(DIV_SHIFT));
        }
    }

    /// @notice Fused-free multiply-add acc + a * b with two roundings: add(acc, mul(a, b)).
    /// @dev This is what a fixed-order dot product evaluates step by step on any IEEE machine
    ///      (`acc = acc + a * b` without FMA contraction), so it is the scalar step the engine's
    ///      matmul traces consist of.
    function mulAdd(uint32 acc, uint32 a, uint32 b) internal pure returns (uint32) {
        return add(acc, mul(a, b));
    }

    // =============================================================================================
    //                                        COMPARISONS
    // =============================================================================================

    /// @notice IEEE-754 quiet equality: false when either operand is NaN, and +0 == -0.
    function eq(uint32 a, uint32 b) internal pure returns (bool) {
        if (isNaN(a) || isNaN(b)) return false;
        return a == b || (a | b) & ABS_MASK == 0;
    }

    /// @notice IEEE-754 quiet less-than: false when either operand is NaN; -0 < +0 is false.
    /// @dev Positive patterns order like their values as unsigned integers, negative patterns in
    ///      reverse. Operands of different signs: a < b exactly when a is the negative one and not
    ///      both are zeros.
    function lt(uint32 a, uint32 b) internal pure returns (bool) {
        if (isNaN(a) || isNaN(b)) return false;
        bool negA = a & SIGN_MASK != 0;
        if (negA != (b & SIGN_MASK != 0)) return negA && (a | b) & ABS_MASK != 0;
        return negA ? a > b : a < b;
    }

    /// @notice IEEE-754 quiet less-or-equal: false when either operand is NaN; -0 <= +0 is true.
    function le(uint32 a, uint32 b) internal pure returns (bool) {
        if (isNaN(a) || isNaN(b)) return false;
        bool negA = a & SIGN_MASK != 0;
        if (negA != (b & SIGN_MASK != 0)) return negA || (a | b) & ABS_MASK == 0;
        return negA ? a >= b : a <= b;
    }

    /// @notice IEEE-754 quiet greater-than: lt with the operands swapped.
    function gt(uint32 a, uint32 b) internal pure returns (bool) {
        return lt(b, a);
    }

    /// @notice IEEE-754 quiet greater-or-equal: le with the operands swapped.
    function ge(uint32 a, uint32 b) internal pure returns (bool) {
        return le(b, a);
    }

    /// @notice The RepOps minimum: `b < a ? b : a`, then NaN canonicalised.
    /// @dev Deliberately the select-based definition every device computes the same way
    ///      (`torch.where(b < a, b, a)`), not IEEE 754-2019 `minimum`: with a NaN operand the
    ///      result is a (canonical NaN when a is NaN, a itself when only b is), and of two zeros
    ///      it returns a. So it is not commutative on NaNs and signed zeros, by design.
    function min(uint32 a, uint32 b) internal pure returns (uint32) {
        return canonicalize(lt(b, a) ? b : a);
    }

    /// @notice The RepOps maximum: `a < b ? b : a`, then NaN canonicalised (see `min`).
    function max(uint32 a, uint32 b) internal pure returns (uint32) {
        return canonicalize(lt(a, b) ? b : a);
    }

    /// @notice `cond ? a : b` on bit patterns; the selected pattern is returned unchanged.
    function select(bool cond, uint32 a, uint32 b) internal pure returns (uint32) {
        return cond ? a : b;
    }

    // =============================================================================================
    //                                      SIGN OPERATIONS
    // =============================================================================================

    /// @notice -x: flips the sign bit; a NaN input gives the canonical NaN (the float policy allows
    ///         exactly one NaN pattern anywhere in a trace).
    function neg(uint32 x) internal pure returns (uint32) {
        if (isNaN(x)) return CANONICAL_NAN;
        return x ^ SIGN_MASK;
    }

    /// @notice |x|: clears the sign bit; a NaN input gives the canonical NaN.
    function abs(uint32 x) internal pure returns (uint32) {
        if (isNaN(x)) return CANONICAL_NAN;
        return x & ABS_MASK;
    }

    // =============================================================================================
    //                                        CONVERSIONS
    // =============================================================================================

    /// @notice int32 -> binary32, round to nearest even (exact for |v| <= 2^24).
    /// @dev The magnitude (at most 2^31) is an exact significand with exponent 0; `_roundPack`
    ///      normalises it and rounds away the bits beyond 24. Zero converts to +0.
    function fromInt32(int32 v) internal pure returns (uint32) {
        if (v == 0) return POS_ZERO;
        uint256 sign = v < 0 ? SIGN_MASK : 0;
        // unchecked: widening to int256 first makes -type(int32).min = 2^31 representable.
        unchecked {
            int256 w = v;
            uint256 mag = uint256(w < 0 ? -w : w);
            return _roundPack(sign, mag, 0);
        }
    }

    /// @notice binary32 -> int32, rounding half to even, saturating: values beyond the int32 range
    ///         (infinities included) give type(int32).max or type(int32).min, and NaN gives 0.
    /// @dev Magnitudes of 2^31 and above saturate (the only one that fits, -2^31, is exactly
    ///      type(int32).min anyway). Otherwise value = m * 2^(e - 150): for e >= 150 it is the
    ///      integer m << (e - 150); below, shift right by s = 150 - e and round the dropped bits
    ///      against the half point 2^(s - 1), ties to the even quotient.
    function toInt32(uint32 x) internal pure returns (int32) {
        uint256 absX = x & ABS_MASK;
        if (absX > POS_INF) return 0;
        bool negative = x & SIGN_MASK != 0;
        if (absX >= 0x4F000000) return negative ? type(int32).min : type(int32).max;
        if (absX == 0) return 0;
        (uint256 m, uint256 e) = _unpack(absX);
        uint256 r;
        // unchecked: absX < 2^31 as a float means e <= 157, so m << (e - 150) < 2^31; for e < 150
        // the shift s = 150 - e is in [1, 149] (< 256), and the rounded quotient stays below 2^24.
        unchecked {
            if (e >= 150) {
                r = m << (e - 150);
            } else {
                uint256 s = 150 - e;
                r = m >> s;
                uint256 rest = m & ((1 << s) - 1);
                uint256 half = 1 << (s - 1);
                if (rest > half || (rest == half && r & 1 == 1)) r += 1;
            }
            // r < 2^31, so the negation and the casts are exact.
            return negative ? -int32(int256(r)) : int32(int256(r));
        }
    }

    // =============================================================================================
    //                                         INTERNALS
    // =============================================================================================

    /// @dev Splits a finite magnitude into (significand, biased exponent), value = m * 2^(e - 150).
    ///      A subnormal (or zero) has exponent field 0 and is read with e = 1 and no hidden bit,
    ///      which puts it on the same scale as the smallest normal numbers.
    function _unpack(uint256 absX) private pure returns (uint256 m, uint256 e) {
        e = absX >> 23;
        m = absX & FRAC_MASK;
        if (e == 0) {
            e = 1;
        } else {
            m |= HIDDEN_BIT;
        }
    }

    /// @dev Rounds the exact (or sticky-jammed) positive value m * 2^exp2 to binary32 with sign
    ///      bit `sign` (0 or SIGN_MASK), RNE. Requires 0 < m < 2^128.
    ///      1. Normalise: with l the index of m's leading bit, a normal result has biased exponent
    ///         be = exp2 + l + 127. be > 254 overflows to infinity (RNE never rounds an overflow
    ///         back to the largest finite number). be < 1 is a subnormal result: the exponent is
    ///         pinned to 1 (the subnormal scale) and fewer significand bits survive.
    ///      2. Scale m to the working significand sig = m * 2^(exp2 + 153 - be), which for a normal
    ///         result has its leading bit at bit 26: 24 result bits above G, R, S. Shifting right
    ///         ORs every dropped bit into the LSB (sticky), so no inexactness is lost.
    ///      3. Round: drop G, R, S and add one when GRS > 100b or GRS == 100b with an odd LSB.
    ///      4. Pack: ((be - 1) << 23) + sig24 adds the hidden bit into the exponent field, so a
    ///         rounding carry out of the significand (sig24 = 2^24) bumps the exponent and clears
    ///         the fraction by itself: 0x1.fffffep127 rounding up becomes exactly +inf, and the
    ///         largest subnormal rounding up becomes exactly the smallest normal (be = 1 adds 0).
    function _roundPack(uint256 sign, uint256 m, int256 exp2) private pure returns (uint32) {
        // unchecked: callers pass m < 2^128 and |exp2| < 400, so every exponent below is a small
        // int256; shifts by 256 or more give 0 in the EVM, and ((1 << r) - 1) then wraps to all
        // ones, which still selects exactly the dropped bits of m for the sticky test.
        unchecked {
            int256 be = exp2 + int256(_msb(m)) + 127;
            if (be > 254) return uint32(sign | POS_INF);
            if (be < 1) be = 1;
            int256 shift = exp2 + 153 - be;
            uint256 sig;
            if (shift >= 0) {
                sig = m << uint256(shift);
            } else {
                uint256 r = uint256(-shift);
                sig = m >> r;
                if (m & ((1 << r) - 1) != 0) sig |= 1;
            }
            uint256 grs = sig & 7;
            sig >>= 3;
            if (grs > 4 || (grs == 4 && sig & 1 == 1)) sig += 1;
            return uint32(sign | ((uint256(be - 1) << 23) + sig));
        }
    }

    /// @dev Index of the most significant set bit of 0 < x < 2^128 (binary search, 7 steps).
    function _msb(uint256 x) private pure returns (uint256 r) {
        // unchecked: only right shifts of x and additions of at most 127 to r.
        unchecked {
            if (x >= 1 << 64) {
                x >>= 64;
                r = 64;
            }
            if (x >= 1 << 32) {
                x >>= 32;
                r += 32;
            }
            if (x >= 1 << 16) {
                x >>= 16;
                r += 16;
            }
            if (x >= 1 << 8) {
                x >>= 8;
                r += 8;
            }
            if (x >= 1 << 4) {
                x >>= 4;
                r += 4;
            }
            if (x >= 1 << 2) {
                x >>= 2;
                r += 2;
            }
            if (x >= 1 << 1) r += 1;
        }
    }
}
// forge-lint: disable-end(unsafe-typecast, incorrect-shift)
