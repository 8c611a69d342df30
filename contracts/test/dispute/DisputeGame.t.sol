// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DisputeFixture} from "./DisputeFixture.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {IOneStepVerifier} from "../../src/interfaces/IOneStepVerifier.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {BisectionLinks} from "../../src/libraries/BisectionLinks.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";
import {ToyStepVerifier} from "../../src/verifiers/ToyStepVerifier.sol";

/// @notice Every move of the game, its success and each of its reverts.
contract DisputeGameTest is DisputeFixture {
    uint256 internal gameId;

    function setUp() public override {
        super.setUp();
        lie = Lie({active: true, step: 5, element: 2, scalarStep: 1});
        _deliver(true);
        gameId = _challenge(challenger);
    }

    /// @dev Plays (lying solver, honest challenger) until the game waits in `phase` at `level`.
    function _toPhase(IDisputeGame.Phase phase, uint8 level) internal returns (IDisputeGame.Game memory g) {
        for (uint256 i; i < 100; ++i) {
            g = dg.getGame(gameId);
            if (g.phase == phase && g.level == level) return g;
            IDisputeGame.Phase p = g.phase;
            if (p == IDisputeGame.Phase.Choose || p == IDisputeGame.Phase.NameOutput || p == IDisputeGame.Phase.Step) {
                _honestMove(gameId, challenger);
            } else {
                _solverMove(gameId, true);
            }
        }
        revert("phase not reached");
    }

    function _wrongPhase(IDisputeGame.Phase actual, IDisputeGame.Phase expected) internal view returns (bytes memory) {
        return abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, gameId, actual, expected);
    }

    // ─────────────────────────────────────────────── constructor

    function test_constructor_zeroMarket_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(0), 0));
        new DisputeGame(IDisputeHook(address(0)), IOneStepVerifier(address(toy)), GAME_BOND, 2, CLOCK);
    }

    function test_constructor_zeroVerifier_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(1), 0));
        new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(0)), GAME_BOND, 2, CLOCK);
    }

    function test_constructor_degreeOutOfRange_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(2), 1));
        new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, 1, CLOCK);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(2), 65));
        new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, 65, CLOCK);
    }

    function test_constructor_clockOutOfRange_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(3), 0));
        new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, 2, 0);
        uint64 tooLong = uint64(type(uint32).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidParameter.selector, uint8(3), tooLong));
        new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, 2, tooLong);
    }

    function test_constructor_parameters_succeeds() public view {
        assertEq(address(dg.market()), address(market));
        assertEq(address(dg.verifier()), address(toy));
        assertEq(dg.bond(), GAME_BOND);
        assertEq(dg.degree(), 2);
        assertEq(uint256(dg.clock()), uint256(CLOCK));
    }

    // ─────────────────────────────────────────────── market: initial state root

    function test_postTask_zeroInitialStateRoot_reverts() public {
        ITaskMarket.TaskParams memory p = _worldParams();
        p.initialStateRoot = bytes32(0);
        vm.prank(submitter);
        vm.expectRevert(ITaskMarket.ZeroRoot.selector);
        market.postTask{value: PAYMENT}(p);
    }

    function test_disputeContext_initialStateRoot_succeeds() public view {
        assertEq(market.disputeContext(taskId).initialStateRoot, _state(0, false));
        assertEq(market.getTask(taskId).initialStateRoot, _state(0, false));
    }

    // ─────────────────────────────────────────────── challenge

    function test_challenge_records_succeeds() public view {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(gameId, 1);
        assertEq(dg.gameCount(), 1);
        assertEq(g.challenger, challenger);
        assertEq(g.solver, alice);
        assertEq(uint256(g.status), uint256(IDisputeGame.GameStatus.InProgress));
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.DefendTrace));
        assertEq(uint256(g.level), 1);
        assertEq(g.size, N_CHECKPOINTS);
        assertEq(g.lo, 0);
        assertEq(g.hi, N_CHECKPOINTS - 1);
        assertEq(g.root, MerkleBuilder.root(_l1(true)));
        assertEq(g.leafLo, _state(0, false));
        assertEq(g.leafHi, _state(W_STEPS, true));
        assertEq(market.getDispute(g.disputeId).challenger, challenger);
        assertEq(market.getTask(taskId).openDisputes, 1);
        assertEq(address(dg).balance, GAME_BOND);
        _assertGameSolvent();
    }

    function test_challenge_event_succeeds() public {
        vm.deal(bob, GAME_BOND);
        vm.expectEmit(address(dg));
        emit IDisputeGame.GameCreated(2, taskId, 2, bob, alice, GAME_BOND);
        vm.prank(bob);
        dg.challenge{value: GAME_BOND}(taskId, NO_PIN);
    }

    function test_challenge_wrongBond_reverts() public {
        vm.deal(bob, 10 ether);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongBond.selector, GAME_BOND - 1, GAME_BOND));
        dg.challenge{value: GAME_BOND - 1}(taskId, NO_PIN);
    }

    function test_challenge_bySolver_reverts() public {
        vm.deal(alice, alice.balance + GAME_BOND);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.InvalidChallenger.selector, alice));
        dg.challenge{value: GAME_BOND}(taskId, NO_PIN);
    }

    function test_challenge_afterWindow_reverts() public {
        uint64 deadline = market.getTask(taskId).challengeDeadline;
        vm.warp(deadline);
        vm.deal(bob, GAME_BOND);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeHook.ChallengeWindowClosed.selector, taskId, deadline, uint256(deadline))
        );
        dg.challenge{value: GAME_BOND}(taskId, NO_PIN);
    }

    function test_challenge_unauthorisedGame_reverts() public {
        DisputeGame other =
            new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, 2, CLOCK);
        vm.deal(bob, GAME_BOND);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IDisputeHook.NotDisputeContract.selector, address(other)));
        other.challenge{value: GAME_BOND}(taskId, NO_PIN);
    }

    // ─────────────────────────────────────────────── defendTrace

    function test_defendTrace_startsBisection_succeeds() public {
        _solverMove(gameId, true);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.Reveal));
        uint256[] memory pos = dg.pendingPositions(gameId);
        assertEq(pos.length, 1);
        assertEq(pos[0], 2);
    }

    function test_defendTrace_wrongFirstProof_reverts() public {
        bytes32[] memory s = _l1(true);
        bytes32 root = MerkleBuilder.root(s);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.NotInTree.selector, root, 0, N_CHECKPOINTS, _state(0, false))
        );
        dg.defendTrace(gameId, MerkleBuilder.proof(s, 1), MerkleBuilder.proof(s, N_CHECKPOINTS - 1));
    }

    function test_defendTrace_traceNotFromInitialState_reverts() public {
        // A solver whose committed trace starts elsewhere than the task's S_0 cannot defend it.
        bytes32[] memory s = _l1(true);
        s[0] = keccak256("not S_0");
        vm.deal(alice, alice.balance + STAKE);
        _stake(alice, STAKE);
        vm.prank(submitter);
        uint256 id = market.postTask{value: PAYMENT}(_worldParams());
        _commit(id, alice, PAYMENT);
        _toReveal(id);
        _reveal(id, alice, PAYMENT);
        _toClose(id);
        market.closeAuction(id);
        vm.prank(alice);
        market.submitResult(id, MerkleBuilder.root(s), W_STEPS, s[N_CHECKPOINTS - 1], "ipfs://run");
        taskId = id;
        uint256 g2 = _challenge(bob);
        bytes32 root = MerkleBuilder.root(s);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.NotInTree.selector, root, 0, N_CHECKPOINTS, _state(0, false))
        );
        dg.defendTrace(g2, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, N_CHECKPOINTS - 1));
    }

    function test_defendTrace_notSolver_reverts() public {
        bytes32[] memory s = _l1(true);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotYourMove.selector, gameId, bob, alice));
        dg.defendTrace(gameId, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, N_CHECKPOINTS - 1));
    }

    function test_defendTrace_unknownGame_reverts() public {
        bytes32[] memory none = new bytes32[](0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.UnknownGame.selector, 9));
        dg.defendTrace(9, none, none);
    }

    function test_defendTrace_twice_reverts() public {
        _solverMove(gameId, true);
        bytes32[] memory none = new bytes32[](0);
        vm.prank(alice);
        vm.expectRevert(_wrongPhase(IDisputeGame.Phase.Reveal, IDisputeGame.Phase.DefendTrace));
        dg.defendTrace(gameId, none, none);
    }

    // ─────────────────────────────────────────────── reveal

    function test_reveal_storesAndEmits_succeeds() public {
        _solverMove(gameId, true);
        bytes32[] memory s = _l1(true);
        bytes32[] memory leaves = new bytes32[](1);
        leaves[0] = s[2];
        bytes32[][] memory proofs = new bytes32[][](1);
        proofs[0] = MerkleBuilder.proof(s, 2);
        uint256[] memory pos = new uint256[](1);
        pos[0] = 2;
        vm.expectEmit(address(dg));
        emit IDisputeGame.LeavesRevealed(gameId, 1, pos, leaves);
        vm.prank(alice);
        dg.reveal(gameId, leaves, proofs);
        assertEq(uint256(dg.getGame(gameId).phase), uint256(IDisputeGame.Phase.Choose));
        assertEq(dg.pendingPositions(gameId).length, 0);
    }

    function test_reveal_wrongCount_reverts() public {
        _solverMove(gameId, true);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongLeafCount.selector, 0, 1));
        dg.reveal(gameId, new bytes32[](0), new bytes32[][](0));
    }

    function test_reveal_leafNotCommitted_reverts() public {
        _solverMove(gameId, true);
        bytes32[] memory s = _l1(true);
        bytes32[] memory leaves = new bytes32[](1);
        leaves[0] = keccak256("not the committed S_4");
        bytes32[][] memory proofs = new bytes32[][](1);
        proofs[0] = MerkleBuilder.proof(s, 2);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.NotInTree.selector, MerkleBuilder.root(s), 2, N_CHECKPOINTS, leaves[0])
        );
        dg.reveal(gameId, leaves, proofs);
    }

    function test_reveal_byChallenger_reverts() public {
        _solverMove(gameId, true);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotYourMove.selector, gameId, challenger, alice));
        dg.reveal(gameId, new bytes32[](0), new bytes32[][](0));
    }

    // ─────────────────────────────────────────────── choose and pinpoint

    function test_choose_narrows_succeeds() public {
        _solverMove(gameId, true);
        _solverMove(gameId, true); // reveal S_4 (leaf 2): the lie is at step 5, so the challenger agrees
        vm.expectEmit(address(dg));
        emit IDisputeGame.IntervalChosen(gameId, 1, 2, 4, type(uint256).max);
        vm.prank(challenger);
        dg.choose(gameId, 1);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(g.lo, 2);
        assertEq(g.hi, 4);
        assertEq(g.leafLo, _state(4, true));
        assertEq(g.leafHi, _state(8, true));
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.Reveal));
        assertEq(dg.pendingPositions(gameId)[0], 3);
    }

    function test_choose_outOfRange_reverts() public {
        _solverMove(gameId, true);
        _solverMove(gameId, true);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ChoiceOutOfRange.selector, 2, 2));
        dg.choose(gameId, 2);
    }

    function test_choose_bySolver_reverts() public {
        _solverMove(gameId, true);
        _solverMove(gameId, true);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotYourMove.selector, gameId, alice, challenger));
        dg.choose(gameId, 0);
    }

    function test_choose_beforeReveal_reverts() public {
        _solverMove(gameId, true);
        vm.prank(challenger);
        vm.expectRevert(_wrongPhase(IDisputeGame.Phase.Reveal, IDisputeGame.Phase.Choose));
        dg.choose(gameId, 0);
    }

    function test_pinpoint_asksForPair_succeeds() public {
        dg = _newGame(2);
        gameId = _challenge(bob);
        _solverMove(gameId, true);
        _solverMove(gameId, true);
        vm.prank(bob);
        dg.pinpoint(gameId, 0, 1); // [0, 2], pair (1, 2): only 1 is interior
        uint256[] memory pos = dg.pendingPositions(gameId);
        assertEq(pos.length, 1);
        assertEq(pos[0], 1);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertTrue(g.pinned);
        assertEq(g.pin, 1);
    }

    function test_challenge_pinnedPair_succeeds() public {
        uint256 g2 = _challengeAt(bob, 2);
        _solverMove(g2, true);
        uint256[] memory pos = dg.pendingPositions(g2);
        assertEq(pos.length, 2);
        assertEq(pos[0], 2);
        assertEq(pos[1], 3);
    }

    function test_challenge_pinOutsideTraceFallsBack_succeeds() public {
        uint256 g2 = _challengeAt(bob, 99);
        _solverMove(g2, true);
        uint256[] memory pos = dg.pendingPositions(g2);
        assertEq(pos.length, 1);
        assertEq(pos[0], 2);
        assertFalse(dg.getGame(g2).pinned);
    }

    function test_pinpoint_endOfLevelPinsNextLevel_succeeds() public {
        _toPhase(IDisputeGame.Phase.Choose, 3); // [0, 3], revealed 1
        _honestMove(gameId, challenger); // [1, 3]
        _solverMove(gameId, true); // reveals 2
        vm.prank(challenger);
        dg.pinpoint(gameId, 1, 0); // [2, 3]: level 3 done; level 4 starts with the pair (0, 1)
        _solverMove(gameId, true); // openOp
        _honestMove(gameId, challenger); // nameOutput
        _solverMove(gameId, true); // commitScalar
        uint256[] memory pos = dg.pendingPositions(gameId);
        assertEq(pos.length, 1);
        assertEq(pos[0], 1); // k-ary would ask for 2
        _play(gameId, true, false, 0);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
    }

    function test_pinpoint_outsideInterval_reverts() public {
        _solverMove(gameId, true);
        _solverMove(gameId, true);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.PositionOutOfRange.selector, 2, 0, 2));
        dg.pinpoint(gameId, 0, 2);
    }

    function test_pinpoint_pairInsideLevelFour_succeeds() public {
        // Pinpoint at level 4 of a wider program: [0, 4] with pair (2, 3): both interior.
        _toPhase(IDisputeGame.Phase.Reveal, 4);
        _solverMove(gameId, true);
        vm.prank(challenger);
        dg.pinpoint(gameId, 1, 2); // the sub-interval [2, 4]: pair (2, 3): 3 is interior
        uint256[] memory pos = dg.pendingPositions(gameId);
        assertEq(pos.length, 1);
        assertEq(pos[0], 3);
    }

    // ─────────────────────────────────────────────── commitSteps

    function test_commitSteps_linksCheckpoints_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitSteps, 1);
        assertEq(g.lo, 2); // checkpoints 2 (S_4) and 3 (S_6): the lie is in step 5
        _solverMove(gameId, true);
        g = dg.getGame(gameId);
        assertEq(uint256(g.level), 2);
        assertEq(g.checkpoint, 2);
        assertEq(g.size, W_INTERVAL + 1);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.Reveal));
    }

    function test_commitSteps_endNotCheckpoint_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitSteps, 1);
        bytes32[] memory s = _l2(g.lo, true);
        s[W_INTERVAL] = keccak256("another end");
        bytes32 root = MerkleBuilder.root(s);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotInTree.selector, root, 2, 3, g.leafHi));
        dg.commitSteps(gameId, root, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, 2));
    }

    // ─────────────────────────────────────────────── commitOps

    function test_commitOps_linksStates_succeeds() public {
        _toPhase(IDisputeGame.Phase.CommitOps, 2);
        _solverMove(gameId, true);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.level), 3);
        assertEq(g.trainingStep, 5);
        assertEq(g.size, N_OPS + 1);
        assertEq(g.leafLo, Bisection.opLeaf(MerkleBuilder.rootAt(_log(5, true), LOG0_SIZE), LOG0_SIZE));
    }

    function test_commitOps_tooShort_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.size = 1;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.SequenceTooShort.selector, 1, 2));
        dg.commitOps(gameId, c);
    }

    function _commitOpsReverts(IDisputeGame.OpsCommitment memory c, bytes memory err) internal {
        vm.prank(alice);
        vm.expectRevert(err);
        dg.commitOps(gameId, c);
    }

    function _committedAs(IDisputeGame.OpsCommitment memory c) internal pure returns (bytes32) {
        bytes32 layoutHash = keccak256(abi.encode(uint256(c.size - 1), uint256(c.stateSize), c.designated, c.inputsRoot));
        return Bisection.graphCommitment(c.graphRoot, layoutHash);
    }

    function test_commitOps_checksLayout_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        assertEq(g.opGraphRoot, _opGraphRoot()); // the task's commitment until level 3
        _solverMove(gameId, true);
        g = dg.getGame(gameId);
        assertEq(g.firstLogSize, LOG0_SIZE);
        assertEq(g.opGraphRoot, TOY_GRAPH); // the descriptors' root, for the verifier
    }

    function test_commitOps_wrongGraphRoot_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.graphRoot = keccak256("another graph");
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.GraphMismatch.selector, _opGraphRoot(), _committedAs(c))
        );
    }

    function test_commitOps_wrongOpCount_reverts() public {
        // A solver that adds an op to the step (size 5: four ops where the task's graph has three).
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        bytes32[] memory s = new bytes32[](N_OPS + 2);
        bytes32[] memory l3 = _l3(5, true);
        for (uint256 i; i <= N_OPS; ++i) {
            s[i] = l3[i];
        }
        s[N_OPS + 1] = l3[N_OPS];
        c.root = MerkleBuilder.root(s);
        c.size = uint64(s.length);
        c.firstProof = MerkleBuilder.proof(s, 0);
        c.lastProof = MerkleBuilder.proof(s, s.length - 1);
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.GraphMismatch.selector, _opGraphRoot(), _committedAs(c))
        );
    }

    function test_commitOps_wrongStateSize_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.stateSize = 1;
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.GraphMismatch.selector, _opGraphRoot(), _committedAs(c))
        );
    }

    function test_commitOps_chosenDesignation_reverts() public {
        // Entries the solver picks itself (W's old entry for X_t+1 too) are not the task's layout,
        // even before the ids are compared with S_t+1.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.designated[0] = 0;
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.GraphMismatch.selector, _opGraphRoot(), _committedAs(c))
        );
    }

    function test_commitOps_batchOfAnotherStep_reverts() public {
        // The solver's first log holds step 6's batch at step 5.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.inputIds = _inputIds(6);
        bytes32 row = MerkleLog.hashLeaf(abi.encode(uint256(5), c.inputIds));
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, c.inputsRoot, 5, W_STEPS, row)
        );
    }

    function test_commitOps_rowOfAnotherStep_reverts() public {
        // Row 6 with its own valid proof does not pass as row 5: the leaf carries its step.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.inputIds = _inputIds(6);
        c.inputsProof = MerkleBuilder.proofOfHashes(_inputRows(), 6);
        bytes32 row = MerkleLog.hashLeaf(abi.encode(uint256(5), c.inputIds));
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, c.inputsRoot, 5, W_STEPS, row)
        );
    }

    function test_commitOps_firstLogWithOtherInputs_reverts() public {
        // Level 3 whose first leaf is a log with another batch entry: the computed first leaf is
        // not the solver's leaf 0.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        bytes32[] memory s = _l3(5, true);
        bytes32[] memory entries = _log(5, true);
        entries[STATE_SIZE] = keccak256("another batch");
        s[0] = Bisection.opLeaf(MerkleBuilder.rootAt(entries, LOG0_SIZE), LOG0_SIZE);
        c.root = MerkleBuilder.root(s);
        c.firstProof = MerkleBuilder.proof(s, 0);
        c.lastProof = MerkleBuilder.proof(s, s.length - 1);
        bytes32 first = Bisection.opLeaf(MerkleBuilder.rootAt(_log(5, true), LOG0_SIZE), LOG0_SIZE);
        _commitOpsReverts(c, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, c.root, 0, N_OPS + 1, first));
    }

    function test_commitOps_wrongBorderLength_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.stateBorder = new bytes32[](2); // S_t has two tensors: one complete subtree
        _commitOpsReverts(c, abi.encodeWithSelector(IDisputeGame.WrongBorderLength.selector, 2, 1));
    }

    function test_commitOps_borderNotOfState_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.stateBorder[0] = keccak256("another state");
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.BorderMismatch.selector, g.leafLo, keccak256("another state"))
        );
    }

    function test_commitOps_wrongLastLogSize_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.lastLogSize = uint64(LOG0_SIZE + N_OPS + 1);
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.LogSizeMismatch.selector, LOG0_SIZE + N_OPS, LOG0_SIZE + N_OPS + 1)
        );
    }

    function testFuzz_extendRoot_matchesBuilder(uint8 stateSize, uint8 extra) public view {
        uint256 n = bound(stateSize, 1, 100);
        uint256 m = bound(extra, 0, 40);
        bytes32[] memory all = new bytes32[](n + m);
        for (uint256 i; i < n + m; ++i) {
            all[i] = keccak256(abi.encode(i, stateSize));
        }
        bytes32[] memory values = new bytes32[](m);
        for (uint256 i; i < m; ++i) {
            values[i] = all[n + i];
        }
        (bytes32 root, uint256 size) =
            this.extendRootOf(MerkleBuilder.rootAt(all, n), n, MerkleBuilder.border(all, n), values);
        assertEq(size, n + m);
        assertEq(root, MerkleBuilder.root(all));
    }

    function extendRootOf(bytes32 root, uint256 size, bytes32[] calldata border, bytes32[] calldata values)
        external
        pure
        returns (bytes32, uint256)
    {
        return BisectionLinks.extendRoot(root, size, border, values);
    }

    function test_commitOps_wrongDesignatedId_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        bytes32[] memory entries = _log(5, true);
        // The task's entries, but the id of entry 5 proven at entry 1's place.
        c.designatedIds[1] = entries[5];
        c.designatedProofs[1] = MerkleBuilder.proof(entries, 5);
        _commitOpsReverts(
            c,
            abi.encodeWithSelector(IDisputeGame.NotInTree.selector, c.lastLogRoot, 1, LOG0_SIZE + N_OPS, entries[5])
        );
    }

    function test_commitOps_emptyDesignation_reverts() public {
        // The empty designation with a layout that commits it (a task posted with it): the state
        // link still needs one entry per tensor.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitOps, 2);
        IDisputeGame.OpsCommitment memory c = _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, true);
        c.designated = new uint64[](0);
        _commitOpsReverts(
            c, abi.encodeWithSelector(IDisputeGame.GraphMismatch.selector, _opGraphRoot(), _committedAs(c))
        );
    }

    // ─────────────────────────────────────────────── openOp and nameOutput

    function test_openOp_opensAdjacentLogs_succeeds() public {
        _toPhase(IDisputeGame.Phase.OpenOp, 3);
        _solverMove(gameId, true);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.NameOutput));
        assertEq(g.op, N_OPS);
        assertEq(g.logSize, LOG0_SIZE + N_OPS - 1);
        assertEq(g.nextLogSize, LOG0_SIZE + N_OPS);
        assertEq(g.logRoot, MerkleBuilder.rootAt(_log(5, true), LOG0_SIZE + N_OPS - 1));
    }

    function test_openOp_wrongPreimage_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.OpenOp, 3);
        bytes32[] memory entries = _log(5, true);
        uint256 pre = LOG0_SIZE + g.lo;
        bytes32 preRoot = MerkleBuilder.rootAt(entries, pre - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.LeafPreimageMismatch.selector, g.leafLo, Bisection.opLeaf(preRoot, pre))
        );
        dg.openOp(gameId, preRoot, pre, MerkleBuilder.root(entries), pre + 1, new bytes32[](0));
    }

    function test_openOp_wrongPreSize_reverts() public {
        // Op j's agreed log has firstLogSize + j - 1 entries, whatever the solver's leaf says.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.OpenOp, 3);
        bytes32[] memory entries = _log(5, true);
        uint256 pre = LOG0_SIZE + g.lo;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.LogSizeMismatch.selector, pre, pre - 1));
        dg.openOp(gameId, MerkleBuilder.rootAt(entries, pre - 1), pre - 1, MerkleBuilder.root(entries), pre + 1,
            new bytes32[](0));
    }

    function test_openOp_twoOutputs_reverts() public {
        // An op appends exactly one entry.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.OpenOp, 3);
        bytes32[] memory entries = _log(5, true);
        uint256 pre = LOG0_SIZE + g.lo;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.LogSizeMismatch.selector, pre + 1, pre + 2));
        dg.openOp(gameId, MerkleBuilder.rootAt(entries, pre), pre, MerkleBuilder.root(entries), pre + 2,
            new bytes32[](0));
    }

    function test_openOp_inconsistentLogs_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.OpenOp, 3);
        bytes32[] memory entries = _log(5, true);
        uint256 pre = LOG0_SIZE + g.lo;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotConsistent.selector, pre, pre + 1));
        dg.openOp(
            gameId,
            MerkleBuilder.rootAt(entries, pre),
            uint64(pre),
            MerkleBuilder.rootAt(entries, pre + 1),
            pre + 1,
            new bytes32[](1)
        );
    }

    function test_nameOutput_records_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.expectEmit(address(dg));
        emit IDisputeGame.OutputNamed(gameId, g.logSize, 2);
        vm.prank(challenger);
        dg.nameOutput(gameId, g.logSize, 2);
        g = dg.getGame(gameId);
        assertEq(g.outputEntry, LOG0_SIZE + N_OPS - 1);
        assertEq(g.flatIndex, 2);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.CommitScalar));
    }

    function test_nameOutput_notAnOutput_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.EntryOutOfRange.selector, 0, g.logSize, g.nextLogSize));
        dg.nameOutput(gameId, 0, 2);
    }

    // ─────────────────────────────────────────────── requestChunk and openChunk

    function _request(uint256 chunkIndex) internal returns (IDisputeGame.Game memory) {
        vm.prank(challenger);
        dg.requestChunk(gameId, chunkIndex);
        return dg.getGame(gameId);
    }

    function _openChunkReverts(IDisputeGame.ChunkOpening memory o, bytes memory err) internal {
        vm.prank(alice);
        vm.expectRevert(err);
        dg.openChunk(gameId, o);
    }

    function test_requestChunk_asksSolver_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.expectEmit(address(dg));
        emit IDisputeGame.ChunkRequested(gameId, g.logSize, 0);
        g = _request(0);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.OpenChunk));
        assertEq(g.chunkRequests, 1);
        (IDisputeGame.Party party,) = dg.clockOf(gameId);
        assertEq(uint256(party), uint256(IDisputeGame.Party.Solver));
    }

    function test_requestChunk_notChallenger_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotYourMove.selector, gameId, alice, challenger));
        dg.requestChunk(gameId, 0);
    }

    function test_requestChunk_wrongPhase_reverts() public {
        _toPhase(IDisputeGame.Phase.OpenOp, 3);
        vm.prank(challenger);
        vm.expectRevert(_wrongPhase(IDisputeGame.Phase.OpenOp, IDisputeGame.Phase.NameOutput));
        dg.requestChunk(gameId, 0);
    }

    function test_requestChunk_indexTooLarge_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        uint256 index = uint256(type(uint64).max) + 1;
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.PositionOutOfRange.selector, index, 0, type(uint64).max));
        dg.requestChunk(gameId, index);
    }

    function test_requestChunk_tooMany_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        uint256 max = dg.MAX_CHUNK_REQUESTS();
        for (uint256 i; i < max; ++i) {
            _request(i % 2);
            _solverMove(gameId, true);
        }
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.TooManyChunkRequests.selector, max, max));
        dg.requestChunk(gameId, 0);
    }

    function test_openChunk_opensSolversChunk_succeeds() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(0);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        // The lying solver's chunk: element 2 is one more than the honest sum.
        assertTrue(keccak256(o.chunk) != keccak256(_chunk(_opOut(5, N_OPS, false))));
        vm.expectEmit(address(dg));
        emit IDisputeGame.ChunkOpened(gameId, 0, TensorCommit.DTYPE_INT32, _shape(), o.chunk, new bytes32[](0));
        vm.prank(alice);
        dg.openChunk(gameId, o);
        g = dg.getGame(gameId);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.NameOutput));
        // The challenger names the element it read there and the game goes on to level 4.
        vm.prank(challenger);
        dg.nameOutput(gameId, g.logSize, 2);
        assertEq(dg.getGame(gameId).flatIndex, 2);
    }

    function test_openChunk_absentChunkOpensHeader_succeeds() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(1); // a 4-vector of int32 has one chunk
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        assertEq(o.chunk.length, 0);
        vm.expectEmit(address(dg));
        emit IDisputeGame.ChunkOpened(gameId, 1, TensorCommit.DTYPE_INT32, _shape(), "", new bytes32[](0));
        vm.prank(alice);
        dg.openChunk(gameId, o);
        assertEq(uint256(dg.getGame(gameId).phase), uint256(IDisputeGame.Phase.NameOutput));
    }

    function test_openChunk_chunkPastTheEnd_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(1);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        o.chunk = _chunk(_opOut(5, N_OPS, true));
        _openChunkReverts(o, abi.encodeWithSelector(IDisputeGame.ChunkLengthMismatch.selector, 1, 0, 16));
    }

    function test_openChunk_shortChunk_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(0);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        o.chunk = hex"00000001";
        _openChunkReverts(o, abi.encodeWithSelector(IDisputeGame.ChunkLengthMismatch.selector, 0, 16, 4));
    }

    function test_openChunk_honestChunkForALie_reverts() public {
        // The lying solver cannot show the honest values: its committed chunk is another.
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(0);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        o.chunk = _chunk(_opOut(5, N_OPS, false));
        bytes32 leaf = MerkleLog.hashLeaf(o.chunk);
        _openChunkReverts(o, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, o.chunkRoot, 0, 1, leaf));
    }

    function test_openChunk_notTheOutput_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(0);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        bytes32[] memory entries = _log(5, true);
        o.tensorId = entries[0]; // X_t, an input, proven at entry 0
        o.idProof = MerkleBuilder.proof(entries, 0, g.nextLogSize);
        _openChunkReverts(
            o, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, g.nextLogRoot, g.logSize, g.nextLogSize, o.tensorId)
        );
    }

    function test_openChunk_wrongHeader_reverts() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory g = _request(0);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        o.dtype = TensorCommit.DTYPE_FLOAT32;
        bytes32 computed = TensorCommit.tensorId(o.dtype, o.shape, o.chunkRoot);
        _openChunkReverts(o, abi.encodeWithSelector(IDisputeGame.TensorIdMismatch.selector, o.tensorId, computed));
    }

    function test_openChunk_wrongPhase_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
        _openChunkReverts(o, _wrongPhase(IDisputeGame.Phase.NameOutput, IDisputeGame.Phase.OpenChunk));
    }

    function test_openChunk_withholdingSolver_losesOnTime_succeeds() public {
        _toPhase(IDisputeGame.Phase.NameOutput, 3);
        IDisputeGame.Game memory asked = _request(0);
        vm.warp(block.timestamp + CLOCK + 1);
        IDisputeGame.ChunkOpening memory o = _chunkOpening(asked, true);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeGame.ClockExpired.selector, gameId, IDisputeGame.Party.Solver, CLOCK + 1, asked.solverClock
            )
        );
        dg.openChunk(gameId, o);
        dg.claimTimeout(gameId);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertTrue(g.solverLost);
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
        _assertGameSolvent();
    }

    // ─────────────────────────────────────────────── commitScalar and rejectOutput

    function test_commitScalar_linksProgram_succeeds() public {
        _toPhase(IDisputeGame.Phase.CommitScalar, 3);
        _solverMove(gameId, true);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.level), 4);
        assertEq(g.size, VEC + 1);
        assertEq(g.leafLo, toy.stateOf(0, 0));
    }

    function test_commitScalar_wrongOutputEntry_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitScalar, 3);
        IDisputeGame.ScalarCommitment memory c = _scalarCommitment(g, true);
        c.outputTensorId = _log(5, true)[0];
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeGame.NotInTree.selector, g.nextLogRoot, g.outputEntry, g.nextLogSize, c.outputTensorId
            )
        );
        dg.commitScalar(gameId, c);
    }

    function test_commitScalar_wrongInitialState_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitScalar, 3);
        IDisputeGame.ScalarCommitment memory c = _scalarCommitment(g, true);
        bytes32[] memory s = _l4(g.trainingStep, g.outputEntry, g.flatIndex, true);
        s[0] = toy.stateOf(0, 7);
        c.root = MerkleBuilder.root(s);
        c.firstProof = MerkleBuilder.proof(s, 0);
        c.lastProof = MerkleBuilder.proof(s, VEC);
        bytes32 initial = toy.stateOf(0, 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotInTree.selector, c.root, 0, VEC + 1, initial));
        dg.commitScalar(gameId, c);
    }

    function test_rejectOutput_elementExists_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.CommitScalar, 3);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ElementExists.selector, g.flatIndex, VEC));
        this.rejectAsAlice(g);
    }

    function rejectAsAlice(IDisputeGame.Game memory g) external {
        vm.startPrank(alice);
        _rejectOutput(gameId, g, true);
        vm.stopPrank();
    }

    function test_rejectOutput_missingElement_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.prank(challenger);
        dg.nameOutput(gameId, g.logSize, VEC); // one past the end of a 4-vector
        g = dg.getGame(gameId);
        vm.expectEmit(address(dg));
        emit IDisputeGame.OutputRejected(gameId, VEC, VEC);
        this.rejectAsAlice(g);
        dg.resolve(gameId);
        // The challenger lost this game although the solver lied elsewhere: a wrong claim loses.
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.SolverWon));
        assertEq(dg.creditOf(alice), GAME_BOND);
        _assertGameSolvent();
    }

    function test_rejectOutput_wrongShape_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        vm.prank(challenger);
        dg.nameOutput(gameId, g.logSize, VEC);
        g = dg.getGame(gameId);
        bytes32[] memory entries = _log(5, true);
        uint32[] memory shape = new uint32[](1);
        shape[0] = 2;
        bytes32 chunkRoot = MerkleLog.hashLeaf(_chunk(_opOut(5, N_OPS, true)));
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeGame.TensorIdMismatch.selector,
                entries[g.outputEntry],
                TensorCommit.tensorId(TensorCommit.DTYPE_INT32, shape, chunkRoot)
            )
        );
        dg.rejectOutput(
            gameId,
            entries[g.outputEntry],
            MerkleBuilder.proof(entries, g.outputEntry, g.nextLogSize),
            TensorCommit.DTYPE_INT32,
            shape,
            chunkRoot
        );
    }

    // ─────────────────────────────────────────────── step

    function test_step_mismatchSolverLoses_succeeds() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.Step, 4);
        assertEq(g.lo, 1);
        bytes memory proof = _stepProof(g);
        bytes32 computed = toy.stateOf(2, _acc(5, 2, g.outputEntry, g.flatIndex, false));
        assertTrue(computed != g.leafHi, "the solver's leaf 2 is one too high");
        vm.expectEmit(address(dg));
        emit IDisputeGame.OneStepChecked(gameId, 1, computed, g.leafHi);
        vm.prank(bob); // anyone may bring the proof
        dg.step(gameId, proof);
        assertEq(uint256(dg.getGame(gameId).phase), uint256(IDisputeGame.Phase.Resolve));
        assertTrue(dg.getGame(gameId).solverLost);
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
        assertEq(dg.creditOf(challenger), GAME_BOND);
    }

    function test_step_badOpening_reverts() public {
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.Step, 4);
        bytes32[] memory entries = _log(5, false);
        bytes memory proof = abi.encode(
            uint256(99),
            entries[0],
            MerkleBuilder.proof(entries, 0, g.logSize),
            abi.encode(_shape(), _chunk(_x(5, false)), new bytes32[](0))
        );
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(ToyStepVerifier.StateOpeningMismatch.selector, g.leafLo, toy.stateOf(1, 99))
        );
        dg.step(gameId, proof);
    }

    function test_step_wrongPhase_reverts() public {
        vm.prank(challenger);
        vm.expectRevert(_wrongPhase(IDisputeGame.Phase.DefendTrace, IDisputeGame.Phase.Step));
        dg.step(gameId, "");
    }

    // ─────────────────────────────────────────────── clocks

    function test_claimTimeout_solverSilent_succeeds() public {
        vm.warp(block.timestamp + CLOCK + 1);
        vm.expectEmit(address(dg));
        emit IDisputeGame.TimedOut(gameId, IDisputeGame.Party.Solver);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Failed));
        assertEq(dg.creditOf(challenger), GAME_BOND);
    }

    function test_claimTimeout_challengerSilent_succeeds() public {
        _solverMove(gameId, true);
        _solverMove(gameId, true);
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.SolverWon));
        assertEq(dg.creditOf(alice), GAME_BOND);
    }

    function test_claimTimeout_timeLeft_reverts() public {
        vm.warp(block.timestamp + CLOCK);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeGame.ClockNotExpired.selector, gameId, IDisputeGame.Party.Solver, CLOCK, CLOCK
            )
        );
        dg.claimTimeout(gameId);
    }

    function test_claimTimeout_decided_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.AlreadyDecided.selector, gameId, true));
        dg.claimTimeout(gameId);
    }

    function test_claimTimeout_afterEnd_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.GameOver.selector, gameId, IDisputeGame.GameStatus.ChallengerWon)
        );
        dg.claimTimeout(gameId);
    }

    function test_move_decided_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        bytes32[] memory none = new bytes32[](0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.AlreadyDecided.selector, gameId, true));
        dg.defendTrace(gameId, none, none);
        (IDisputeGame.Party party, uint256 remaining) = dg.clockOf(gameId);
        assertEq(uint256(party), uint256(IDisputeGame.Party.None));
        assertEq(remaining, 0);
    }

    function test_resolve_undecided_reverts() public {
        vm.expectRevert(_wrongPhase(IDisputeGame.Phase.DefendTrace, IDisputeGame.Phase.Resolve));
        dg.resolve(gameId);
    }

    function test_resolve_twice_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.GameOver.selector, gameId, IDisputeGame.GameStatus.ChallengerWon)
        );
        dg.resolve(gameId);
    }

    function test_move_afterClockExpired_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        bytes32[] memory s = _l1(true);
        bytes32[] memory first = MerkleBuilder.proof(s, 0);
        bytes32[] memory last = MerkleBuilder.proof(s, N_CHECKPOINTS - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeGame.ClockExpired.selector, gameId, IDisputeGame.Party.Solver, CLOCK + 1, CLOCK
            )
        );
        dg.defendTrace(gameId, first, last);
    }

    function test_clock_runsOnlyOnTurn_succeeds() public {
        vm.warp(block.timestamp + 1 hours);
        _solverMove(gameId, true); // solver used 1 h
        vm.warp(block.timestamp + 2 hours);
        _solverMove(gameId, true); // solver used 2 h more (still its turn: reveal)
        vm.warp(block.timestamp + 5 hours);
        (IDisputeGame.Party party, uint256 remaining) = dg.clockOf(gameId);
        assertEq(uint256(party), uint256(IDisputeGame.Party.Challenger));
        assertEq(remaining, CLOCK - 5 hours);
        _honestMove(gameId, challenger);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(g.solverClock, CLOCK - 3 hours);
        assertEq(g.challengerClock, CLOCK - 5 hours);
        (party, remaining) = dg.clockOf(gameId);
        assertEq(uint256(party), uint256(IDisputeGame.Party.Solver));
        assertEq(remaining, CLOCK - 3 hours);
    }

    // ─────────────────────────────────────────────── after the end, closing, money

    function test_move_afterResolution_reverts() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        bytes32[] memory none = new bytes32[](0);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.GameOver.selector, gameId, IDisputeGame.GameStatus.ChallengerWon)
        );
        dg.defendTrace(gameId, none, none);
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.GameOver.selector, gameId, IDisputeGame.GameStatus.ChallengerWon)
        );
        dg.step(gameId, "");
    }

    function test_closeAfterFailure_taskStands_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.TaskNotFailed.selector, taskId, IDisputeHook.TaskStatus.ResultSubmitted)
        );
        dg.closeAfterFailure(gameId);
    }

    function test_withdraw_paysCredit_succeeds() public {
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        uint256 before = challenger.balance;
        vm.expectEmit(address(dg));
        emit IDisputeGame.Withdrawn(challenger, GAME_BOND);
        vm.prank(challenger);
        dg.withdraw();
        assertEq(challenger.balance, before + GAME_BOND);
        assertEq(dg.creditOf(challenger), 0);
        assertEq(address(dg).balance, 0);
        _assertGameSolvent();
    }

    function test_withdraw_nothing_reverts() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NothingToWithdraw.selector, bob));
        dg.withdraw();
    }

    function test_resolve_afterMarketExpired_succeeds() public {
        // The market expires a dispute its game never reported; the game still settles its bond.
        vm.warp(block.timestamp + DISPUTE_TIMEOUT);
        market.expireDispute(dg.getGame(gameId).disputeId);
        dg.claimTimeout(gameId); // the solver never defended
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.ResultSubmitted), "no slash");
        assertEq(dg.creditOf(challenger), GAME_BOND);
        _assertGameSolvent();
    }

    // ─────────────────────────────────────────────── rejectHeader

    /// @dev A new task whose graph is real descriptors with output shape `shape`, its toy tensors
    ///      of `dtype`, challenged and played to NameOutput (the disputed op is op 3, index 2).
    function _headerGame(uint8 dtype, uint32[] memory shape) internal returns (IDisputeGame.Game memory) {
        outDtype = dtype;
        described = true;
        descShape = shape;
        _deliver(true);
        gameId = _challenge(challenger);
        return _toPhase(IDisputeGame.Phase.NameOutput, 3);
    }

    function _vec() internal pure returns (uint32[] memory) {
        return _shape();
    }

    function _square() internal pure returns (uint32[] memory s) {
        s = new uint32[](2);
        (s[0], s[1]) = (2, 2);
    }

    /// @dev The challenger's opening of op g.op's descriptor and of the solver's output header.
    function _header(IDisputeGame.Game memory g) internal view returns (IDisputeGame.HeaderOpening memory h) {
        bytes32[] memory entries = _log(g.trainingStep, true);
        h.descriptor = _descriptor(g.op - 1);
        h.graphSize = N_OPS;
        h.graphProof = MerkleBuilder.proofOfHashes(_descriptorLeaves(), g.op - 1);
        h.tensorId = entries[g.logSize];
        h.idProof = MerkleBuilder.proof(entries, g.logSize, g.nextLogSize);
        h.dtype = outDtype;
        h.shape = _shape();
        h.chunkRoot = MerkleLog.hashLeaf(_chunk(_opOut(g.trainingStep, g.op, true)));
    }

    function _rejectHeaderReverts(IDisputeGame.HeaderOpening memory h, bytes memory err) internal {
        vm.prank(challenger);
        vm.expectRevert(err);
        dg.rejectHeader(gameId, h);
    }

    function test_rejectHeader_wrongShape_succeeds() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        assertEq(g.op, N_OPS);
        vm.expectEmit(address(dg));
        emit IDisputeGame.HeaderRejected(
            gameId, TensorCommit.DTYPE_FLOAT32, _vec(), TensorCommit.DTYPE_FLOAT32, _square()
        );
        vm.prank(challenger);
        dg.rejectHeader(gameId, _header(g));
        g = dg.getGame(gameId);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.Resolve));
        assertTrue(g.solverLost);
        dg.resolve(gameId);
        assertEq(uint256(dg.getGame(gameId).status), uint256(IDisputeGame.GameStatus.ChallengerWon));
        assertEq(dg.creditOf(challenger), GAME_BOND);
        _assertGameSolvent();
    }

    function test_rejectHeader_wrongDtype_succeeds() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_INT32, _vec());
        vm.expectEmit(address(dg));
        emit IDisputeGame.HeaderRejected(gameId, TensorCommit.DTYPE_INT32, _vec(), TensorCommit.DTYPE_FLOAT32, _vec());
        vm.prank(challenger);
        dg.rejectHeader(gameId, _header(g));
        assertTrue(dg.getGame(gameId).solverLost);
    }

    function test_rejectHeader_afterOpenChunk_succeeds() public {
        _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        _request(0);
        _solverMove(gameId, true); // opens chunk 0, showing the header
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.phase), uint256(IDisputeGame.Phase.NameOutput));
        vm.prank(challenger);
        dg.rejectHeader(gameId, _header(g));
        assertTrue(dg.getGame(gameId).solverLost);
    }

    function test_rejectHeader_headerMatches_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _vec());
        _rejectHeaderReverts(
            _header(g),
            abi.encodeWithSelector(IDisputeGame.HeaderMatches.selector, N_OPS - 1, TensorCommit.DTYPE_FLOAT32, _vec())
        );
    }

    function test_rejectHeader_wrongGraphProof_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        h.graphProof[0] = keccak256("forged");
        _rejectHeaderReverts(
            h,
            abi.encodeWithSelector(
                IDisputeGame.NotInTree.selector, _graphRoot(), N_OPS - 1, N_OPS, MerkleLog.hashLeaf(h.descriptor)
            )
        );
    }

    function test_rejectHeader_forgedDescriptor_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _vec());
        IDisputeGame.HeaderOpening memory h = _header(g);
        descShape = _square(); // a descriptor of op 2 the graph does not hold
        h.descriptor = _descriptor(g.op - 1);
        _rejectHeaderReverts(
            h,
            abi.encodeWithSelector(
                IDisputeGame.NotInTree.selector,
                dg.getGame(gameId).opGraphRoot,
                N_OPS - 1,
                N_OPS,
                MerkleLog.hashLeaf(h.descriptor)
            )
        );
    }

    function test_rejectHeader_otherOpsDescriptor_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        h.descriptor = _descriptor(0);
        h.graphProof = MerkleBuilder.proofOfHashes(_descriptorLeaves(), 0);
        _rejectHeaderReverts(
            h, abi.encodeWithSelector(IDisputeGame.DescriptorMismatch.selector, N_OPS - 1, 0, g.logSize, LOG0_SIZE)
        );
    }

    function test_rejectHeader_malformedDescriptor_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        h.descriptor = abi.encode(uint256(N_OPS - 1));
        _rejectHeaderReverts(h, abi.encodeWithSelector(IDisputeGame.BadDescriptorWord.selector, 32, 7 * 32));
    }

    function test_rejectHeader_wrongIdProof_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        bytes32 honest = _log(g.trainingStep, false)[g.logSize];
        h.tensorId = honest; // the honest output is not in the solver's log
        _rejectHeaderReverts(
            h, abi.encodeWithSelector(IDisputeGame.NotInTree.selector, g.nextLogRoot, g.logSize, g.nextLogSize, honest)
        );
    }

    function test_rejectHeader_headerNotTheIds_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _vec());
        IDisputeGame.HeaderOpening memory h = _header(g);
        h.shape = _square(); // claims a wrong shape the solver's id does not have
        _rejectHeaderReverts(
            h,
            abi.encodeWithSelector(
                IDisputeGame.TensorIdMismatch.selector,
                h.tensorId,
                TensorCommit.tensorId(TensorCommit.DTYPE_FLOAT32, _square(), h.chunkRoot)
            )
        );
    }

    function test_rejectHeader_notChallenger_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotYourMove.selector, gameId, alice, challenger));
        dg.rejectHeader(gameId, h);
    }

    function test_rejectHeader_wrongPhase_reverts() public {
        IDisputeGame.Game memory g = _headerGame(TensorCommit.DTYPE_FLOAT32, _square());
        IDisputeGame.HeaderOpening memory h = _header(g);
        _request(0);
        _rejectHeaderReverts(h, _wrongPhase(IDisputeGame.Phase.OpenChunk, IDisputeGame.Phase.NameOutput));
        _solverMove(gameId, true);
        vm.prank(challenger);
        dg.nameOutput(gameId, g.logSize, 2);
        _rejectHeaderReverts(h, _wrongPhase(IDisputeGame.Phase.CommitScalar, IDisputeGame.Phase.NameOutput));
    }

    function test_rejectHeader_toyGraph_reverts() public {
        // The default toy task commits no descriptors: no descriptor can be proven against it.
        IDisputeGame.Game memory g = _toPhase(IDisputeGame.Phase.NameOutput, 3);
        described = true;
        descShape = _square();
        IDisputeGame.HeaderOpening memory h = _header(g);
        _rejectHeaderReverts(
            h,
            abi.encodeWithSelector(
                IDisputeGame.NotInTree.selector, TOY_GRAPH, N_OPS - 1, N_OPS, MerkleLog.hashLeaf(h.descriptor)
            )
        );
    }
}
