// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {InvariantBase, VmEnv} from "../utils/InvariantBase.sol";
import {IAvailabilityChallenge} from "../../src/interfaces/IAvailabilityChallenge.sol";
import {AvailabilityHandler} from "./AvailabilityHandler.sol";

/// @notice Over random sequences of demands, answers (garbage and honest), claims, finalizations,
///         withdrawals and time: no bond is ever stuck or lost, every forbidden outcome counts zero,
///         and the market's view of each task agrees with the demands on it.
contract AvailabilityInvariantTest is InvariantBase {
    /// @dev Must equal the runs configured below.
    uint256 internal constant RUNS = 48;
    string internal constant RUN_VAR = "AVAILABILITY_INVARIANT_RUN";
    string internal constant ANSWERED_VAR = "AVAILABILITY_INVARIANT_ANSWERED";
    string internal constant UNANSWERED_VAR = "AVAILABILITY_INVARIANT_UNANSWERED";

    AvailabilityHandler internal handler;

    function setUp() public {
        handler = new AvailabilityHandler();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](7);
        s[0] = AvailabilityHandler.deliver.selector;
        s[1] = AvailabilityHandler.demand.selector;
        s[2] = AvailabilityHandler.answer.selector;
        s[3] = AvailabilityHandler.claim.selector;
        s[4] = AvailabilityHandler.finalize.selector;
        s[5] = AvailabilityHandler.withdraw.selector;
        s[6] = AvailabilityHandler.warp.selector;
        targetSelector(address(handler), s);
    }

    /// forge-config: default.invariant.runs = 48
    /// forge-config: default.invariant.depth = 50
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_bondsAccountedAndRulesHold() public view {
        (uint256 bonds, uint256 credits) = handler.owed();
        address ac = address(handler.ac());
        assertEq(handler.ac().totalBonds(), bonds, "open bonds");
        assertEq(handler.ac().totalCredits(), credits, "credits");
        assertEq(ac.balance, bonds + credits, "balance != bonds + credits");
        assertEq(handler.ghostIn(), handler.ghostOut() + ac.balance, "a wei entered and neither left nor is owed");
        assertEq(handler.garbageAccepted(), 0, "garbage answer accepted");
        assertEq(handler.honestRefused(), 0, "honest answer in time refused");
        assertEq(handler.earlyClaims(), 0, "claim before the deadline accepted");
        assertEq(handler.lateAnswers(), 0, "answer after the deadline accepted");
        assertTrue(handler.tasksConsistent(), "market and demands disagree");
        (uint256 escrow, uint256 bidBonds, uint256 payable_) = handler.market().totals();
        assertEq(address(handler.market()).balance, escrow + bidBonds + payable_, "market solvency");
    }

    /// @dev Across the runs, demands were both answered and left unanswered (the campaign reached
    ///      both endings, not just one).
    function afterInvariant() public {
        VmEnv env = VmEnv(address(vm));
        uint256 run = env.envOr(RUN_VAR, 0) + 1;
        (uint256 demands, uint256 answered, uint256 unanswered) = handler.counts();
        uint256 totalAnswered = env.envOr(ANSWERED_VAR, 0);
        uint256 totalUnanswered = env.envOr(UNANSWERED_VAR, 0);
        if (run <= RUNS) {
            totalAnswered += answered;
            totalUnanswered += unanswered;
            env.setEnv(RUN_VAR, vm.toString(run));
            env.setEnv(ANSWERED_VAR, vm.toString(totalAnswered));
            env.setEnv(UNANSWERED_VAR, vm.toString(totalUnanswered));
        }
        assertEq(answered + unanswered + _open(demands), demands, "demands counted");
        if (run == RUNS) {
            vm.assertGt(totalAnswered, 0, "no demand answered in any run");
            vm.assertGt(totalUnanswered, 0, "no demand left unanswered in any run");
        }
    }

    function _open(uint256 demands) internal view returns (uint256 n) {
        for (uint256 k; k < demands; ++k) {
            if (handler.ac().getChallenge(handler.challenges(k)).status == IAvailabilityChallenge.Status.Open) ++n;
        }
    }
}
