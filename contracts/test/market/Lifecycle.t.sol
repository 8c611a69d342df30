// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "./MarketFixture.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";

/// @notice Whole task life cycles with three bidders, every balance checked at the end.
contract LifecycleTest is MarketFixture {
    function test_lifecycle_threeBiddersSecondPrice_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        _stake(carol, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 6 ether);
        _commit(taskId, bob, 4 ether);
        _commit(taskId, carol, 5 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 6 ether);
        _reveal(taskId, bob, 4 ether);
        _reveal(taskId, carol, 5 ether);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), bob);

        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.Assigned));
        assertEq(t.winningPrice, 4 ether);
        assertEq(t.agreedPrice, 5 ether, "second price");
        assertEq(sm.lockedFor(bob, taskId), STAKE);
        assertEq(sm.freeStakeOf(bob), 0);

        vm.startPrank(bob);
        market.commitProgress(taskId, keccak256("p1"), 5);
        market.commitProgress(taskId, keccak256("p2"), 11);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "ipfs://artifact");
        vm.stopPrank();
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);

        assertEq(market.paymentsOf(bob), 5 ether + BOND);
        assertEq(market.paymentsOf(alice), BOND);
        assertEq(market.paymentsOf(carol), BOND);
        assertEq(market.paymentsOf(submitter), 5 ether);
        assertEq(sm.freeStakeOf(bob), STAKE);
        assertEq(market.recordOf(bob).credit, 1);
        _assertMarketSolvent();
        _assertStakeSolvent();

        address[4] memory who = [bob, alice, carol, submitter];
        for (uint256 i = 0; i < who.length; ++i) {
            vm.prank(who[i]);
            market.withdrawPayments();
        }
        assertEq(address(market).balance, 0);
        assertEq(bob.balance, 100 ether - STAKE + 5 ether);
        assertEq(alice.balance, 100 ether - STAKE);
        assertEq(submitter.balance, 1_000 ether - 5 ether);
    }
}
