// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "./MarketFixture.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";

/// @notice Fuzz tests of the market: auction outcome, sealed-bid binding, conservation of money.
contract TaskMarketFuzzTest is MarketFixture {
    /// @notice With random prices and a random record for alice, the winner has the best score, the
    ///         agreed price is a capped second price, every bond is settled, and all ETH is accounted for.
    function testFuzz_closeAuction_bestScoreWinsAtSecondPrice_succeeds(
        uint256 pa,
        uint256 pb,
        uint256 pc,
        uint256 aliceTasks
    ) public {
        aliceTasks = bound(aliceTasks, 0, 3);
        for (uint256 i = 0; i < aliceTasks; ++i) {
            _completed(alice, 1 ether);
        }
        pa = bound(pa, 1, PAYMENT);
        pb = bound(pb, 1, PAYMENT);
        pc = bound(pc, 1, PAYMENT);
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        _stake(carol, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, pa);
        _commit(taskId, bob, pb);
        _commit(taskId, carol, pc);
        _toReveal(taskId);
        _reveal(taskId, alice, pa);
        _reveal(taskId, bob, pb);
        _reveal(taskId, carol, pc);
        _toClose(taskId);
        address winner = market.closeAuction(taskId);

        uint256[3] memory scores = [market.scoreOf(alice, pa), market.scoreOf(bob, pb), market.scoreOf(carol, pc)];
        address[3] memory who = [alice, bob, carol];
        uint256 ws;
        for (uint256 i = 0; i < 3; ++i) {
            if (who[i] == winner) ws = scores[i];
        }
        uint256 runnerUp = type(uint256).max;
        bool seenWinner;
        for (uint256 i = 0; i < 3; ++i) {
            assertLe(ws, scores[i], "winner has the lowest score");
            if (who[i] == winner && !seenWinner) {
                seenWinner = true;
            } else if (scores[i] < runnerUp) {
                runnerUp = scores[i];
            }
        }
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertGe(t.agreedPrice, t.winningPrice);
        assertLe(t.agreedPrice, PAYMENT);
        if (t.agreedPrice > t.winningPrice) assertLe(market.scoreOf(winner, t.agreedPrice), runnerUp);
        (, uint256 bonds,) = market.totals();
        assertEq(bonds, 0, "every bond settled");
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    /// @notice A reveal binds: any other price or salt than the committed one is rejected.
    function testFuzz_revealBid_otherValues_reverts(uint256 price, bytes32 salt, uint256 otherPrice, bytes32 otherSalt)
        public
    {
        price = bound(price, 1, PAYMENT);
        vm.assume(otherPrice != price || otherSalt != salt);
        _stake(alice, STAKE);
        uint256 taskId = _post();
        bytes32 c = market.bidCommitment(taskId, alice, price, salt);
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, c);
        _toReveal(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskMarket.CommitmentMismatch.selector,
                taskId,
                alice,
                c,
                market.bidCommitment(taskId, alice, otherPrice, otherSalt)
            )
        );
        vm.prank(alice);
        market.revealBid(taskId, otherPrice, otherSalt);
        vm.prank(alice);
        market.revealBid(taskId, price, salt);
    }

    /// @notice Over a full task with random payment, bond and prices, everything paid in is paid out:
    ///         after every party withdraws, the market holds nothing.
    function testFuzz_lifecycle_everyWeiReturns_succeeds(uint256 payment, uint256 bond, uint256 pa, uint256 pb) public {
        payment = bound(payment, 1, 100 ether);
        bond = bound(bond, 0, 1 ether);
        pa = bound(pa, 1, payment);
        pb = bound(pb, 1, payment);
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        ITaskMarket.TaskParams memory p = _params();
        p.bidBond = bond;
        vm.prank(submitter);
        uint256 taskId = market.postTask{value: payment}(p);
        bytes32 ca = market.bidCommitment(taskId, alice, pa, _salt(alice));
        bytes32 cb = market.bidCommitment(taskId, bob, pb, _salt(bob));
        vm.prank(alice);
        market.commitBid{value: bond}(taskId, ca);
        vm.prank(bob);
        market.commitBid{value: bond}(taskId, cb);
        _toReveal(taskId);
        _reveal(taskId, alice, pa);
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
        assertEq(market.paymentsOf(alice), payment + bond, "sole revealer is paid the payment");
        assertEq(market.paymentsOf(submitter), bond, "bob's forfeited bond");
        address[3] memory who = [alice, bob, submitter];
        for (uint256 i = 0; i < 3; ++i) {
            if (market.paymentsOf(who[i]) == 0) continue;
            vm.prank(who[i]);
            market.withdrawPayments();
        }
        assertEq(address(market).balance, 0);
        (uint256 escrow, uint256 bonds, uint256 payable_) = market.totals();
        assertEq(escrow + bonds + payable_, 0);
    }
}
