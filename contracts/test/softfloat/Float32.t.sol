// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "../../src/softfloat/Float32.sol";
import {SoftFloatTestBase} from "./SoftFloatTestBase.sol";

/// @notice Hand-checked edge cases of every Float32 operation. Expected patterns are IEEE-754
///         binary32 results worked out by hand (and confirmed by the differential pytest suite).
contract Float32Test is SoftFloatTestBase {
    uint32 internal constant ONE = 0x3F800000;
    uint32 internal constant TWO = 0x40000000;
    uint32 internal constant HALF = 0x3F000000;
    uint32 internal constant MAX = 0x7F7FFFFF; // largest finite
    uint32 internal constant MIN_NORMAL = 0x00800000;
    uint32 internal constant MAX_SUB = 0x007FFFFF;
    uint32 internal constant MIN_SUB = 0x00000001;
    uint32 internal constant INF = 0x7F800000;
    uint32 internal constant NINF = 0xFF800000;
    uint32 internal constant NAN = 0x7FC00000;
    uint32 internal constant SNAN = 0x7F800001;
    uint32 internal constant NZERO = 0x80000000;

    // ------------------------------------------------------------------------------------- add

    function test_add_smallIntegers_succeeds() public pure {
        _eq(Float32.add(ONE, ONE), TWO);
        _eq(Float32.add(ONE, 0x40400000), 0x40800000); // 1 + 3 = 4
        _eq(Float32.add(0x3DCCCCCD, 0x3E4CCCCD), 0x3E99999A); // 0.1f + 0.2f
    }

    function test_add_signedZeros_succeeds() public pure {
        _eq(Float32.add(0, 0), 0);
        _eq(Float32.add(NZERO, NZERO), NZERO);
        _eq(Float32.add(0, NZERO), 0);
        _eq(Float32.add(NZERO, 0), 0);
        _eq(Float32.add(ONE, 0xBF800000), 0); // 1 + -1 = +0 under RNE
        _eq(Float32.add(NZERO, MIN_SUB), MIN_SUB);
    }

    function test_add_tiesToEven_succeeds() public pure {
        // 2^-24 is half an ulp of 1: 1 + 2^-24 ties between 1 (even) and 1 + 2^-23 (odd).
        _eq(Float32.add(ONE, 0x33800000), ONE);
        // (1 + 2^-23) + 2^-24 ties between odd 1 + 2^-23 and even 1 + 2^-22: rounds up.
        _eq(Float32.add(0x3F800001, 0x33800000), 0x3F800002);
        // Just above the tie rounds up, just below rounds down.
        _eq(Float32.add(ONE, 0x33800001), 0x3F800001);
        _eq(Float32.add(ONE, 0x337FFFFF), ONE);
    }

    function test_add_farApartOperands_succeeds() public pure {
        // Exponent difference 25 and beyond: the small addend vanishes (below half an ulp).
        _eq(Float32.add(ONE, 0x33000000), ONE); // 1 + 2^-25
        _eq(Float32.add(ONE, 0xB3000000), ONE); // 1 - 2^-25 (half of the finer spacing below 1)
        _eq(Float32.add(ONE, 0xB3000001), 0x3F7FFFFF); // 1 - (2^-25 + tiny) rounds down
        _eq(Float32.add(MAX, MIN_SUB), MAX);
    }

    function test_add_cancellation_succeeds() public pure {
        _eq(Float32.add(0x3F800001, 0xBF800000), 0x34000000); // (1 + 2^-23) - 1 = 2^-23
        _eq(Float32.add(MIN_NORMAL, 0x807FFFFF), MIN_SUB); // smallest normal - largest subnormal
    }

    function test_add_subnormals_succeeds() public pure {
        _eq(Float32.add(MIN_SUB, MIN_SUB), 0x00000002);
        _eq(Float32.add(MAX_SUB, MIN_SUB), MIN_NORMAL); // carries into the exponent field
        _eq(Float32.add(MAX_SUB, MAX_SUB), 0x00FFFFFE);
    }

    function test_add_overflow_succeeds() public pure {
        _eq(Float32.add(MAX, MAX), INF);
        _eq(Float32.add(0xFF7FFFFF, 0xFF7FFFFF), NINF);
        // MAX + half its ulp (2^103) ties; MAX's fraction is odd, so it rounds up to infinity.
        _eq(Float32.add(MAX, 0x73000000), INF);
        _eq(Float32.add(MAX, 0x72FFFFFF), MAX);
    }

    function test_add_infinities_succeeds() public pure {
        _eq(Float32.add(INF, MAX), INF);
        _eq(Float32.add(NINF, MAX), NINF);
        _eq(Float32.add(INF, INF), INF);
        _eq(Float32.add(INF, NINF), NAN);
        _eq(Float32.add(NINF, INF), NAN);
    }

    function test_add_nanCanonical_succeeds() public pure {
        _eq(Float32.add(SNAN, ONE), NAN);
        _eq(Float32.add(ONE, 0xFFC00123), NAN);
        _eq(Float32.add(0xFFFFFFFF, INF), NAN);
    }

    // ------------------------------------------------------------------------------------- sub

    function test_sub_self_succeeds() public pure {
        _eq(Float32.sub(ONE, ONE), 0);
        _eq(Float32.sub(0xBF800000, 0xBF800000), 0);
        _eq(Float32.sub(NZERO, NZERO), 0);
        _eq(Float32.sub(NZERO, 0), NZERO);
        _eq(Float32.sub(INF, INF), NAN);
    }

    function test_sub_nanSubtrahend_succeeds() public pure {
        _eq(Float32.sub(ONE, 0xFFC00000), NAN);
        _eq(Float32.sub(ONE, SNAN), NAN);
    }

    // ------------------------------------------------------------------------------------- mul

    function test_mul_exact_succeeds() public pure {
        _eq(Float32.mul(0x40400000, 0x40A00000), 0x41700000); // 3 * 5 = 15
        _eq(Float32.mul(0xBFC00000, TWO), 0xC0400000); // -1.5 * 2 = -3
    }

    function test_mul_rounding_succeeds() public pure {
        // 0.1f * 0.1f = 0x3C23D70B (0.010000001)
        _eq(Float32.mul(0x3DCCCCCD, 0x3DCCCCCD), 0x3C23D70B);
        // (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46: the 2^-46 is below half an ulp.
        _eq(Float32.mul(0x3F800001, 0x3F800001), 0x3F800002);
    }

    function test_mul_zerosAndSigns_succeeds() public pure {
        _eq(Float32.mul(NZERO, ONE), NZERO);
        _eq(Float32.mul(NZERO, 0xBF800000), 0);
        _eq(Float32.mul(0, 0xFF7FFFFF), NZERO);
    }

    function test_mul_infTimesZero_succeeds() public pure {
        _eq(Float32.mul(INF, 0), NAN);
        _eq(Float32.mul(NZERO, NINF), NAN);
        _eq(Float32.mul(INF, 0xBF800000), NINF);
        _eq(Float32.mul(MIN_SUB, NINF), NINF);
    }

    function test_mul_underflow_succeeds() public pure {
        _eq(Float32.mul(MIN_NORMAL, HALF), 0x00400000); // 2^-127, an exact subnormal
        _eq(Float32.mul(MIN_SUB, HALF), 0); // 2^-150 ties between 0 (even) and 2^-149
        _eq(Float32.mul(MIN_SUB, 0x3F400000), MIN_SUB); // 0.75 * 2^-149 rounds up
        _eq(Float32.mul(0x00000003, HALF), 0x00000002); // 1.5 * 2^-149 ties to the even 2
        _eq(Float32.mul(0x80000001, HALF), NZERO); // the sign survives underflow to zero
        // The largest subnormal times (1 + 2^-23) rounds up into the smallest normal.
        _eq(Float32.mul(MAX_SUB, 0x3F800001), MIN_NORMAL);
        _eq(Float32.mul(MIN_SUB, MIN_SUB), 0);
    }

    function test_mul_overflow_succeeds() public pure {
        _eq(Float32.mul(0x7F000000, TWO), INF); // 2^127 * 2
        _eq(Float32.mul(MAX, 0xBF800001), NINF);
        _eq(Float32.mul(MAX, 0x3F7FFFFF), 0x7F7FFFFE);
    }

    function test_mul_subnormalInputs_succeeds() public pure {
        _eq(Float32.mul(MIN_SUB, 0x4B000000), MIN_NORMAL); // 2^-149 * 2^23 = 2^-126 exactly
        _eq(Float32.mul(MAX_SUB, TWO), 0x00FFFFFE);
    }

    function test_mul_nanCanonical_succeeds() public pure {
        _eq(Float32.mul(SNAN, 0), NAN);
        _eq(Float32.mul(0xFFC00001, ONE), NAN);
    }

    // ------------------------------------------------------------------------------------- div

    function test_div_rounding_succeeds() public pure {
        _eq(Float32.div(ONE, 0x40400000), 0x3EAAAAAB); // 1/3
        _eq(Float32.div(TWO, 0x40400000), 0x3F2AAAAB); // 2/3
        _eq(Float32.div(0x41200000, 0x40400000), 0x40555555); // 10/3
        _eq(Float32.div(ONE, 0x41200000), 0x3DCCCCCD); // 1/10
    }

    function test_div_byZero_succeeds() public pure {
        _eq(Float32.div(ONE, 0), INF);
        _eq(Float32.div(ONE, NZERO), NINF);
        _eq(Float32.div(0xBF800000, 0), NINF);
        _eq(Float32.div(0, 0), NAN);
        _eq(Float32.div(NZERO, 0), NAN);
    }

    function test_div_infinities_succeeds() public pure {
        _eq(Float32.div(INF, INF), NAN);
        _eq(Float32.div(INF, 0xC0000000), NINF);
        _eq(Float32.div(ONE, NINF), NZERO);
        _eq(Float32.div(0, INF), 0);
    }

    function test_div_underflow_succeeds() public pure {
        _eq(Float32.div(MIN_NORMAL, TWO), 0x00400000);
        _eq(Float32.div(MIN_SUB, TWO), 0); // 2^-150 ties to even 0
        _eq(Float32.div(0x00000003, TWO), 0x00000002); // 1.5 ulp ties to even 2
        _eq(Float32.div(ONE, MAX), 0x00200000); // 1/MAX is just above 2^-128
    }

    function test_div_overflow_succeeds() public pure {
        _eq(Float32.div(MAX, HALF), INF);
        _eq(Float32.div(ONE, MIN_SUB), INF); // 2^149 overflows
        _eq(Float32.div(MIN_NORMAL, 0x4B000000), 0x00000001); // 2^-126 / 2^23 = 2^-149 exactly
    }

    function test_div_subnormalInputs_succeeds() public pure {
        _eq(Float32.div(MIN_SUB, MIN_SUB), ONE);
        _eq(Float32.div(MAX_SUB, MIN_NORMAL), 0x3F7FFFFE); // (2^23 - 1) / 2^23 = 1 - 2^-23
    }

    // ------------------------------------------------------------------------------------- mulAdd

    function test_mulAdd_twoRoundings_succeeds() public pure {
        // (1 + 2^-23)^2 - (1 + 2^-22): rounding the product first gives exactly 0;
        // a fused multiply-add would keep 2^-46.
        _eq(Float32.mulAdd(0xBF800002, 0x3F800001, 0x3F800001), 0);
        _eq(Float32.mulAdd(ONE, TWO, 0x40400000), 0x40E00000); // 1 + 2*3 = 7
    }

    // ------------------------------------------------------------------------------------- compare

    function test_eq_signedZerosAndNaN_succeeds() public pure {
        _eq(Float32.eq(0, NZERO), true);
        _eq(Float32.eq(NAN, NAN), false);
        _eq(Float32.eq(ONE, ONE), true);
        _eq(Float32.eq(ONE, 0x3F800001), false);
        _eq(Float32.eq(INF, INF), true);
    }

    function test_lt_ordering_succeeds() public pure {
        _eq(Float32.lt(NZERO, 0), false);
        _eq(Float32.lt(0xBF800000, NZERO), true);
        _eq(Float32.lt(0xC0000000, 0xBF800000), true); // -2 < -1
        _eq(Float32.lt(0xBF800000, 0xC0000000), false);
        _eq(Float32.lt(NINF, 0xFF7FFFFF), true);
        _eq(Float32.lt(MAX, INF), true);
        _eq(Float32.lt(0x80000001, MIN_SUB), true);
        _eq(Float32.lt(NAN, ONE), false);
        _eq(Float32.lt(ONE, SNAN), false);
    }

    function test_le_ordering_succeeds() public pure {
        _eq(Float32.le(NZERO, 0), true);
        _eq(Float32.le(0, NZERO), true);
        _eq(Float32.le(ONE, ONE), true);
        _eq(Float32.le(0xC0000000, 0xC0000000), true);
        _eq(Float32.le(TWO, ONE), false);
        _eq(Float32.le(NAN, NAN), false);
        _eq(Float32.ge(TWO, ONE), true);
        _eq(Float32.gt(ONE, TWO), false);
    }

    function test_minMax_signedZerosAndNaN_succeeds() public pure {
        // min = (b < a ? b : a) and max = (a < b ? b : a): of two zeros the first operand wins.
        _eq(Float32.min(0, NZERO), 0);
        _eq(Float32.min(NZERO, 0), NZERO);
        _eq(Float32.max(0, NZERO), 0);
        _eq(Float32.max(NZERO, 0), NZERO);
        _eq(Float32.min(ONE, 0xBF800000), 0xBF800000);
        _eq(Float32.max(ONE, 0xBF800000), ONE);
        _eq(Float32.max(NINF, INF), INF);
        // A NaN first operand is returned (canonicalised); a NaN second operand never wins.
        _eq(Float32.min(SNAN, ONE), NAN);
        _eq(Float32.max(0xFFC00001, ONE), NAN);
        _eq(Float32.min(ONE, SNAN), ONE);
        _eq(Float32.max(ONE, 0xFFC00001), ONE);
    }

    function test_select_succeeds() public pure {
        _eq(Float32.select(true, ONE, TWO), ONE);
        _eq(Float32.select(false, ONE, TWO), TWO);
    }

    // ------------------------------------------------------------------------------------- sign ops

    function test_negAbs_succeeds() public pure {
        _eq(Float32.neg(ONE), 0xBF800000);
        _eq(Float32.neg(0), NZERO);
        _eq(Float32.neg(NINF), INF);
        _eq(Float32.neg(NAN), NAN);
        _eq(Float32.abs(0xBF800000), ONE);
        _eq(Float32.abs(NZERO), 0);
        _eq(Float32.abs(0xFFC00001), NAN);
    }

    // ------------------------------------------------------------------------------------- convert

    function test_fromInt32_roundsToEven_succeeds() public pure {
        _eq(Float32.fromInt32(0), 0);
        _eq(Float32.fromInt32(1), ONE);
        _eq(Float32.fromInt32(-1), 0xBF800000);
        _eq(Float32.fromInt32(16777216), 0x4B800000); // 2^24 exact
        _eq(Float32.fromInt32(16777217), 0x4B800000); // tie to even (down)
        _eq(Float32.fromInt32(16777219), 0x4B800002); // tie to even (up)
        _eq(Float32.fromInt32(type(int32).max), 0x4F000000); // rounds up to 2^31
        _eq(Float32.fromInt32(type(int32).min), 0xCF000000); // -2^31 exact
    }

    function test_toInt32_roundsHalfToEven_succeeds() public pure {
        _eq(Float32.toInt32(0x40200000), int32(2)); // 2.5 -> 2
        _eq(Float32.toInt32(0x40600000), int32(4)); // 3.5 -> 4
        _eq(Float32.toInt32(0xC0200000), int32(-2)); // -2.5 -> -2
        _eq(Float32.toInt32(HALF), int32(0)); // 0.5 -> 0
        _eq(Float32.toInt32(0x3FC00000), int32(2)); // 1.5 -> 2
        _eq(Float32.toInt32(0x3F000001), int32(1)); // just above 0.5 -> 1
        _eq(Float32.toInt32(MIN_SUB), int32(0));
        _eq(Float32.toInt32(NZERO), int32(0));
        _eq(Float32.toInt32(0x4EFFFFFF), int32(2147483520)); // largest float below 2^31
    }

    function test_toInt32_saturates_succeeds() public pure {
        _eq(Float32.toInt32(0x4F000000), type(int32).max); // 2^31
        _eq(Float32.toInt32(0xCF000000), type(int32).min); // -2^31 exactly
        _eq(Float32.toInt32(0xCF000001), type(int32).min);
        _eq(Float32.toInt32(INF), type(int32).max);
        _eq(Float32.toInt32(NINF), type(int32).min);
        _eq(Float32.toInt32(NAN), int32(0));
        _eq(Float32.toInt32(0xFFC00000), int32(0));
    }
}
