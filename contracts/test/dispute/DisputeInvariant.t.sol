// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {InvariantBase} from "../utils/InvariantBase.sol";
import {DisputeFixture} from "./DisputeFixture.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";

/// @notice Plays games one after another: an honest party against a random adversary. Either an
///         honest solver against a challenger choosing, pinning and naming at random, or an honest
///         challenger against a solver lying somewhere in its run. Both adversaries also stall and
///         send garbage (wrong leaves, proofs for other positions) and moves after the end.
///         Time passes only on the adversary's turn: the honest party always moves in time.
contract DisputeHandler is DisputeFixture {
    uint256 public current;
    bool public honestSolver;
    uint256 public games;
    uint256 public settled;
    uint256 public calls; // handler calls in this run
    uint256 public honestLosses;
    uint256 public lateMovesAccepted;
    uint256 public garbageAccepted;

    constructor() {
        setUp();
    }

    function _party(uint256 gameId) internal view returns (IDisputeGame.Party party) {
        (party,) = dg.clockOf(gameId);
    }

    function _honestParty() internal view returns (IDisputeGame.Party) {
        return honestSolver ? IDisputeGame.Party.Solver : IDisputeGame.Party.Challenger;
    }

    function _inProgress() internal view returns (bool) {
        return current != 0 && dg.getGame(current).status == IDisputeGame.GameStatus.InProgress;
    }

    /// @dev Records the outcome of the current game once it is settled.
    function _check() internal {
        IDisputeGame.Game memory g = dg.getGame(current);
        if (g.status == IDisputeGame.GameStatus.InProgress && g.phase == IDisputeGame.Phase.Resolve) {
            if (g.solverLost == honestSolver) ++honestLosses;
        }
    }

    // ─────────────────────────────────────────────── actions

    function start(uint256 seed) external {
        ++calls;
        if (_inProgress()) return;
        honestSolver = seed % 2 == 0;
        if (honestSolver) {
            lie.active = false;
        } else {
            uint256 scalar = (seed >> 16) % (VEC + 1);
            lie = Lie({
                active: true,
                step: (seed >> 8) % W_STEPS,
                element: (seed >> 12) % VEC,
                scalarStep: scalar == VEC ? type(uint256).max : scalar
            });
        }
        vm.deal(alice, alice.balance + STAKE);
        vm.deal(submitter, submitter.balance + PAYMENT);
        _deliver(!honestSolver);
        uint256 pin = (seed >> 20) % 3 == 0 ? (seed >> 24) % 6 : NO_PIN;
        current = _challengeAt(challenger, pin);
        ++games;
        _honestRespond();
    }

    /// @dev The honest party answers at once whenever it is its turn.
    function _honestRespond() internal {
        for (uint256 i; i < 8 && _inProgress() && _party(current) == _honestParty(); ++i) {
            if (honestSolver) _solverMove(current, false);
            else _honestMove(current, challenger);
            _check();
        }
    }

    /// @dev One adversary move from its strategy (the honest party then answers).
    function adversary(uint256 seed) external {
        ++calls;
        _honestRespond();
        if (!_inProgress() || _party(current) != _adversary()) return;
        // A move after the adversary's time ran out reverts; leave the game to `timeout`.
        (, uint256 remaining) = dg.clockOf(current);
        if (remaining == 0) return;
        if (honestSolver) {
            _randomMove(current, challenger, seed);
        } else {
            // A liar whose scalar trace is honest cannot link it to its output: it can only stall.
            IDisputeGame.Game memory g = dg.getGame(current);
            bool stuck =
                g.phase == IDisputeGame.Phase.CommitScalar && lie.scalarStep == type(uint256).max && g.flatIndex < VEC;
            if (stuck) return;
            _solverMove(current, true);
        }
        _check();
        _honestRespond();
    }

    function _adversary() internal view returns (IDisputeGame.Party) {
        return honestSolver ? IDisputeGame.Party.Challenger : IDisputeGame.Party.Solver;
    }

    /// @dev Garbage from the adversary: a reveal of wrong leaves or a choice out of range. Must revert.
    function garbage(uint256 seed) external {
        ++calls;
        if (!_inProgress()) return;
        IDisputeGame.Game memory g = dg.getGame(current);
        address who = honestSolver ? challenger : alice;
        bool ok;
        if (g.phase == IDisputeGame.Phase.Reveal) {
            uint256 n = dg.pendingPositions(current).length;
            bytes32[] memory leaves = new bytes32[](n);
            bytes32[][] memory proofs = new bytes32[][](n);
            for (uint256 i; i < n; ++i) {
                leaves[i] = keccak256(abi.encode(seed, i));
                proofs[i] = new bytes32[](seed % 4);
            }
            vm.prank(who);
            (ok,) = address(dg).call(abi.encodeCall(dg.reveal, (current, leaves, proofs)));
        } else {
            vm.prank(who);
            (ok,) = address(dg).call(abi.encodeCall(dg.choose, (current, 1000 + seed % 1000)));
        }
        if (ok) ++garbageAccepted;
    }

    function stall(uint256 secs) external {
        ++calls;
        if (!_inProgress() || _party(current) != _adversary()) return;
        vm.warp(block.timestamp + bound(secs, 0, uint256(CLOCK) + 1));
    }

    function timeout() external {
        ++calls;
        if (current == 0) return;
        (bool ok,) = address(dg).call(abi.encodeCall(dg.claimTimeout, (current)));
        if (ok) _check();
    }

    function settle() external {
        ++calls;
        if (current == 0) return;
        (bool ok,) = address(dg).call(abi.encodeCall(dg.resolve, (current)));
        if (ok) ++settled;
        address[3] memory who = [alice, challenger, bob];
        for (uint256 i; i < 3; ++i) {
            if (dg.creditOf(who[i]) > 0) {
                vm.prank(who[i]);
                dg.withdraw();
            }
        }
    }

    /// @dev Any move on a settled current must revert.
    function lateMove(uint256 seed) external {
        ++calls;
        if (current == 0 || _inProgress()) return;
        vm.prank(seed % 2 == 0 ? alice : challenger);
        (bool ok,) = address(dg).call(abi.encodeCall(dg.choose, (current, 0)));
        if (ok) ++lateMovesAccepted;
        (ok,) = address(dg).call(abi.encodeCall(dg.claimTimeout, (current)));
        if (ok) ++lateMovesAccepted;
    }

    // ─────────────────────────────────────────────── views for the invariants

    function gameSolvent() external view returns (bool) {
        (uint256 bonds, uint256 credits) = dg.totals();
        return address(dg).balance == bonds + credits;
    }
}

