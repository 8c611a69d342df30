// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../../utils/TestBase.sol";
import {StakeManager} from "../../../src/StakeManager.sol";
import {TaskMarket} from "../../../src/TaskMarket.sol";
import {IStakeManager} from "../../../src/interfaces/IStakeManager.sol";
import {IDisputeHook} from "../../../src/interfaces/IDisputeHook.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// @notice The invariant handler can reach every stage (so the invariant runs are not vacuous).
contract HandlerSmokeTest is TestBase {
    StakeManager internal sm;
    TaskMarket internal market;
    MarketHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        sm = new StakeManager(address(this), 6 hours, address(0x51), 5_000);
        market = new TaskMarket(address(this), IStakeManager(address(sm)), 500, 2_000, 1 ether, 2 days);
        sm.setMarket(address(market));
        handler = new MarketHandler(sm, market);
        market.setDisputeContract(address(handler), true);
    }

    function _status(uint256 id) internal view returns (uint256) {
        return uint256(market.getTask(id).status);
    }

    /// @dev Task 1 is won by solver 1 and completed, task 2 by the lazy solver 3 and failed by timeout,
    ///      task 3 by solver 2 and failed by a lost dispute (challenger: solver 0).
    function test_handler_reachesEveryOutcome_succeeds() public {
        handler.postTask(1, 10 ether, 0.1 ether, 2 ether);
        handler.postTask(2, 10 ether, 0.1 ether, 2 ether);
        handler.postTask(3, 10 ether, 0.1 ether, 2 ether);
        handler.commitBid(0, 1, 3 ether);
        handler.commitBid(1, 3, 5 ether);
        handler.commitBid(2, 2, 4 ether);
        handler.warp(2 hours);
        handler.revealBid(0, 1);
        handler.revealBid(1, 3);
        handler.revealBid(2, 2);
        handler.warp(2 hours);
        handler.closeAuction(0);
        handler.closeAuction(1);
        handler.closeAuction(2);
        assertEq(market.getTask(1).solver, handler.solvers(1));
        assertEq(market.getTask(2).solver, handler.solvers(3));
        assertEq(market.getTask(3).solver, handler.solvers(2));

        handler.commitProgress(0, 3);
        handler.submitResult(0);
        handler.submitResult(1); // the lazy solver does nothing
        handler.submitResult(2);
        handler.openDispute(2, 0);
        handler.resolveDispute(0, true);
        assertEq(_status(3), uint256(IDisputeHook.TaskStatus.Failed));

        handler.warp(2 hours);
        handler.warp(2 hours);
        handler.finalize(0);
        assertEq(_status(1), uint256(IDisputeHook.TaskStatus.Completed));
        handler.warp(2 hours);
        handler.failUndelivered(1);
        assertEq(_status(2), uint256(IDisputeHook.TaskStatus.Failed));
        for (uint256 id = 1; id <= 3; ++id) {
            assertEq(handler.releaseCount(id), 1);
            assertEq(handler.released(id), 2 ether);
        }

        handler.withdrawPayments(4); // the submitter of task 2: its refund
        handler.claimProceeds(0); // the challenger's share of the slash
        handler.flushSink();
        assertEq(address(market).balance, handler.ghostMarketIn() - handler.ghostMarketOut());
        assertEq(address(sm).balance, handler.ghostStakeIn() - handler.ghostStakeOut());
    }
}
