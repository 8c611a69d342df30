// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {RejectingReceiver, ReentrantReceiver} from "./Receivers.sol";

/// @notice Unit and fuzz tests of StakeManager. The test contract itself is the market.
contract StakeManagerTest is TestBase {
    uint64 internal constant DELAY = 7 days;
    uint16 internal constant BPS_BENEFICIARY = 6_000;
    uint256 internal constant TASK = 7;

    StakeManager internal sm;
    address internal owner;
    address internal sink;
    address internal alice;
    address internal bob;
    address internal slasher;

    function setUp() public {
        vm.warp(1_700_000_000);
        owner = makeAddr("owner");
        sink = makeAddr("sink");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        slasher = makeAddr("slasher");
        sm = new StakeManager(owner, DELAY, sink, BPS_BENEFICIARY);
        vm.prank(owner);
        sm.setMarket(address(this));
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
    }

    function _deposit(address who, uint256 amount) internal {
        vm.prank(who);
        sm.deposit{value: amount}();
    }

    function _assertSolvent() internal view {
        (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sinkBal) = sm.totals();
        assertEq(address(sm).balance, free + locked + pending + proceeds + sinkBal, "solvency");
    }

    // ─────────────────────────────────────────────── constructor

    function test_constructor_setsParameters_succeeds() public view {
        assertEq(sm.owner(), owner);
        assertEq(sm.unbondingDelay(), DELAY);
        assertEq(sm.sink(), sink);
        assertEq(sm.beneficiaryBps(), BPS_BENEFICIARY);
        assertEq(sm.market(), address(this));
    }

    function test_constructor_zeroSink_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ZeroAddress.selector, uint8(1)));
        new StakeManager(owner, DELAY, address(0), BPS_BENEFICIARY);
    }

    function test_constructor_bpsAboveOne_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InvalidBps.selector, uint256(10_001)));
        new StakeManager(owner, DELAY, sink, 10_001);
    }

    function test_constructor_zeroOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new StakeManager(address(0), DELAY, sink, BPS_BENEFICIARY);
    }

    // ─────────────────────────────────────────────── deposit

    function test_deposit_addsFreeStake_succeeds() public {
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeDeposited(alice, 2 ether, 2 ether);
        _deposit(alice, 2 ether);
        _deposit(alice, 1 ether);
        assertEq(sm.freeStakeOf(alice), 3 ether);
        _assertSolvent();
    }

    function test_deposit_zero_reverts() public {
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        _deposit(alice, 0);
    }

    // ─────────────────────────────────────────────── requestWithdrawal

    function test_requestWithdrawal_movesToPending_succeeds() public {
        _deposit(alice, 5 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.WithdrawalRequested(alice, 2 ether, 2 ether, block.timestamp + DELAY);
        vm.prank(alice);
        sm.requestWithdrawal(2 ether);
        (uint256 amount, uint256 readyAt) = sm.pendingWithdrawalOf(alice);
        assertEq(amount, 2 ether);
        assertEq(readyAt, block.timestamp + DELAY);
        assertEq(sm.freeStakeOf(alice), 3 ether);
        _assertSolvent();
    }

    function test_requestWithdrawal_secondRequestRestartsDelay_succeeds() public {
        _deposit(alice, 5 ether);
        vm.prank(alice);
        sm.requestWithdrawal(1 ether);
        vm.warp(block.timestamp + 1 days);
        vm.prank(alice);
        sm.requestWithdrawal(1 ether);
        (uint256 amount, uint256 readyAt) = sm.pendingWithdrawalOf(alice);
        assertEq(amount, 2 ether);
        assertEq(readyAt, block.timestamp + DELAY);
    }

    function test_requestWithdrawal_zero_reverts() public {
        _deposit(alice, 1 ether);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        vm.prank(alice);
        sm.requestWithdrawal(0);
    }

    function test_requestWithdrawal_moreThanFree_reverts() public {
        _deposit(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, alice, 2 ether, 1 ether));
        vm.prank(alice);
        sm.requestWithdrawal(2 ether);
    }

    // ─────────────────────────────────────────────── cancelWithdrawal

    function test_cancelWithdrawal_returnsToFree_succeeds() public {
        _deposit(alice, 5 ether);
        vm.startPrank(alice);
        sm.requestWithdrawal(2 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.WithdrawalCancelled(alice, 2 ether);
        sm.cancelWithdrawal();
        vm.stopPrank();
        (uint256 amount,) = sm.pendingWithdrawalOf(alice);
        assertEq(amount, 0);
        assertEq(sm.freeStakeOf(alice), 5 ether);
        _assertSolvent();
    }

    function test_cancelWithdrawal_nothingPending_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NoPendingWithdrawal.selector, alice));
        vm.prank(alice);
        sm.cancelWithdrawal();
    }

    // ─────────────────────────────────────────────── withdraw

    function test_withdraw_afterDelay_succeeds() public {
        _deposit(alice, 5 ether);
        vm.prank(alice);
        sm.requestWithdrawal(2 ether);
        vm.warp(block.timestamp + DELAY);
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeWithdrawn(alice, 2 ether);
        vm.prank(alice);
        sm.withdraw();
        assertEq(alice.balance, 97 ether);
        (uint256 amount,) = sm.pendingWithdrawalOf(alice);
        assertEq(amount, 0);
        _assertSolvent();
    }

    function test_withdraw_beforeDelay_reverts() public {
        _deposit(alice, 5 ether);
        vm.prank(alice);
        sm.requestWithdrawal(2 ether);
        uint256 readyAt = block.timestamp + DELAY;
        vm.warp(readyAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.WithdrawalNotReady.selector, alice, readyAt, readyAt - 1));
        vm.prank(alice);
        sm.withdraw();
    }

    function test_withdraw_nothingPending_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NoPendingWithdrawal.selector, alice));
        vm.prank(alice);
        sm.withdraw();
    }

    function test_withdraw_rejectingReceiver_reverts() public {
        RejectingReceiver r = new RejectingReceiver();
        vm.deal(address(r), 1 ether);
        r.call(address(sm), 1 ether, abi.encodeCall(IStakeManager.deposit, ()));
        r.call(address(sm), 0, abi.encodeCall(IStakeManager.requestWithdrawal, (1 ether)));
        vm.warp(block.timestamp + DELAY);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.TransferFailed.selector, address(r), 1 ether));
        r.call(address(sm), 0, abi.encodeCall(IStakeManager.withdraw, ()));
        (uint256 amount,) = sm.pendingWithdrawalOf(address(r));
        assertEq(amount, 1 ether, "pending kept after a failed transfer");
    }

    function test_withdraw_reentry_reverts() public {
        ReentrantReceiver r = new ReentrantReceiver();
        vm.deal(address(r), 2 ether);
        r.call(address(sm), 2 ether, abi.encodeCall(IStakeManager.deposit, ()));
        r.call(address(sm), 0, abi.encodeCall(IStakeManager.requestWithdrawal, (1 ether)));
        vm.warp(block.timestamp + DELAY);
        r.arm(address(sm), abi.encodeCall(IStakeManager.withdraw, ()));
        r.call(address(sm), 0, abi.encodeCall(IStakeManager.withdraw, ()));
        assertTrue(r.reentered());
        assertFalse(r.reentrySucceeded(), "a re-entered withdraw pays nothing twice");
        assertEq(address(r).balance, 1 ether);
        _assertSolvent();
    }

    // ─────────────────────────────────────────────── lock / unlock

    function test_lock_movesFreeToLocked_succeeds() public {
        _deposit(alice, 5 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeLocked(alice, TASK, 3 ether);
        sm.lock(alice, TASK, 3 ether);
        assertEq(sm.freeStakeOf(alice), 2 ether);
        assertEq(sm.lockedFor(alice, TASK), 3 ether);
        assertEq(sm.lockedStakeOf(alice), 3 ether);
        _assertSolvent();
    }

    function test_lock_notMarket_reverts() public {
        _deposit(alice, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotMarket.selector, bob));
        vm.prank(bob);
        sm.lock(alice, TASK, 1 ether);
    }

    function test_lock_zero_reverts() public {
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        sm.lock(alice, TASK, 0);
    }

    function test_lock_twiceForOneTask_reverts() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.AlreadyLocked.selector, alice, TASK, 1 ether));
        sm.lock(alice, TASK, 1 ether);
    }

    function test_lock_moreThanFree_reverts() public {
        _deposit(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, alice, 2 ether, 1 ether));
        sm.lock(alice, TASK, 2 ether);
    }

    function test_unlock_releasesWholeLock_succeeds() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 3 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeUnlocked(alice, TASK, 3 ether);
        assertEq(sm.unlock(alice, TASK), 3 ether);
        assertEq(sm.freeStakeOf(alice), 5 ether);
        assertEq(sm.lockedStakeOf(alice), 0);
        _assertSolvent();
    }

    function test_unlock_twice_reverts() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 3 ether);
        sm.unlock(alice, TASK);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingLocked.selector, alice, TASK));
        sm.unlock(alice, TASK);
    }

    function test_unlock_notMarket_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotMarket.selector, bob));
        vm.prank(bob);
        sm.unlock(alice, TASK);
    }

    // ─────────────────────────────────────────────── slash

    function test_slash_byMarketSplitsProceeds_succeeds() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 4 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeSlashed(alice, TASK, address(this), 4 ether, bob, 2.4 ether, 1.6 ether);
        (uint256 toBeneficiary, uint256 toSink) = sm.slash(alice, TASK, 4 ether, bob);
        assertEq(toBeneficiary, 2.4 ether);
        assertEq(toSink, 1.6 ether);
        assertEq(sm.proceedsOf(bob), 2.4 ether);
        assertEq(sm.sinkBalance(), 1.6 ether);
        assertEq(sm.lockedFor(alice, TASK), 0);
        assertEq(sm.freeStakeOf(alice), 1 ether);
        _assertSolvent();
    }

    function test_slash_partialKeepsRestLocked_succeeds() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 4 ether);
        sm.slash(alice, TASK, 1 ether, bob);
        assertEq(sm.lockedFor(alice, TASK), 3 ether);
        assertEq(sm.unlock(alice, TASK), 3 ether);
        _assertSolvent();
    }

    function test_slash_byAuthorisedSlasher_succeeds() public {
        vm.prank(owner);
        sm.setSlasher(slasher, true);
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 4 ether);
        vm.prank(slasher);
        sm.slash(alice, TASK, 4 ether, bob);
        assertEq(sm.proceedsOf(bob), 2.4 ether);
    }

    function test_slash_unauthorised_reverts() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 4 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotSlasher.selector, slasher));
        vm.prank(slasher);
        sm.slash(alice, TASK, 1 ether, bob);
    }

    function test_slash_revokedSlasher_reverts() public {
        vm.startPrank(owner);
        sm.setSlasher(slasher, true);
        sm.setSlasher(slasher, false);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotSlasher.selector, slasher));
        vm.prank(slasher);
        sm.slash(alice, TASK, 1 ether, bob);
    }

    function test_slash_zero_reverts() public {
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        sm.slash(alice, TASK, 0, bob);
    }

    function test_slash_zeroBeneficiary_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ZeroAddress.selector, uint8(4)));
        sm.slash(alice, TASK, 1, address(0));
    }

    function test_slash_moreThanLocked_reverts() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientLockedStake.selector, alice, TASK, 2 ether, 1 ether)
        );
        sm.slash(alice, TASK, 2 ether, bob);
    }

    function test_slash_freeStakeIsNotSlashable_reverts() public {
        _deposit(alice, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientLockedStake.selector, alice, TASK, 1 ether, 0));
        sm.slash(alice, TASK, 1 ether, bob);
    }

    // ─────────────────────────────────────────────── claimProceeds / flushSink

    function test_claimProceeds_paysBeneficiary_succeeds() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 5 ether);
        sm.slash(alice, TASK, 5 ether, bob);
        vm.expectEmit(address(sm));
        emit IStakeManager.ProceedsClaimed(bob, 3 ether);
        vm.prank(bob);
        sm.claimProceeds();
        assertEq(bob.balance, 103 ether);
        assertEq(sm.proceedsOf(bob), 0);
        _assertSolvent();
    }

    function test_claimProceeds_nothing_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToClaim.selector, bob));
        vm.prank(bob);
        sm.claimProceeds();
    }

    function test_claimProceeds_rejectingReceiver_reverts() public {
        RejectingReceiver r = new RejectingReceiver();
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 5 ether);
        sm.slash(alice, TASK, 5 ether, address(r));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.TransferFailed.selector, address(r), 3 ether));
        r.call(address(sm), 0, abi.encodeCall(IStakeManager.claimProceeds, ()));
        assertEq(sm.proceedsOf(address(r)), 3 ether);
    }

    function test_flushSink_paysSink_succeeds() public {
        _deposit(alice, 5 ether);
        sm.lock(alice, TASK, 5 ether);
        sm.slash(alice, TASK, 5 ether, bob);
        vm.expectEmit(address(sm));
        emit IStakeManager.SinkFlushed(sink, 2 ether);
        vm.prank(bob);
        sm.flushSink();
        assertEq(sink.balance, 2 ether);
        assertEq(sm.sinkBalance(), 0);
        _assertSolvent();
    }

    function test_flushSink_empty_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToClaim.selector, sink));
        sm.flushSink();
    }

    function test_flushSink_rejectingSink_reverts() public {
        RejectingReceiver r = new RejectingReceiver();
        StakeManager sm2 = new StakeManager(owner, DELAY, address(r), BPS_BENEFICIARY);
        vm.prank(owner);
        sm2.setMarket(address(this));
        vm.prank(alice);
        sm2.deposit{value: 1 ether}();
        sm2.lock(alice, TASK, 1 ether);
        sm2.slash(alice, TASK, 1 ether, bob);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.TransferFailed.selector, address(r), 0.4 ether));
        sm2.flushSink();
        assertEq(sm2.sinkBalance(), 0.4 ether, "stays accounted");
    }

    // ─────────────────────────────────────────────── owner

    function test_setMarket_once_succeeds() public {
        StakeManager sm2 = new StakeManager(owner, DELAY, sink, BPS_BENEFICIARY);
        vm.expectEmit(address(sm2));
        emit IStakeManager.MarketSet(alice);
        vm.prank(owner);
        sm2.setMarket(alice);
        assertEq(sm2.market(), alice);
        assertTrue(sm2.isSlasher(alice), "the market may slash");
    }

    function test_setMarket_second_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.MarketAlreadySet.selector, address(this)));
        vm.prank(owner);
        sm.setMarket(alice);
    }

    function test_setMarket_zero_reverts() public {
        StakeManager sm2 = new StakeManager(owner, DELAY, sink, BPS_BENEFICIARY);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ZeroAddress.selector, uint8(2)));
        vm.prank(owner);
        sm2.setMarket(address(0));
    }

    function test_setMarket_notOwner_reverts() public {
        StakeManager sm2 = new StakeManager(owner, DELAY, sink, BPS_BENEFICIARY);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        sm2.setMarket(alice);
    }

    function test_setSlasher_authorises_succeeds() public {
        vm.expectEmit(address(sm));
        emit IStakeManager.SlasherSet(slasher, true);
        vm.prank(owner);
        sm.setSlasher(slasher, true);
        assertTrue(sm.isSlasher(slasher));
        assertFalse(sm.isSlasher(bob));
    }

    function test_setSlasher_zero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ZeroAddress.selector, uint8(3)));
        vm.prank(owner);
        sm.setSlasher(address(0), true);
    }

    function test_setSlasher_notOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        sm.setSlasher(slasher, true);
    }

    // ─────────────────────────────────────────────── fuzz

    /// @notice Any sequence deposit → withdrawal request → lock → slash keeps every wei accounted for
    ///         and splits each slash exactly.
    function testFuzz_slash_splitIsExactAndSolvent_succeeds(uint256 deposit, uint256 lockAmt, uint256 slashAmt) public {
        deposit = bound(deposit, 1, 100 ether);
        lockAmt = bound(lockAmt, 1, deposit);
        slashAmt = bound(slashAmt, 1, lockAmt);
        _deposit(alice, deposit);
        sm.lock(alice, TASK, lockAmt);
        (uint256 toBeneficiary, uint256 toSink) = sm.slash(alice, TASK, slashAmt, bob);
        assertEq(toBeneficiary + toSink, slashAmt);
        assertEq(toBeneficiary, slashAmt * BPS_BENEFICIARY / 10_000);
        assertEq(sm.lockedFor(alice, TASK), lockAmt - slashAmt);
        _assertSolvent();
    }

    function testFuzz_withdraw_roundTrip_succeeds(uint256 deposit, uint256 request, uint256 wait) public {
        deposit = bound(deposit, 1, 100 ether);
        request = bound(request, 1, deposit);
        wait = bound(wait, 0, 2 * DELAY);
        _deposit(alice, deposit);
        vm.prank(alice);
        sm.requestWithdrawal(request);
        vm.warp(block.timestamp + wait);
        if (wait < DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IStakeManager.WithdrawalNotReady.selector, alice, block.timestamp - wait + DELAY, block.timestamp
                )
            );
        }
        vm.prank(alice);
        sm.withdraw();
        uint256 expected = wait < DELAY ? 100 ether - deposit : 100 ether - deposit + request;
        assertEq(alice.balance, expected);
        _assertSolvent();
    }
}
