// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {InvariantBase} from "../../utils/InvariantBase.sol";
import {StakeManager} from "../../../src/StakeManager.sol";
import {TaskMarket} from "../../../src/TaskMarket.sol";
import {IStakeManager} from "../../../src/interfaces/IStakeManager.sol";
import {ITaskMarket} from "../../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../../src/interfaces/IDisputeHook.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// @notice Solvency of both contracts and single release of every lock, over random action sequences.
/// forge-config: default.invariant.runs = 16
/// forge-config: default.invariant.depth = 300
contract MarketInvariantTest is InvariantBase {
    StakeManager internal sm;
    TaskMarket internal market;
    MarketHandler internal handler;
    address internal sink = address(0x51);

    function setUp() public {
        vm.warp(1_700_000_000);
        sm = new StakeManager(address(this), 4 hours, sink, 5_000);
        market = new TaskMarket(address(this), IStakeManager(address(sm)), 500, 2_000, 1 ether, 8 hours);
        sm.setMarket(address(market));
        handler = new MarketHandler(sm, market);
        market.setDisputeContract(address(handler), true);

        bytes4[] memory s = new bytes4[](23);
        s[0] = MarketHandler.deposit.selector;
        s[1] = MarketHandler.requestWithdrawal.selector;
        s[2] = MarketHandler.cancelWithdrawal.selector;
        s[3] = MarketHandler.withdraw.selector;
        s[4] = MarketHandler.claimProceeds.selector;
        s[5] = MarketHandler.flushSink.selector;
        s[6] = MarketHandler.postTask.selector;
        s[7] = MarketHandler.commitBid.selector;
        s[8] = MarketHandler.revealBid.selector;
        s[9] = MarketHandler.closeAuction.selector;
        s[10] = MarketHandler.commitProgress.selector;
        s[11] = MarketHandler.submitResult.selector;
        s[12] = MarketHandler.finalize.selector;
        s[13] = MarketHandler.failUndelivered.selector;
        s[14] = MarketHandler.withdrawPayments.selector;
        s[15] = MarketHandler.openDispute.selector;
        s[16] = MarketHandler.resolveDispute.selector;
        s[17] = MarketHandler.expireDispute.selector;
        s[18] = MarketHandler.warp.selector;
        s[19] = MarketHandler.warp.selector; // time twice as likely: every stage waits for a deadline
        s[20] = MarketHandler.advance.selector; // the natural next step, three times as likely
        s[21] = MarketHandler.advance.selector;
        s[22] = MarketHandler.advance.selector;
        targetContract(address(handler));
        targetSelector(address(handler), s);
    }

    /// @notice The market holds exactly the ETH it accounts for, and the ghost flows agree.
    function invariant_marketSolvent() public view {
        (uint256 escrow, uint256 bonds, uint256 payable_) = market.totals();
        assertEq(address(market).balance, escrow + bonds + payable_, "market balance == accounted");
        assertEq(address(market).balance, handler.ghostMarketIn() - handler.ghostMarketOut(), "ghost flows");
    }

    /// @notice The stake manager holds exactly the ETH it accounts for, and the ghost flows agree.
    function invariant_stakeManagerSolvent() public view {
        (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sinkBal) = sm.totals();
        assertEq(address(sm).balance, free + locked + pending + proceeds + sinkBal, "stake balance == accounted");
        assertEq(address(sm).balance, handler.ghostStakeIn() - handler.ghostStakeOut(), "ghost flows");
    }

    /// @notice Per-account buckets add up to the totals (no bucket is counted twice or lost).
    function invariant_bucketsAddUp() public view {
        address[] memory a = handler.actors();
        uint256 free;
        uint256 locked;
        uint256 pending;
        uint256 proceeds;
        uint256 payments;
        for (uint256 i = 0; i < a.length; ++i) {
            free += sm.freeStakeOf(a[i]);
            locked += sm.lockedStakeOf(a[i]);
            (uint256 p,) = sm.pendingWithdrawalOf(a[i]);
            pending += p;
            proceeds += sm.proceedsOf(a[i]);
            payments += market.paymentsOf(a[i]);
        }
        (uint256 tFree, uint256 tLocked, uint256 tPending, uint256 tProceeds,) = sm.totals();
        assertEq(free, tFree, "free");
        assertEq(locked, tLocked, "locked");
        assertEq(pending, tPending, "pending");
        assertEq(proceeds, tProceeds, "proceeds");
        (,, uint256 payable_) = market.totals();
        assertEq(payments, payable_, "payments");
    }

    /// @notice Escrow and bonds equal the sums over live tasks and live bids; a task's lock is held
    ///         exactly while it runs and released exactly once, in full, when it settles.
    function invariant_tasksAndLocks() public view {
        uint256 escrow;
        uint256 bonds;
        uint256 lockedForTasks;
        uint256 n = market.taskCount();
        for (uint256 id = 1; id <= n; ++id) {
            ITaskMarket.Task memory t = market.getTask(id);
            bool live = t.status == IDisputeHook.TaskStatus.Bidding || t.status == IDisputeHook.TaskStatus.Assigned
                || t.status == IDisputeHook.TaskStatus.ResultSubmitted;
            if (live) escrow += t.payment;
            address[] memory bidders = market.biddersOf(id);
            for (uint256 j = 0; j < bidders.length; ++j) {
                ITaskMarket.Bid memory b = market.getBid(id, bidders[j]);
                if (b.status == ITaskMarket.BidStatus.Committed || b.status == ITaskMarket.BidStatus.Revealed) {
                    bonds += b.bond;
                }
            }
            uint256 lockNow = t.solver == address(0) ? 0 : sm.lockedFor(t.solver, id);
            lockedForTasks += lockNow;
            assertLe(handler.releaseCount(id), 1, "a lock is released at most once");
            if (t.status == IDisputeHook.TaskStatus.Assigned || t.status == IDisputeHook.TaskStatus.ResultSubmitted) {
                assertEq(lockNow, t.requiredStake, "running task holds its lock");
                assertEq(handler.released(id), 0, "nothing released while running");
            } else if (t.status == IDisputeHook.TaskStatus.Completed || t.status == IDisputeHook.TaskStatus.Failed) {
                assertEq(lockNow, 0, "settled task holds no lock");
                assertEq(handler.released(id), t.requiredStake, "released exactly the lock");
                assertEq(handler.releaseCount(id), 1, "released once");
            } else {
                assertEq(lockNow, 0, "no lock before assignment");
            }
        }
        (uint256 tEscrow, uint256 tBonds,) = market.totals();
        assertEq(escrow, tEscrow, "escrow");
        assertEq(bonds, tBonds, "bonds");
        (, uint256 tLocked,,,) = sm.totals();
        assertEq(lockedForTasks, tLocked, "every locked wei belongs to a running task");
    }

    /// @notice Open dispute counters match the disputes recorded as open.
    function invariant_openDisputesCounted() public view {
        uint256 n = market.taskCount();
        uint256[] memory open = new uint256[](n + 1);
        uint256 d = market.disputeCount();
        for (uint256 id = 1; id <= d; ++id) {
            IDisputeHook.Dispute memory x = market.getDispute(id);
            if (x.status == IDisputeHook.DisputeStatus.Open) open[x.taskId] += 1;
        }
        for (uint256 id = 1; id <= n; ++id) {
            assertEq(market.getTask(id).openDisputes, open[id], "open disputes");
        }
    }
}
