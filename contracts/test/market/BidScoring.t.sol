// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {BidScoring} from "../../src/libraries/BidScoring.sol";

/// @notice Properties of the auction's pure rules, over fuzzed inputs.
contract BidScoringTest is TestBase {
    uint256 internal constant MAX_PRICE = 1e30;

    function test_bonusBps_capsAtMax_succeeds() public pure {
        assertEq(BidScoring.bonusBps(0, 500, 2_000), 0);
        assertEq(BidScoring.bonusBps(3, 500, 2_000), 1_500);
        assertEq(BidScoring.bonusBps(4, 500, 2_000), 2_000);
        assertEq(BidScoring.bonusBps(type(uint256).max, 500, 2_000), 2_000);
        assertEq(BidScoring.bonusBps(type(uint256).max, 0, 2_000), 0);
    }

    function testFuzz_bonusBps_monotoneAndCapped_succeeds(uint256 credit, uint16 per, uint16 max) public pure {
        credit = bound(credit, 0, type(uint64).max);
        uint256 b = BidScoring.bonusBps(credit, per, max);
        assertLe(b, max);
        assertLe(b, credit * per);
        assertGe(BidScoring.bonusBps(credit + 1, per, max), b);
    }

    function testFuzz_score_lowerPriceOrMoreBonusNeverWorse_succeeds(uint256 price, uint256 bonus, uint256 d)
        public
        pure
    {
        price = bound(price, 1, MAX_PRICE);
        bonus = bound(bonus, 0, 10_000);
        d = bound(d, 0, price - 1);
        uint256 s = BidScoring.score(price, bonus);
        assertLe(BidScoring.score(price - d, bonus), s);
        if (bonus < 10_000) assertLe(BidScoring.score(price, bonus + 1), s);
    }

    function testFuzz_beats_isStrictOrder_succeeds(uint256 sa, uint256 ca, uint256 sb, uint256 cb) public pure {
        bool ab = BidScoring.beats(sa, ca, sb, cb);
        bool ba = BidScoring.beats(sb, cb, sa, ca);
        assertFalse(ab && ba, "antisymmetric");
        if (sa == sb && ca == cb) assertFalse(ab, "a full tie keeps the earlier bid");
        if (sa != sb) assertEq(ab, sa < sb);
    }

    /// @notice The agreed price lies in [winner's price, payment], and it is the largest price at which
    ///         the winner's score still does not exceed the runner-up's (unless clamped).
    function testFuzz_agreedPrice_isSecondPrice_succeeds(
        uint256 winnerPrice,
        uint256 winnerBonus,
        uint256 runnerPrice,
        uint256 runnerBonus,
        uint256 payment
    ) public pure {
        payment = bound(payment, 1, MAX_PRICE);
        winnerPrice = bound(winnerPrice, 1, payment);
        runnerPrice = bound(runnerPrice, 1, payment);
        winnerBonus = bound(winnerBonus, 0, 10_000);
        runnerBonus = bound(runnerBonus, 0, 10_000);
        uint256 ws = BidScoring.score(winnerPrice, winnerBonus);
        uint256 rs = BidScoring.score(runnerPrice, runnerBonus);
        vm.assume(ws <= rs);
        uint256 agreed = BidScoring.agreedPrice(winnerPrice, winnerBonus, true, rs, payment);
        assertGe(agreed, winnerPrice);
        assertLe(agreed, payment);
        if (agreed > winnerPrice) assertLe(BidScoring.score(agreed, winnerBonus), rs);
        if (agreed < payment) assertGe(BidScoring.score(agreed + 1, winnerBonus), rs);
    }

    function testFuzz_agreedPrice_withoutRunnerUpIsPayment_succeeds(uint256 price, uint256 payment) public pure {
        payment = bound(payment, 1, MAX_PRICE);
        price = bound(price, 1, payment);
        assertEq(BidScoring.agreedPrice(price, 0, false, 0, payment), payment);
    }
}
