// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "../market/MarketFixture.sol";
import {AvailabilityWorld} from "./AvailabilityWorld.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {AvailabilityChallenge} from "../../src/AvailabilityChallenge.sol";
import {IAvailabilityChallenge} from "../../src/interfaces/IAvailabilityChallenge.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";

/// @notice Availability challenges over the result of AvailabilityWorld (three real tensors per
///         checkpoint, 11 checkpoints), delivered through the market.
contract AvailabilityChallengeTest is MarketFixture, AvailabilityWorld {
    uint256 internal constant CH_BOND = 0.05 ether;
    uint64 internal constant WINDOW = 1 hours;

    AvailabilityChallenge internal ac;
    uint256 internal taskId;
    address internal dave;

    function setUp() public override {
        super.setUp();
        ac = new AvailabilityChallenge(IDisputeHook(address(market)), CH_BOND, WINDOW, 10_000);
        vm.prank(owner);
        market.setDisputeContract(address(ac), true);
        vm.deal(challenger, 10 ether);
        dave = makeAddr("dave");
        vm.fee(1 gwei);
        taskId = _deliver();
    }

    function _deliver() internal returns (uint256 id) {
        ITaskMarket.TaskParams memory p = _params();
        bytes32[] memory states = _states();
        p.initialStateRoot = states[0];
        p.opGraphRoot = _opGraphRoot();
        id = _assignedWith(alice, 1 ether, p);
        vm.prank(alice);
        market.submitResult(id, MerkleBuilder.root(states), STEPS, states[N_CP - 1], "http://alice/artifacts");
    }

    function _challenge(uint256 c, uint256 j, uint256 first, uint256 count) internal returns (uint256) {
        vm.prank(challenger);
        return ac.challenge{value: CH_BOND}(taskId, c, j, first, count, _layout());
    }

    function _assertSolvent() internal view {
        assertEq(address(ac).balance, ac.totalBonds() + ac.totalCredits(), "availability solvency");
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    // ─────────────────────────────────────────────── constructor

    function test_constructor_rejectsBadParameters_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.InvalidParameter.selector, uint8(0), 0));
        new AvailabilityChallenge(IDisputeHook(address(0)), CH_BOND, WINDOW, 10_000);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.InvalidParameter.selector, uint8(1), 0));
        new AvailabilityChallenge(IDisputeHook(address(market)), CH_BOND, 0, 10_000);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.InvalidParameter.selector, uint8(2), 10_001));
        new AvailabilityChallenge(IDisputeHook(address(market)), CH_BOND, WINDOW, 10_001);
    }

    // ─────────────────────────────────────────────── challenge

    function test_challenge_opensDisputeAndFreezesPayout_succeeds() public {
        vm.expectEmit(address(ac));
        emit IAvailabilityChallenge.AvailabilityChallenged(
            1, taskId, challenger, alice, 1, 10, 0, 1, 2, uint64(block.timestamp) + WINDOW, CH_BOND
        );
        uint256 id = _challenge(10, 0, 1, 2);
        assertEq(id, 1);
        IAvailabilityChallenge.Challenge memory c = ac.getChallenge(id);
        assertEq(uint256(c.status), uint256(IAvailabilityChallenge.Status.Open));
        assertEq(c.solver, alice);
        assertEq(c.stateSize, STATE_SIZE);
        assertEq(c.numCheckpoints, N_CP);
        assertEq(market.getTask(taskId).openDisputes, 1);
        vm.warp(market.getTask(taskId).challengeDeadline);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.DisputesOpen.selector, taskId, 1));
        market.finalize(taskId);
        _assertSolvent();
    }

    function test_challenge_wrongBond_reverts() public {
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.WrongBond.selector, 1, CH_BOND));
        ac.challenge{value: 1}(taskId, 0, 0, 0, 1, _layout());
    }

    function test_challenge_badCount_reverts() public {
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.BadChunkCount.selector, 0, 32));
        ac.challenge{value: CH_BOND}(taskId, 0, 0, 0, 0, _layout());
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.BadChunkCount.selector, 33, 32));
        ac.challenge{value: CH_BOND}(taskId, 0, 0, 0, 33, _layout());
        vm.stopPrank();
    }

    function test_challenge_outOfRange_reverts() public {
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.CheckpointOutOfRange.selector, N_CP, N_CP));
        ac.challenge{value: CH_BOND}(taskId, N_CP, 0, 0, 1, _layout());
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.TensorOutOfRange.selector, 3, STATE_SIZE));
        ac.challenge{value: CH_BOND}(taskId, 0, 3, 0, 1, _layout());
        vm.expectRevert(
            abi.encodeWithSelector(IAvailabilityChallenge.TooLarge.selector, 2 ** 32, type(uint32).max - 32)
        );
        ac.challenge{value: CH_BOND}(taskId, 0, 0, 2 ** 32, 1, _layout());
        vm.stopPrank();
    }

    function test_challenge_layoutNotTheTasks_reverts() public {
        IAvailabilityChallenge.StateLayout memory l = _layout();
        l.stateSize = 4; // a fourth tensor the task does not have
        l.designated = new uint64[](4);
        bytes32 computed = Bisection.graphCommitment(
            l.graphRoot, keccak256(abi.encode(l.numOps, l.stateSize, l.designated, l.inputsRoot))
        );
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(IAvailabilityChallenge.GraphMismatch.selector, _opGraphRoot(), computed)
        );
        ac.challenge{value: CH_BOND}(taskId, 0, 3, 0, 1, l);
        l.designated = new uint64[](2);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.LayoutMismatch.selector, 4, 2));
        ac.challenge{value: CH_BOND}(taskId, 0, 3, 0, 1, l);
    }

    function test_challenge_marketRules_reverts() public {
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.InvalidChallenger.selector, alice));
        ac.challenge{value: CH_BOND}(taskId, 0, 0, 0, 1, _layout());
        uint256 deadline = market.getTask(taskId).challengeDeadline;
        vm.warp(deadline);
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeHook.ChallengeWindowClosed.selector, taskId, deadline, deadline)
        );
        ac.challenge{value: CH_BOND}(taskId, 0, 0, 0, 1, _layout());
    }

    // ─────────────────────────────────────────────── answer

    function test_answer_putsChunksOnChainAndRefundsGas_succeeds() public {
        uint256 id = _challenge(10, 0, 0, 3);
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(10, 0, 0, 3);
        assertEq(a.chunks.length, 3);
        assertEq(a.chunks[2].length, 88);
        vm.prank(alice);
        ac.answer(id, a);
        IAvailabilityChallenge.Challenge memory c = ac.getChallenge(id);
        assertEq(uint256(c.status), uint256(IAvailabilityChallenge.Status.Answered));
        assertEq(uint256(market.getDispute(1).status), uint256(IDisputeHook.DisputeStatus.SolverWon));
        uint256 refund = ac.creditOf(alice);
        assertGt(refund, 100_000 gwei); // at least 100k gas at 1 gwei
        assertLt(refund, 2_000_000 gwei); // at most what such an answer can cost
        assertEq(ac.creditOf(challenger), CH_BOND - refund);
        _assertSolvent();
        // Payout unfrozen: the solver is paid after the window.
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
        uint256 before = alice.balance;
        vm.prank(alice);
        ac.withdraw();
        assertEq(alice.balance - before, refund);
        vm.prank(challenger);
        ac.withdraw();
        assertEq(address(ac).balance, 0);
        _assertSolvent();
    }

    function test_answer_rangePastTheEndIsClipped_succeeds() public {
        uint256 id = _challenge(4, 0, 2, 32); // chunks 2..33 of a tensor of 3
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(4, 0, 2, 32);
        assertEq(a.chunks.length, 1);
        vm.prank(alice);
        ac.answer(id, a);
        id = _challenge(4, 1, 5, 1); // the int64 scalar has one chunk: nothing from 5 on
        a = _answer(4, 1, 5, 1);
        assertEq(a.chunks.length, 0);
        vm.prank(alice);
        ac.answer(id, a);
        assertEq(uint256(ac.getChallenge(id).status), uint256(IAvailabilityChallenge.Status.Answered));
        _assertSolvent();
    }

    function test_answer_byAnyoneHoldingTheData_succeeds() public {
        uint256 id = _challenge(0, 2, 0, 1);
        vm.prank(dave);
        ac.answer(id, _answer(0, 2, 0, 1));
        assertGt(ac.creditOf(dave), 0);
        assertEq(ac.creditOf(alice), 0);
        assertEq(ac.creditOf(dave) + ac.creditOf(challenger), CH_BOND);
    }

    function test_answer_refundCappedAtBondAndZeroWithoutBaseFee_succeeds() public {
        vm.fee(1_000_000 gwei);
        uint256 id = _challenge(3, 0, 0, 2);
        vm.prank(alice);
        ac.answer(id, _answer(3, 0, 0, 2));
        assertEq(ac.creditOf(alice), CH_BOND);
        assertEq(ac.creditOf(challenger), 0);
        vm.fee(0);
        id = _challenge(3, 0, 0, 2);
        vm.prank(alice);
        ac.answer(id, _answer(3, 0, 0, 2));
        assertEq(ac.creditOf(alice), CH_BOND);
        assertEq(ac.creditOf(challenger), CH_BOND);
        _assertSolvent();
    }

    function test_answer_paddedCalldataBuysNoLargerRefund_succeeds() public {
        uint256 first = _challenge(3, 0, 0, 2);
        vm.prank(alice);
        ac.answer(first, _answer(3, 0, 0, 2)); // from here on the challenger holds credit
        uint256 plain = _challenge(3, 0, 0, 2);
        vm.prank(bob);
        ac.answer(plain, _answer(3, 0, 0, 2));
        uint256 refund = ac.creditOf(bob);
        uint256 padded = _challenge(3, 0, 0, 2);
        bytes memory call = abi.encodeCall(ac.answer, (padded, _answer(3, 0, 0, 2)));
        vm.prank(dave);
        (bool ok,) = address(ac).call(bytes.concat(call, new bytes(100_000))); // ignored by the decoder
        assertTrue(ok);
        assertEq(uint256(ac.getChallenge(padded).status), uint256(IAvailabilityChallenge.Status.Answered));
        // 100 KB more at 16 gas a byte would be 1.6M gas more; the refund counts the standard encoding
        // only, so the same answer in the same state is refunded the same, within 1,000 gas.
        assertLt(ac.creditOf(dave), refund + 1_000 gwei);
        assertGt(ac.creditOf(dave) + 1_000 gwei, refund);
        _assertSolvent();
    }

    function test_answer_wrongChunk_reverts() public {
        uint256 id = _challenge(5, 0, 0, 2);
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(5, 0, 0, 2);
        a.chunks[1][7] = a.chunks[1][7] ^ 0x01;
        bytes32 leaf = MerkleLog.hashLeaf(a.chunks[1]);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.NotInTree.selector, a.chunkRoot, 1, 3, leaf));
        ac.answer(id, a);
        a = _answer(4, 0, 0, 2); // another checkpoint's chunks
        vm.expectRevert(
            abi.encodeWithSelector(
                IAvailabilityChallenge.NotInTree.selector,
                ac.getChallenge(id).traceRoot,
                5,
                N_CP,
                MerkleLog.hashLeaf(a.stateRoot)
            )
        );
        ac.answer(id, a);
    }

    function test_answer_wrongTensor_reverts() public {
        uint256 id = _challenge(5, 0, 0, 1);
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(5, 2, 0, 1); // tensor 2 for tensor 0
        vm.expectRevert(
            abi.encodeWithSelector(
                IAvailabilityChallenge.NotInTree.selector, a.stateRoot, 0, STATE_SIZE, MerkleLog.hashLeaf(a.tensorId)
            )
        );
        ac.answer(id, a);
        a = _answer(5, 0, 0, 1);
        a.shape[0] = 149; // not the shape the id commits
        bytes32 computed = TensorCommit.tensorId(a.dtype, a.shape, a.chunkRoot);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.TensorIdMismatch.selector, a.tensorId, computed));
        ac.answer(id, a);
    }

    function test_answer_wrongCountOrLength_reverts() public {
        uint256 id = _challenge(5, 0, 1, 2);
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(5, 0, 1, 1); // one chunk of two
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.ChunkCountMismatch.selector, 2, 1, 1));
        ac.answer(id, a);
        a = _answer(5, 0, 1, 2);
        a.chunks[1] = a.chunks[0]; // the last chunk is 88 bytes, not 256
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.ChunkLengthMismatch.selector, 2, 88, 256));
        ac.answer(id, a);
    }

    function test_answer_afterDeadlineOrTwice_reverts() public {
        uint256 id = _challenge(1, 0, 0, 1);
        IAvailabilityChallenge.ChunkAnswer memory a = _answer(1, 0, 0, 1);
        uint64 deadline = ac.getChallenge(id).deadline;
        vm.warp(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IAvailabilityChallenge.ResponseWindowClosed.selector, id, deadline, deadline)
        );
        ac.answer(id, a);
        uint256 second = _challenge(1, 0, 0, 1);
        ac.answer(second, _answer(1, 0, 0, 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAvailabilityChallenge.NotOpen.selector, second, IAvailabilityChallenge.Status.Answered
            )
        );
        ac.answer(second, a);
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.UnknownChallenge.selector, 9));
        ac.answer(9, a);
    }

    // ─────────────────────────────────────────────── unanswered

    function test_claimUnanswered_slashesSolverAndReturnsBond_succeeds() public {
        uint256 id = _challenge(10, 0, 0, 1);
        uint64 deadline = ac.getChallenge(id).deadline;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAvailabilityChallenge.ResponseWindowOpen.selector, id, deadline, block.timestamp
            )
        );
        ac.claimUnanswered(id);
        vm.warp(deadline);
        vm.expectEmit(address(ac));
        emit IAvailabilityChallenge.ChallengeUnanswered(id, taskId, IDisputeHook.DisputeStatus.SolverLost);
        ac.claimUnanswered(id);
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.Failed));
        assertEq(uint256(t.failure), uint256(ITaskMarket.FailureReason.DisputeLost));
        assertEq(market.paymentsOf(submitter), PAYMENT);
        assertEq(sm.proceedsOf(challenger), STAKE * BENEFICIARY_BPS / 10_000);
        assertEq(ac.creditOf(challenger), CH_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAvailabilityChallenge.NotOpen.selector, id, IAvailabilityChallenge.Status.Unanswered
            )
        );
        ac.claimUnanswered(id);
        _assertSolvent();
    }

    function test_claimUnanswered_afterAnotherLossOnlyCloses_succeeds() public {
        uint256 first = _challenge(10, 0, 0, 1);
        uint256 second = _challenge(9, 0, 0, 1);
        vm.warp(ac.getChallenge(first).deadline);
        ac.claimUnanswered(first);
        uint256 sinkBefore = sm.sinkBalance();
        vm.expectEmit(address(ac));
        emit IAvailabilityChallenge.ChallengeUnanswered(second, taskId, IDisputeHook.DisputeStatus.Closed);
        ac.claimUnanswered(second);
        assertEq(sm.sinkBalance(), sinkBefore, "slashed once");
        assertEq(ac.creditOf(challenger), 2 * CH_BOND);
        vm.prank(challenger);
        ac.withdraw();
        assertEq(address(ac).balance, 0);
        _assertSolvent();
    }

    function test_withdraw_nothing_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IAvailabilityChallenge.NothingToWithdraw.selector, dave));
        vm.prank(dave);
        ac.withdraw();
    }

    // ─────────────────────────────────────────────── fuzz

    /// @dev Any demand inside the task's checkpoints and tensors is answerable by the data's holder,
    ///      the bond splits exactly, and nothing stays in the contract once both withdraw.
    function testFuzz_answer_anyRange_succeeds(uint256 c, uint256 j, uint256 first, uint256 count, uint256 fee)
        public
    {
        c = bound(c, 0, N_CP - 1);
        j = bound(j, 0, STATE_SIZE - 1);
        first = bound(first, 0, 40);
        count = bound(count, 1, 32);
        vm.fee(bound(fee, 0, 10_000 gwei));
        uint256 id = _challenge(c, j, first, count);
        vm.prank(dave);
        ac.answer(id, _answer(c, j, first, count));
        assertEq(ac.creditOf(dave) + ac.creditOf(challenger), CH_BOND);
        if (ac.creditOf(dave) > 0) {
            vm.prank(dave);
            ac.withdraw();
        }
        if (ac.creditOf(challenger) > 0) {
            vm.prank(challenger);
            ac.withdraw();
        }
        assertEq(address(ac).balance, 0);
        _assertSolvent();
    }
}