/// @notice The honest side never loses and the current's ETH is always accounted for.
contract DisputeInvariantTest is InvariantBase {
    DisputeHandler internal handler;

    function setUp() public {
        handler = new DisputeHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = DisputeHandler.start.selector;
        selectors[1] = DisputeHandler.adversary.selector;
        selectors[2] = DisputeHandler.garbage.selector;
        selectors[3] = DisputeHandler.stall.selector;
        selectors[4] = DisputeHandler.timeout.selector;
        selectors[5] = DisputeHandler.settle.selector;
        selectors[6] = DisputeHandler.lateMove.selector;
        targetSelector(address(handler), selectors);
    }

    /// forge-config: default.invariant.runs = 128
    /// forge-config: default.invariant.depth = 250
    function invariant_honestSideNeverLosesAndEthAccounted() public view {
        assertEq(handler.honestLosses(), 0, "honest side lost");
        assertTrue(handler.gameSolvent(), "game solvency");
        assertEq(handler.lateMovesAccepted(), 0, "late move accepted");
        assertEq(handler.garbageAccepted(), 0, "garbage accepted");
    }

    /// @dev A full-depth run plays games to their settlement (about one per 40 calls); shorter
    ///      sequences (a replayed or shrunk failure) need not.
    function afterInvariant() public view {
        if (handler.calls() >= 200) vm.assertGt(handler.settled(), 0, "no game settled in this run");
    }
}
