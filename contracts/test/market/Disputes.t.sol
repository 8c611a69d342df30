// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "./MarketFixture.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";

/// @notice The dispute hook: open, resolve, expire, and what each outcome does to the task and stake.
///         `game` stands for an authorised dispute contract; it plays no game, it only reports outcomes.
contract DisputesTest is MarketFixture {
    address internal verifier2;
    address internal game2;

    function setUp() public override {
        super.setUp();
        verifier2 = makeAddr("verifier2");
        game2 = makeAddr("game2");
        vm.prank(owner);
        market.setDisputeContract(game2, true);
    }

    function _open(uint256 taskId, address by, address who) internal returns (uint256) {
        vm.prank(by);
        return market.openDispute(taskId, who);
    }

    function _resolve(uint256 disputeId, address by, bool solverLost) internal returns (IDisputeHook.DisputeStatus) {
        vm.prank(by);
        return market.resolveDispute(disputeId, solverLost);
    }

    // ─────────────────────────────────────────────── openDispute

    function test_openDispute_freezesTask_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.expectEmit(address(market));
        emit IDisputeHook.DisputeOpened(1, taskId, game, challenger, 1);
        uint256 id = _open(taskId, game, challenger);
        assertEq(id, 1);
        assertEq(market.disputeCount(), 1);
        IDisputeHook.Dispute memory d = market.getDispute(id);
        assertEq(d.taskId, taskId);
        assertEq(d.disputeContract, game);
        assertEq(d.challenger, challenger);
        assertEq(d.openedAt, block.timestamp);
        assertEq(uint256(d.status), uint256(IDisputeHook.DisputeStatus.Open));
        assertEq(market.getTask(taskId).openDisputes, 1);
        assertEq(_open(taskId, game2, verifier2), 2);
        assertEq(market.disputeContext(taskId).openDisputes, 2);
    }

    function test_openDispute_unauthorised_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.NotDisputeContract.selector, challenger));
        _open(taskId, challenger, challenger);
    }

    function test_openDispute_beforeResult_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Assigned,
                IDisputeHook.TaskStatus.ResultSubmitted
            )
        );
        _open(taskId, game, challenger);
    }

    function test_openDispute_unknownTask_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.UnknownTask.selector, 5));
        _open(5, game, challenger);
    }

    function test_openDispute_afterChallengeWindow_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 deadline = market.getTask(taskId).challengeDeadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.ChallengeWindowClosed.selector, taskId, deadline, deadline));
        _open(taskId, game, challenger);
    }

    function test_openDispute_solverAsChallenger_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.InvalidChallenger.selector, alice));
        _open(taskId, game, alice);
    }

    function test_openDispute_zeroChallenger_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.InvalidChallenger.selector, address(0)));
        _open(taskId, game, address(0));
    }

    // ─────────────────────────────────────────────── resolveDispute

    function test_resolveDispute_solverLost_slashesOnceAndRefunds_succeeds() public {
        _completed(alice, 1 ether);
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        uint256 refundBefore = market.paymentsOf(submitter);
        vm.expectEmit(address(market));
        emit IDisputeHook.DisputeResolved(id, taskId, IDisputeHook.DisputeStatus.SolverLost, 0);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskFailed(taskId, ITaskMarket.FailureReason.DisputeLost, PAYMENT, STAKE);
        assertEq(uint256(_resolve(id, game, true)), uint256(IDisputeHook.DisputeStatus.SolverLost));

        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.Failed));
        assertEq(uint256(t.failure), uint256(ITaskMarket.FailureReason.DisputeLost));
        assertEq(market.paymentsOf(submitter) - refundBefore, PAYMENT);
        assertEq(market.paymentsOf(alice), 2 * BOND + PAYMENT, "earlier task and bonds only");
        assertEq(sm.proceedsOf(challenger), STAKE * BENEFICIARY_BPS / 10_000);
        assertEq(sm.lockedFor(alice, taskId), 0);
        assertEq(market.recordOf(alice).credit, 0);
        assertEq(market.recordOf(alice).slashed, 1);
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    function test_resolveDispute_secondDisputeAfterLossOnlyCloses_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 first = _open(taskId, game, challenger);
        uint256 second = _open(taskId, game2, verifier2);
        _resolve(first, game, true);
        uint256 sinkBefore = sm.sinkBalance();
        assertEq(uint256(_resolve(second, game2, true)), uint256(IDisputeHook.DisputeStatus.Closed));
        assertEq(sm.sinkBalance(), sinkBefore, "no second slash");
        assertEq(sm.proceedsOf(verifier2), 0);
        assertEq(market.getTask(taskId).openDisputes, 0);
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    function test_resolveDispute_solverWon_unfreezesFinalize_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        vm.expectEmit(address(market));
        emit IDisputeHook.DisputeResolved(id, taskId, IDisputeHook.DisputeStatus.SolverWon, 0);
        assertEq(uint256(_resolve(id, game, false)), uint256(IDisputeHook.DisputeStatus.SolverWon));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.ResultSubmitted));
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
    }

    function test_resolveDispute_solverWonAfterOtherLoss_closes_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 first = _open(taskId, game, challenger);
        uint256 second = _open(taskId, game, verifier2);
        _resolve(second, game, true);
        assertEq(uint256(_resolve(first, game, false)), uint256(IDisputeHook.DisputeStatus.Closed));
    }

    function test_resolveDispute_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.UnknownDispute.selector, 3));
        _resolve(3, game, true);
    }

    function test_resolveDispute_notOpener_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.NotDisputeOpener.selector, id, game, game2));
        _resolve(id, game2, true);
    }

    function test_resolveDispute_twice_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        _resolve(id, game, false);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeHook.DisputeNotOpen.selector, id, IDisputeHook.DisputeStatus.SolverWon)
        );
        _resolve(id, game, true);
    }

    function test_resolveDispute_deauthorisedOpener_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        vm.prank(owner);
        market.setDisputeContract(game, false);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.NotDisputeContract.selector, game));
        _resolve(id, game, true);
    }

    function test_resolveDispute_afterExpiry_noEffect_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        vm.warp(block.timestamp + DISPUTE_TIMEOUT);
        market.expireDispute(id);
        assertEq(uint256(_resolve(id, game, true)), uint256(IDisputeHook.DisputeStatus.Expired));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.ResultSubmitted));
        assertEq(sm.lockedFor(alice, taskId), STAKE, "no slash after expiry");
    }

    // ─────────────────────────────────────────────── expireDispute

    function test_expireDispute_afterTimeout_unfreezes_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        vm.warp(block.timestamp + DISPUTE_TIMEOUT);
        vm.expectEmit(address(market));
        emit IDisputeHook.DisputeResolved(id, taskId, IDisputeHook.DisputeStatus.Expired, 0);
        market.expireDispute(id);
        assertEq(uint256(market.getDispute(id).status), uint256(IDisputeHook.DisputeStatus.Expired));
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
    }

    function test_expireDispute_beforeTimeout_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        uint256 expiresAt = block.timestamp + DISPUTE_TIMEOUT;
        vm.warp(expiresAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.DisputeNotExpired.selector, id, expiresAt, expiresAt - 1));
        market.expireDispute(id);
    }

    function test_expireDispute_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.UnknownDispute.selector, 1));
        market.expireDispute(1);
    }

    function test_expireDispute_resolved_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 id = _open(taskId, game, challenger);
        _resolve(id, game, false);
        vm.warp(block.timestamp + DISPUTE_TIMEOUT);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeHook.DisputeNotOpen.selector, id, IDisputeHook.DisputeStatus.SolverWon)
        );
        market.expireDispute(id);
    }

    // ─────────────────────────────────────────────── views

    function test_disputeContext_exposesResult_succeeds() public {
        uint256 taskId = _delivered(alice, 1 ether);
        IDisputeHook.DisputeContext memory c = market.disputeContext(taskId);
        assertEq(uint256(c.status), uint256(IDisputeHook.TaskStatus.ResultSubmitted));
        assertEq(c.submitter, submitter);
        assertEq(c.solver, alice);
        assertEq(c.specHash, SPEC);
        assertEq(c.initialStateRoot, keccak256("S_0"));
        assertEq(c.opGraphRoot, keccak256("ops"));
        assertEq(c.traceRoot, TRACE);
        assertEq(c.finalStateRoot, FINAL);
        assertEq(c.numSteps, STEPS);
        assertEq(c.checkpointInterval, INTERVAL);
        assertEq(c.numCheckpoints, STEPS / INTERVAL + 1);
        assertEq(c.challengeDeadline, block.timestamp + CHALLENGE_WINDOW);
        assertEq(c.openDisputes, 0);
    }

    function test_disputeContext_unknownTask_succeeds() public view {
        IDisputeHook.DisputeContext memory c = market.disputeContext(99);
        assertEq(uint256(c.status), uint256(IDisputeHook.TaskStatus.None));
        assertEq(c.numCheckpoints, 0);
    }
}
