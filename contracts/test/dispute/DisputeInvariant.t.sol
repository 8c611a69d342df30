// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {InvariantBase, VmEnv} from "../utils/InvariantBase.sol";
import {DisputeHandler} from "./DisputeHandler.sol";

/// @notice The honest side never loses, and the ETH the game contracts, the market and the stake
///         manager hold always equals what they account for, over at least MIN_GAMES random games.
/// @dev RUNS runs of CALLS handler calls; each call plays a whole batch of games (DisputeHandler),
///      so the invariants are checked after every batch here and after every action inside the
///      handler (its counters of breaks must stay zero). Every handler call must go through: an
///      honest move that reverts fails the run. forge replays the last run once more after the
///      campaign (for its logs), so many short runs cost less than one long one. A failing run is
///      not shrunk: its sequence is replayed as is (each batch is played from its own seed).
contract DisputeInvariantTest is InvariantBase {
    /// @dev Must equal the runs and depth configured below.
    uint256 internal constant RUNS = 10;
    uint256 internal constant CALLS = 380;
    uint256 internal constant MIN_GAMES = 10_000;
    string internal constant RUN_VAR = "DISPUTE_INVARIANT_RUN";
    string internal constant GAMES_VAR = "DISPUTE_INVARIANT_GAMES";

    DisputeHandler internal handler;

    function setUp() public {
        handler = new DisputeHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](1);
        selectors[0] = DisputeHandler.play.selector;
        targetSelector(address(handler), selectors);
    }

    /// forge-config: default.invariant.runs = 10
    /// forge-config: default.invariant.depth = 380
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: default.invariant.shrink-run-limit = 0
    function invariant_honestSideNeverLosesAndEthAccounted() public view {
        assertEq(handler.honestLosses(), 0, "honest side lost");
        assertEq(handler.taskOutcomeBreaks(), 0, "task outcome");
        assertTrue(handler.accountsHold(), "ETH held != ETH accounted for");
        assertEq(handler.accountingBreaks(), 0, "ETH held != ETH accounted for after an action");
        assertEq(handler.lateMovesAccepted(), 0, "late move accepted");
        assertEq(handler.garbageAccepted(), 0, "garbage accepted");
        assertEq(handler.finished(), handler.games(), "game left unsettled");
    }

    /// @dev The run played its share of the games, every one to its settlement, and the adversary
    ///      did everything; after the last run, the runs together played at least MIN_GAMES.
    function afterInvariant() public {
        VmEnv env = VmEnv(address(vm));
        uint256 run = env.envOr(RUN_VAR, 0) + 1;
        uint256 total = env.envOr(GAMES_VAR, 0);
        if (run <= RUNS) {
            total += handler.games();
            env.setEnv(RUN_VAR, vm.toString(run));
            env.setEnv(GAMES_VAR, vm.toString(total));
        }
        // Run RUNS + 1 is forge's replay of the last run (whose games are counted once).
        _log("dispute invariant: run", run);
        _log("dispute invariant: calls in this run", handler.calls());
        _log("dispute invariant: games played in this run", handler.games());
        _log("dispute invariant: games finished in this run", handler.finished());
        _log("dispute invariant: won by an honest solver", handler.honestSolverWins());
        _log("dispute invariant: won by an honest challenger", handler.honestChallengerWins());
        _log("dispute invariant: actions", handler.actions());
        _log("dispute invariant: games played in all runs so far", total);
        assertEq(handler.calls(), CALLS, "calls");
        vm.assertGe(handler.games(), MIN_GAMES / RUNS, "games played in this run");
        assertEq(handler.finished(), handler.games(), "games finished");
        assertEq(handler.honestSolverWins() + handler.honestChallengerWins(), handler.finished(), "honest wins");
        vm.assertGt(handler.honestSolverWins(), 0, "no honest solver");
        vm.assertGt(handler.honestChallengerWins(), 0, "no honest challenger");
        for (uint256 k; k <= uint256(type(DisputeHandler.Cover).max); ++k) {
            uint256 n = handler.covered(DisputeHandler.Cover(k));
            vm.assertGt(n, 0, string.concat("adversary never did kind ", vm.toString(k)));
        }
        if (run == RUNS) vm.assertGe(total, MIN_GAMES, "games played in all runs");
    }

    /// @dev console.log(string, uint256), without a console library.
    function _log(string memory label, uint256 value) internal view {
        address console = 0x000000000000000000636F6e736F6c652e6c6f67;
        (bool ok,) = console.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok; // forge answers the console address; nothing to check
    }
}
