// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DisputeFixture} from "./DisputeFixture.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";

/// @notice Whole games over the toy run: a lying solver against the honest challenger, an honest
///         solver against a random challenger, pinpointing, higher degrees, several challengers.
contract DisputeGamePlayTest is DisputeFixture {
    function _lie(uint256 step_, uint256 element, uint256 scalarStep) internal {
        lie = Lie({active: true, step: step_, element: element, scalarStep: scalarStep});
    }

    function _assertSolverLost(uint256 gameId) internal view {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.status), uint256(IDisputeGame.GameStatus.ChallengerWon), "challenger won");
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Failed), "task failed");
        assertEq(
            uint256(market.getDispute(g.disputeId).status),
            uint256(IDisputeHook.DisputeStatus.SolverLost),
            "dispute lost"
        );
        assertEq(dg.creditOf(g.challenger), GAME_BOND, "bond back to the challenger");
        assertEq(sm.lockedStakeOf(alice), 0, "stake slashed");
        _assertGameSolvent();
    }

    function _assertSolverWon(uint256 gameId) internal view {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(uint256(g.status), uint256(IDisputeGame.GameStatus.SolverWon), "solver won");
        assertEq(
            uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.ResultSubmitted), "task stands"
        );
        assertEq(
            uint256(market.getDispute(g.disputeId).status), uint256(IDisputeHook.DisputeStatus.SolverWon), "dispute won"
        );
        assertEq(dg.creditOf(alice), GAME_BOND, "bond to the solver");
        _assertGameSolvent();
    }

    // ─────────────────────────────────────────────── lying solver, honest challenger

    function test_play_lyingSolverCaughtAtScalarStep_succeeds() public {
        _lie(5, 2, 1);
        _deliver(true);
        uint256 gameId = _challenge(challenger);
        _play(gameId, true, false, 0);
        IDisputeGame.Game memory g = dg.getGame(gameId);
        assertEq(g.trainingStep, 5, "disputed step");
        assertEq(g.op, N_OPS, "disputed op");
        assertEq(g.flatIndex, 2, "disputed element");
        assertEq(g.lo, 1, "disputed scalar step");
        _assertSolverLost(gameId);
    }

    function test_play_lyingSolverEveryPosition_succeeds() public {
        for (uint256 t; t < W_STEPS; ++t) {
            for (uint256 m; m < VEC; ++m) {
                _lie(t, (t + m) % VEC, m);
                vm.deal(alice, alice.balance + STAKE); // slashed once per game
                _deliver(true);
                uint256 gameId = _challenge(challenger);
                _play(gameId, true, false, 0);
                IDisputeGame.Game memory g = dg.getGame(gameId);
                assertEq(uint256(g.status), uint256(IDisputeGame.GameStatus.ChallengerWon), "challenger won");
                assertEq(g.trainingStep, t, "disputed step");
                assertEq(g.lo, m, "disputed scalar step");
            }
        }
        _assertGameSolvent();
    }

    function test_play_lyingSolverDegreeThree_succeeds() public {
        dg = _newGame(3);
        _lie(6, 0, 3);
        _deliver(true);
        uint256 gameId = _challenge(challenger);
        _play(gameId, true, false, 0);
        _assertSolverLost(gameId);
    }

    function test_play_lyingSolverPinpointingChallenger_succeeds() public {
        dg = _newGame(3);
        _lie(7, 1, 2);
        _deliver(true);
        uint256 gameId = _challengeAt(challenger, 3); // checkpoints (3, 4) hold step 7
        uint256 moves = _play(gameId, true, false, true, 0);
        _assertSolverLost(gameId);
        assertEq(dg.getGame(gameId).lo, 2, "disputed scalar step");
        assertLe(moves, 20, "few moves");
    }

    function test_play_lyingSolverHonestScalarTraceCannotLink_succeeds() public {
        _lie(3, 1, type(uint256).max);
        _deliver(true);
        uint256 gameId = _challenge(challenger);
        while (dg.getGame(gameId).phase != IDisputeGame.Phase.CommitScalar) {
            IDisputeGame.Phase p = dg.getGame(gameId).phase;
            if (p == IDisputeGame.Phase.Choose || p == IDisputeGame.Phase.NameOutput) _honestMove(gameId, challenger);
            else _solverMove(gameId, true);
        }
        IDisputeGame.Game memory g = dg.getGame(gameId);
        IDisputeGame.ScalarCommitment memory c = _scalarCommitment(g, true);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.OutputMismatch.selector, c.lastLeaf, c.outputTensorId));
        dg.commitScalar(gameId, c);
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(gameId);
        dg.resolve(gameId);
        _assertSolverLost(gameId);
    }

    // ─────────────────────────────────────────────── honest solver

    function testFuzz_play_honestSolverNeverLoses_succeeds(uint256 seed) public {
        _deliver(false);
        uint256 gameId = _challenge(challenger);
        _play(gameId, false, true, seed);
        _assertSolverWon(gameId);
        vm.prank(alice);
        dg.withdraw();
        _assertGameSolvent();
        assertEq(address(dg).balance, 0, "all ETH paid out");
    }

    function test_play_honestSolverAgainstHonestNamingChallenger_succeeds() public {
        // A challenger that plays like an honest one but has no disagreement: it ends at the last pair.
        _deliver(false);
        uint256 gameId = _challenge(challenger);
        _play(gameId, false, false, 0);
        _assertSolverWon(gameId);
        assertEq(dg.getGame(gameId).lo, VEC - 1, "ended at the last scalar step");
    }

    // ─────────────────────────────────────────────── several challengers

    function test_play_secondGameClosesAfterSolverLost_succeeds() public {
        _lie(2, 3, 2);
        _deliver(true);
        uint256 first = _challenge(challenger);
        uint256 second = _challenge(bob);
        _play(first, true, false, 0);
        _assertSolverLost(first);
        dg.closeAfterFailure(second);
        IDisputeGame.Game memory g = dg.getGame(second);
        assertEq(uint256(g.status), uint256(IDisputeGame.GameStatus.Closed), "closed");
        assertEq(
            uint256(market.getDispute(g.disputeId).status), uint256(IDisputeHook.DisputeStatus.Closed), "dispute closed"
        );
        assertEq(dg.creditOf(bob), GAME_BOND, "bond returned");
        _assertGameSolvent();
        uint256 before = bob.balance;
        vm.prank(bob);
        dg.withdraw();
        assertEq(bob.balance, before + GAME_BOND, "bob paid");
    }

    function test_play_independentGamesOnHonestSolver_succeeds() public {
        _deliver(false);
        uint256 first = _challenge(challenger);
        uint256 second = _challenge(bob);
        _play(first, false, true, 1);
        _assertSolverWon(first);
        // The second game is still open: the task stays frozen until it ends.
        assertEq(market.getTask(taskId).openDisputes, 1, "one still open");
        vm.warp(block.timestamp + CLOCK + 1);
        dg.claimTimeout(second); // solver to move at DefendTrace and silent: it loses that game
        dg.resolve(second);
        assertEq(uint256(dg.getGame(second).status), uint256(IDisputeGame.GameStatus.ChallengerWon), "second lost");
        assertEq(dg.creditOf(bob), GAME_BOND, "bob's bond back");
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Failed), "task failed");
        _assertGameSolvent();
    }
}
