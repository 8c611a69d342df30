// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "../../src/softfloat/Float32.sol";
import {SoftFloatTestBase} from "./SoftFloatTestBase.sol";

/// @notice Fuzz tests of algebraic identities that IEEE-754 binary32 guarantees bit for bit under
///         round-to-nearest-even, and of the comparisons against their definitions. Inputs are raw
///         32-bit patterns, so NaNs, infinities, zeros and subnormals all occur; a second set of
///         tests maps the fuzz input onto small-exponent patterns so subnormal arithmetic gets
///         exercised much more often than uniform patterns would.
contract Float32PropertiesTest is SoftFloatTestBase {
    uint32 internal constant NAN = 0x7FC00000;
    uint32 internal constant ONE = 0x3F800000;
    uint32 internal constant SIGN = 0x80000000;

    /// @dev Folds a fuzz word into the subnormal / smallest-normal range, keeping its sign.
    function _tiny(uint32 x) internal pure returns (uint32) {
        return (x & 0x80000000) | (x & 0x00FFFFFF);
    }

    /// @dev A value's total-order key for non-NaN patterns with both zeros mapped to one key.
    function _key(uint32 x) internal pure returns (int256) {
        int256 mag = int256(uint256(x & 0x7FFFFFFF));
        return x & SIGN != 0 ? -mag : mag;
    }

    // ------------------------------------------------------------------------ commutativity

    function test_add_commutes_succeeds(uint32 a, uint32 b) public pure {
        _eq(Float32.add(a, b), Float32.add(b, a));
    }

    function test_add_commutesOnTinyValues_succeeds(uint32 a, uint32 b) public pure {
        _eq(Float32.add(_tiny(a), _tiny(b)), Float32.add(_tiny(b), _tiny(a)));
    }

    function test_mul_commutes_succeeds(uint32 a, uint32 b) public pure {
        _eq(Float32.mul(a, b), Float32.mul(b, a));
    }

    // ------------------------------------------------------------------------ identities

    function test_sub_selfIsPositiveZero_succeeds(uint32 x) public pure {
        uint32 expected = Float32.isFinite(x) ? 0 : NAN; // inf - inf and NaN - NaN are NaN
        _eq(Float32.sub(x, x), expected);
    }

    function test_add_negationIsPositiveZero_succeeds(uint32 x) public pure {
        uint32 expected = Float32.isFinite(x) ? 0 : NAN;
        _eq(Float32.add(x, x ^ SIGN), expected);
    }

    function test_mul_byOne_succeeds(uint32 x) public pure {
        _eq(Float32.mul(x, ONE), Float32.canonicalize(x));
        _eq(Float32.mul(ONE, x), Float32.canonicalize(x));
    }

    function test_div_byOne_succeeds(uint32 x) public pure {
        _eq(Float32.div(x, ONE), Float32.canonicalize(x));
    }

    function test_div_selfIsOne_succeeds(uint32 x) public pure {
        bool ordinary = Float32.isFinite(x) && !Float32.isZero(x);
        _eq(Float32.div(x, x), ordinary ? ONE : NAN);
    }

    function test_add_negativeZeroIsIdentity_succeeds(uint32 x) public pure {
        // x + (-0) == x for every x, +0 included (+0 + -0 = +0); NaN aside.
        _eq(Float32.add(x, SIGN), Float32.canonicalize(x));
    }

    function test_mul_byTwoEqualsDoubling_succeeds(uint32 x) public pure {
        // 2x and x + x are the same exact real, rounded once: identical bits, overflow included.
        _eq(Float32.mul(x, 0x40000000), Float32.add(x, x));
        _eq(Float32.mul(_tiny(x), 0x40000000), Float32.add(_tiny(x), _tiny(x)));
    }

    function test_div_byTwoEqualsHalving_succeeds(uint32 x) public pure {
        _eq(Float32.div(x, 0x40000000), Float32.mul(x, 0x3F000000));
        _eq(Float32.div(_tiny(x), 0x40000000), Float32.mul(_tiny(x), 0x3F000000));
    }

    // ------------------------------------------------------------------------ sign symmetry

    function test_mul_signSymmetry_succeeds(uint32 a, uint32 b) public pure {
        uint32 r = Float32.mul(a, b);
        uint32 flipped = Float32.mul(a ^ SIGN, b);
        _eq(flipped, r == NAN ? NAN : r ^ SIGN);
        _eq(Float32.mul(a ^ SIGN, b ^ SIGN), r);
    }

    function test_div_signSymmetry_succeeds(uint32 a, uint32 b) public pure {
        uint32 r = Float32.div(a, b);
        _eq(Float32.div(a ^ SIGN, b), r == NAN ? NAN : r ^ SIGN);
        _eq(Float32.div(a, b ^ SIGN), r == NAN ? NAN : r ^ SIGN);
    }

    function test_add_signSymmetry_succeeds(uint32 a, uint32 b) public pure {
        uint32 r = Float32.add(a, b);
        uint32 mirrored = Float32.add(a ^ SIGN, b ^ SIGN);
        if (r == NAN) {
            _eq(mirrored, NAN);
        } else if (Float32.isZero(r) && (a ^ b) & SIGN != 0) {
            // x + (-x) is +0 whichever side is negative.
            _eq(mirrored, 0);
        } else {
            _eq(mirrored, r ^ SIGN);
        }
    }

    function test_sub_isAddOfNegation_succeeds(uint32 a, uint32 b) public pure {
        _eq(Float32.sub(a, b), Float32.add(a, Float32.neg(b)));
    }

    function test_sub_antisymmetric_succeeds(uint32 a, uint32 b) public pure {
        uint32 r = Float32.sub(a, b);
        uint32 s = Float32.sub(b, a);
        if (r == NAN || Float32.isZero(r)) {
            // a - a = +0 both ways; -0 - +0 = -0 but +0 - -0 = +0.
            _eq(Float32.isZero(s) || s == NAN, true);
        } else {
            _eq(s, r ^ SIGN);
        }
    }

    // ------------------------------------------------------------------------ results are canonical

    function test_arithmetic_nanIsCanonical_succeeds(uint32 a, uint32 b) public pure {
        uint32[4] memory r = [Float32.add(a, b), Float32.sub(a, b), Float32.mul(a, b), Float32.div(a, b)];
        for (uint256 i; i < 4; ++i) {
            if (_isNaN(r[i])) _eq(r[i], NAN);
        }
    }

    // ------------------------------------------------------------------------ comparisons

    function test_compare_matchesDefinition_succeeds(uint32 a, uint32 b) public pure {
        bool unordered = _isNaN(a) || _isNaN(b);
        bool ltDef = !unordered && _key(a) < _key(b);
        bool eqDef = !unordered && _key(a) == _key(b);
        _eq(Float32.lt(a, b), ltDef);
        _eq(Float32.eq(a, b), eqDef);
        _eq(Float32.le(a, b), ltDef || eqDef);
        _eq(Float32.gt(a, b), !unordered && _key(a) > _key(b));
        _eq(Float32.ge(a, b), !unordered && _key(a) >= _key(b));
    }

    function test_compare_trichotomy_succeeds(uint32 a, uint32 b) public pure {
        uint256 holds = (Float32.lt(a, b) ? 1 : 0) + (Float32.eq(a, b) ? 1 : 0) + (Float32.gt(a, b) ? 1 : 0);
        _eq(holds == (_isNaN(a) || _isNaN(b) ? 0 : 1), true);
        _eq(Float32.eq(a, b), Float32.eq(b, a));
    }

    function test_compare_agreesWithSubtraction_succeeds(uint32 a, uint32 b) public pure {
        // For finite operands, a < b exactly when a - b is negative and nonzero (RNE never rounds
        // a nonzero difference to zero: gradual underflow makes subtraction of finites exact near 0).
        VM.assume(Float32.isFinite(a) && Float32.isFinite(b));
        uint32 d = Float32.sub(a, b);
        if (_isNaN(d) || Float32.isInf(d)) return; // overflowed difference: sign still right
        _eq(Float32.lt(a, b), d & SIGN != 0 && !Float32.isZero(d));
        _eq(Float32.eq(a, b), Float32.isZero(d));
    }

    function test_minMax_matchComparisons_succeeds(uint32 a, uint32 b) public pure {
        uint32 lo = Float32.min(a, b);
        uint32 hi = Float32.max(a, b);
        if (_isNaN(a)) {
            _eq(lo, NAN);
            _eq(hi, NAN);
            return;
        }
        if (_isNaN(b)) {
            _eq(lo, a);
            _eq(hi, a);
            return;
        }
        _eq(lo == a || lo == b, true);
        _eq(hi == a || hi == b, true);
        _eq(Float32.le(lo, a) && Float32.le(lo, b), true);
        _eq(Float32.le(a, hi) && Float32.le(b, hi), true);
        // Operand order only matters between equal values (+0 / -0): the values agree.
        _eq(Float32.eq(Float32.min(b, a), lo), true);
        _eq(Float32.eq(Float32.max(b, a), hi), true);
    }

    // ------------------------------------------------------------------------ conversions

    function test_toInt32_inverseOfFromInt32_succeeds(int32 v) public pure {
        // Every |v| <= 2^24 is exact in binary32, so the round trip is the identity.
        int32 small = v % (int32(1) << 24);
        _eq(Float32.toInt32(Float32.fromInt32(small)), small);
    }

    function test_fromInt32_monotonic_succeeds(int32 v) public pure {
        VM.assume(v < type(int32).max);
        _eq(Float32.le(Float32.fromInt32(v), Float32.fromInt32(v + 1)), true);
    }

    function test_toInt32_withinHalf_succeeds(uint32 x) public pure {
        // |x - toInt32(x)| <= 1/2. For |x| < 2^23 the integer r converts exactly, and x - r is
        // exact too (Sterbenz-like: both lie on the grid of x's ulp), so the float check is exact.
        VM.assume(Float32.isFinite(x) && x & 0x7FFFFFFF < 0x4B000000); // |x| < 2^23: ulp <= 1
        int32 r = Float32.toInt32(x);
        uint32 d = Float32.sub(x, Float32.fromInt32(r));
        _eq(Float32.le(Float32.abs(d), 0x3F000000), true);
    }
}
