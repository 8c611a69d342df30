// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "./MarketFixture.sol";
import {TaskMarket} from "../../src/TaskMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {RejectingReceiver, ReentrantReceiver} from "./Receivers.sol";

/// @notice Unit tests of TaskMarket: every external function, its success and each revert.
contract TaskMarketTest is MarketFixture {
    // ─────────────────────────────────────────────── constructor

    function test_constructor_setsParameters_succeeds() public view {
        assertEq(market.owner(), owner);
        assertEq(address(market.stakeManager()), address(sm));
        assertEq(market.creditBonusBps(), CREDIT_BONUS_BPS);
        assertEq(market.maxBonusBps(), MAX_BONUS_BPS);
        assertEq(market.creditMinStake(), CREDIT_MIN_STAKE);
        assertEq(market.disputeTimeout(), DISPUTE_TIMEOUT);
    }

    function test_constructor_zeroStakeManager_reverts() public {
        vm.expectRevert(ITaskMarket.ZeroAddress.selector);
        new TaskMarket(owner, IStakeManager(address(0)), 1, 1, 0, 1);
    }

    function test_constructor_bonusAboveOne_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidBonusParams.selector, 1, 10_001));
        new TaskMarket(owner, IStakeManager(address(sm)), 1, 10_001, 0, 1);
    }

    function test_constructor_zeroDisputeTimeout_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidWindow.selector, 4, 0, 1, 365 days));
        new TaskMarket(owner, IStakeManager(address(sm)), 1, 1, 0, 0);
    }

    // ─────────────────────────────────────────────── postTask

    function test_postTask_escrowsPayment_succeeds() public {
        uint64 c = uint64(block.timestamp) + BID_WINDOW;
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskPosted(1, submitter, PAYMENT, STAKE, SPEC, c, c + REVEAL_WINDOW);
        uint256 taskId = _post();
        assertEq(taskId, 1);
        assertEq(market.taskCount(), 1);
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.Bidding));
        assertEq(t.submitter, submitter);
        assertEq(t.payment, PAYMENT);
        assertEq(t.requiredStake, STAKE);
        assertEq(t.bidBond, BOND);
        assertEq(t.specHash, SPEC);
        assertEq(t.specURI, "ipfs://spec");
        assertEq(t.initialStateRoot, keccak256("S_0"));
        assertEq(t.opGraphRoot, keccak256("ops"));
        assertEq(t.commitDeadline, c);
        assertEq(t.revealDeadline, c + REVEAL_WINDOW);
        assertEq(t.steps, STEPS);
        assertEq(t.checkpointInterval, INTERVAL);
        (uint256 escrow,,) = market.totals();
        assertEq(escrow, PAYMENT);
        _assertMarketSolvent();
    }

    function test_postTask_zeroPayment_reverts() public {
        vm.expectRevert(ITaskMarket.ZeroPayment.selector);
        vm.prank(submitter);
        market.postTask(_params());
    }

    function test_postTask_zeroInitialStateRoot_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.initialStateRoot = bytes32(0);
        vm.expectRevert(ITaskMarket.ZeroRoot.selector);
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    function test_postTask_zeroStake_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.requiredStake = 0;
        vm.expectRevert(ITaskMarket.ZeroStake.selector);
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    function _postExpectingWindowRevert(ITaskMarket.TaskParams memory p, uint8 which, uint256 value) internal {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidWindow.selector, which, value, 1, 365 days));
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    function test_postTask_zeroBidWindow_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.bidWindow = 0;
        _postExpectingWindowRevert(p, 0, 0);
    }

    function test_postTask_longRevealWindow_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.revealWindow = 366 days;
        _postExpectingWindowRevert(p, 1, 366 days);
    }

    function test_postTask_zeroTrainingWindow_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.trainingWindow = 0;
        _postExpectingWindowRevert(p, 2, 0);
    }

    function test_postTask_zeroChallengeWindow_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.challengeWindow = 0;
        _postExpectingWindowRevert(p, 3, 0);
    }

    function test_postTask_stepsNotMultipleOfInterval_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.steps = 1_001;
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidSteps.selector, 1_001, INTERVAL));
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    function test_postTask_zeroInterval_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.checkpointInterval = 0;
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidSteps.selector, STEPS, 0));
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    function test_postTask_zeroSteps_reverts() public {
        ITaskMarket.TaskParams memory p = _params();
        p.steps = 0;
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidSteps.selector, 0, INTERVAL));
        vm.prank(submitter);
        market.postTask{value: PAYMENT}(p);
    }

    // ─────────────────────────────────────────────── commitBid

    function test_commitBid_holdsBond_succeeds() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        bytes32 c = market.bidCommitment(taskId, alice, 3 ether, _salt(alice));
        vm.expectEmit(address(market));
        emit ITaskMarket.BidCommitted(taskId, alice, c, BOND);
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, c);
        ITaskMarket.Bid memory b = market.getBid(taskId, alice);
        assertEq(b.commitment, c);
        assertEq(b.bond, BOND);
        assertEq(b.price, 0);
        assertEq(uint256(b.status), uint256(ITaskMarket.BidStatus.Committed));
        assertEq(market.biddersOf(taskId).length, 1);
        assertEq(market.getTask(taskId).bidCount, 1);
        (, uint256 bonds,) = market.totals();
        assertEq(bonds, BOND);
        _assertMarketSolvent();
    }

    function test_commitBid_unknownTask_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.UnknownTask.selector, 9));
        vm.prank(alice);
        market.commitBid{value: BOND}(9, bytes32(0));
    }

    function test_commitBid_afterCommitWindow_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        uint256 deadline = block.timestamp + BID_WINDOW;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.CommitWindowClosed.selector, taskId, deadline, deadline));
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_afterAuctionClosed_reverts() public {
        uint256 taskId = _post();
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Cancelled,
                IDisputeHook.TaskStatus.Bidding
            )
        );
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_bySubmitter_reverts() public {
        _stake(submitter, STAKE);
        uint256 taskId = _post();
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.SubmitterCannotBid.selector, taskId, submitter));
        vm.prank(submitter);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_wrongBond_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.WrongBidBond.selector, taskId, BOND - 1, BOND));
        vm.prank(alice);
        market.commitBid{value: BOND - 1}(taskId, bytes32(0));
    }

    function test_commitBid_twice_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.BidAlreadyCommitted.selector, taskId, alice));
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_beyondMaxBids_reverts() public {
        uint256 taskId = _post();
        uint256 max = market.MAX_BIDS();
        for (uint256 i = 0; i < max; ++i) {
            address b = address(uint160(0x1000 + i));
            vm.deal(b, STAKE + BOND);
            _stake(b, STAKE);
            vm.prank(b);
            market.commitBid{value: BOND}(taskId, bytes32(i));
        }
        _stake(alice, STAKE);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.TooManyBids.selector, taskId, max));
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_withoutCredit_reverts() public {
        _stake(alice, STAKE);
        ITaskMarket.TaskParams memory p = _params();
        p.minCredit = 1;
        vm.prank(submitter);
        uint256 taskId = market.postTask{value: PAYMENT}(p);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InsufficientCredit.selector, alice, 0, 1));
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    function test_commitBid_withCredit_succeeds() public {
        _completed(alice, 1 ether);
        ITaskMarket.TaskParams memory p = _params();
        p.minCredit = 1;
        vm.prank(submitter);
        uint256 taskId = market.postTask{value: PAYMENT}(p);
        _commit(taskId, alice, 1 ether);
        assertEq(uint256(market.getBid(taskId, alice).status), uint256(ITaskMarket.BidStatus.Committed));
    }

    function test_commitBid_stakeTooLow_reverts() public {
        _stake(alice, STAKE - 1);
        uint256 taskId = _post();
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.StakeTooLow.selector, alice, STAKE, STAKE - 1));
        vm.prank(alice);
        market.commitBid{value: BOND}(taskId, bytes32(0));
    }

    // ─────────────────────────────────────────────── revealBid

    function test_revealBid_recordsPrice_succeeds() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _toReveal(taskId);
        vm.expectEmit(address(market));
        emit ITaskMarket.BidRevealed(taskId, alice, 3 ether);
        _reveal(taskId, alice, 3 ether);
        ITaskMarket.Bid memory b = market.getBid(taskId, alice);
        assertEq(b.price, 3 ether);
        assertEq(uint256(b.status), uint256(ITaskMarket.BidStatus.Revealed));
    }

    function test_revealBid_beforeWindow_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        ITaskMarket.Task memory t = market.getTask(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskMarket.RevealWindowNotOpen.selector, taskId, t.commitDeadline, t.revealDeadline, block.timestamp
            )
        );
        _reveal(taskId, alice, 3 ether);
    }

    function test_revealBid_afterWindow_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        ITaskMarket.Task memory t = market.getTask(taskId);
        vm.warp(t.revealDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskMarket.RevealWindowNotOpen.selector, taskId, t.commitDeadline, t.revealDeadline, t.revealDeadline
            )
        );
        _reveal(taskId, alice, 3 ether);
    }

    function test_revealBid_withoutBid_reverts() public {
        uint256 taskId = _post();
        _toReveal(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.NoSealedBid.selector, taskId, alice));
        _reveal(taskId, alice, 3 ether);
    }

    function test_revealBid_twice_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 3 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.NoSealedBid.selector, taskId, alice));
        _reveal(taskId, alice, 3 ether);
    }

    function test_revealBid_wrongSalt_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _toReveal(taskId);
        bytes32 expected = market.bidCommitment(taskId, alice, 3 ether, _salt(alice));
        bytes32 actual = market.bidCommitment(taskId, alice, 3 ether, bytes32(uint256(1)));
        vm.expectRevert(
            abi.encodeWithSelector(ITaskMarket.CommitmentMismatch.selector, taskId, alice, expected, actual)
        );
        vm.prank(alice);
        market.revealBid(taskId, 3 ether, bytes32(uint256(1)));
    }

    function test_revealBid_otherPrice_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _toReveal(taskId);
        bytes32 expected = market.bidCommitment(taskId, alice, 3 ether, _salt(alice));
        bytes32 actual = market.bidCommitment(taskId, alice, 2 ether, _salt(alice));
        vm.expectRevert(
            abi.encodeWithSelector(ITaskMarket.CommitmentMismatch.selector, taskId, alice, expected, actual)
        );
        _reveal(taskId, alice, 2 ether);
    }

    function test_revealBid_priceAbovePayment_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, PAYMENT + 1);
        _toReveal(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidPrice.selector, taskId, PAYMENT + 1, PAYMENT));
        _reveal(taskId, alice, PAYMENT + 1);
    }

    function test_revealBid_zeroPrice_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 0);
        _toReveal(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidPrice.selector, taskId, 0, PAYMENT));
        _reveal(taskId, alice, 0);
    }

    function test_revealBid_stakeWithdrawnSinceCommit_reverts() public {
        _stake(alice, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        vm.prank(alice);
        sm.requestWithdrawal(1);
        _toReveal(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.StakeTooLow.selector, alice, STAKE, STAKE - 1));
        _reveal(taskId, alice, 3 ether);
    }

    // ─────────────────────────────────────────────── closeAuction

    function test_closeAuction_noBids_cancelsAndRefunds_succeeds() public {
        uint256 taskId = _post();
        _toClose(taskId);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskCancelled(taskId, PAYMENT);
        assertEq(market.closeAuction(taskId), address(0));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Cancelled));
        assertEq(market.paymentsOf(submitter), PAYMENT);
        _assertMarketSolvent();
    }

    function test_closeAuction_noReveal_forfeitsBondsAndRefunds_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _commit(taskId, bob, 4 ether);
        _toClose(taskId);
        vm.expectEmit(address(market));
        emit ITaskMarket.BidBondForfeited(taskId, alice, BOND);
        market.closeAuction(taskId);
        assertEq(market.paymentsOf(submitter), PAYMENT + 2 * BOND);
        assertEq(market.paymentsOf(alice), 0);
        assertEq(uint256(market.getBid(taskId, bob).status), uint256(ITaskMarket.BidStatus.Forfeited));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Cancelled));
        _assertMarketSolvent();
    }

    function test_closeAuction_soleBidderPaidPayment_succeeds() public {
        uint256 taskId = _assigned(alice, 2 ether);
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(t.solver, alice);
        assertEq(t.winningPrice, 2 ether);
        assertEq(t.agreedPrice, PAYMENT, "no runner-up: the payment is the reserve");
        assertEq(t.deliveryDeadline, block.timestamp + TRAINING_WINDOW);
        assertEq(sm.lockedFor(alice, taskId), STAKE);
        assertEq(market.paymentsOf(alice), BOND);
    }

    function test_closeAuction_secondPriceWithUnrevealedBid_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        _stake(carol, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _commit(taskId, bob, 7 ether);
        _commit(taskId, carol, 1 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 3 ether);
        _reveal(taskId, bob, 7 ether);
        _toClose(taskId);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskAssigned(taskId, alice, 3 ether, 7 ether, uint64(block.timestamp + TRAINING_WINDOW));
        assertEq(market.closeAuction(taskId), alice);
        assertEq(market.paymentsOf(submitter), BOND, "carol's bond");
        assertEq(market.paymentsOf(bob), BOND);
        assertEq(uint256(market.getBid(taskId, alice).status), uint256(ITaskMarket.BidStatus.Refunded));
        _assertMarketSolvent();
    }

    function test_closeAuction_stakeGoneAfterReveal_skipsAndForfeits_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _commit(taskId, bob, 7 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 3 ether);
        _reveal(taskId, bob, 7 ether);
        vm.prank(alice);
        sm.requestWithdrawal(STAKE);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), bob);
        assertEq(market.getTask(taskId).agreedPrice, PAYMENT);
        assertEq(uint256(market.getBid(taskId, alice).status), uint256(ITaskMarket.BidStatus.Forfeited));
        assertEq(market.paymentsOf(submitter), BOND);
    }

    function test_closeAuction_recordBeatsLowerPrice_succeeds() public {
        // Alice earns 4 credits (bonus 2,000 bps, the cap): score of 11 ether = 11/1.2 < 9.2.
        for (uint256 i = 0; i < 4; ++i) {
            _completed(alice, 1 ether);
        }
        assertEq(market.recordOf(alice).credit, 4);
        _stake(bob, STAKE);
        vm.prank(submitter);
        ITaskMarket.TaskParams memory p = _params();
        uint256 taskId = market.postTask{value: 20 ether}(p);
        _commit(taskId, alice, 11 ether);
        _commit(taskId, bob, 9.2 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 11 ether);
        _reveal(taskId, bob, 9.2 ether);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), alice);
        // Alice is paid what matches bob's score with her bonus: 9.2 * 1.2 = 11.04 ether.
        assertEq(market.getTask(taskId).agreedPrice, 11.04 ether);
    }

    function test_closeAuction_equalScoreHigherCreditWins_succeeds() public {
        _completed(bob, 1 ether);
        _stake(alice, STAKE);
        uint256 taskId = _post();
        // bob: credit 1, bonus 500 bps; 2.1 ether / 1.05 == 2 ether / 1.00.
        _commit(taskId, alice, 2 ether);
        _commit(taskId, bob, 2.1 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 2 ether);
        _reveal(taskId, bob, 2.1 ether);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), bob);
        assertEq(market.getTask(taskId).agreedPrice, 2.1 ether);
    }

    function test_closeAuction_fullTieEarlierBidWins_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        uint256 taskId = _post();
        _commit(taskId, bob, 2 ether);
        _commit(taskId, alice, 2 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 2 ether);
        _reveal(taskId, bob, 2 ether);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), bob);
        assertEq(market.getTask(taskId).agreedPrice, 2 ether);
    }

    function test_closeAuction_creditWipedBeforeClose_skips_succeeds() public {
        // Alice has credit 1 and bids on a task that needs it; before the close she is slashed elsewhere.
        _completed(alice, 1 ether);
        _stake(alice, STAKE);
        uint256 other = _assigned(alice, 1 ether);
        ITaskMarket.TaskParams memory p = _params();
        p.minCredit = 1;
        p.trainingWindow = 1 hours;
        vm.prank(submitter);
        uint256 taskId = market.postTask{value: PAYMENT}(p);
        _commit(taskId, alice, 1 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 1 ether);
        vm.warp(market.getTask(other).deliveryDeadline);
        market.failUndelivered(other);
        _toClose(taskId);
        assertEq(market.closeAuction(taskId), address(0));
        assertEq(uint256(market.getBid(taskId, alice).status), uint256(ITaskMarket.BidStatus.Forfeited));
    }

    /// @notice The close loop is bounded by MAX_BIDS; with every slot revealed it stays far below a block.
    function test_closeAuction_maxBidsAllRevealed_succeeds() public {
        uint256 taskId = _post();
        uint256 max = market.MAX_BIDS();
        address[] memory who = new address[](max);
        for (uint256 i = 0; i < max; ++i) {
            who[i] = address(uint160(0x1000 + i));
            vm.deal(who[i], STAKE + BOND);
            _stake(who[i], STAKE);
            _commit(taskId, who[i], 1 ether + i);
        }
        _toReveal(taskId);
        for (uint256 i = 0; i < max; ++i) {
            _reveal(taskId, who[i], 1 ether + i);
        }
        _toClose(taskId);
        uint256 gasBefore = gasleft();
        address winner = market.closeAuction(taskId);
        uint256 used = gasBefore - gasleft();
        assertEq(winner, who[0]);
        assertEq(market.getTask(taskId).agreedPrice, 1 ether + 1);
        assertLt(used, 1_500_000);
        _assertMarketSolvent();
    }

    function test_closeAuction_beforeRevealDeadline_reverts() public {
        uint256 taskId = _post();
        uint256 deadline = market.getTask(taskId).revealDeadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.AuctionNotOver.selector, taskId, deadline, deadline - 1));
        market.closeAuction(taskId);
    }

    function test_closeAuction_twice_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Assigned,
                IDisputeHook.TaskStatus.Bidding
            )
        );
        market.closeAuction(taskId);
    }

    function test_closeAuction_unknownTask_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.UnknownTask.selector, 1));
        market.closeAuction(1);
    }

    // ─────────────────────────────────────────────── commitProgress

    function test_commitProgress_monotone_succeeds() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectEmit(address(market));
        emit ITaskMarket.ProgressCommitted(taskId, keccak256("p"), 3);
        vm.startPrank(alice);
        market.commitProgress(taskId, keccak256("p"), 3);
        market.commitProgress(taskId, keccak256("q"), 11);
        vm.stopPrank();
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(t.progressRoot, keccak256("q"));
        assertEq(t.progressCheckpoints, 11);
    }

    function test_commitProgress_notIncreasing_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.startPrank(alice);
        market.commitProgress(taskId, keccak256("p"), 3);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidCheckpointCount.selector, taskId, 3, 3, 11));
        market.commitProgress(taskId, keccak256("q"), 3);
        vm.stopPrank();
    }

    function test_commitProgress_beyondTrace_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.InvalidCheckpointCount.selector, taskId, 12, 0, 11));
        vm.prank(alice);
        market.commitProgress(taskId, keccak256("p"), 12);
    }

    function test_commitProgress_zeroRoot_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(ITaskMarket.ZeroRoot.selector);
        vm.prank(alice);
        market.commitProgress(taskId, bytes32(0), 1);
    }

    function test_commitProgress_notSolver_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.NotSolver.selector, taskId, bob, alice));
        vm.prank(bob);
        market.commitProgress(taskId, keccak256("p"), 1);
    }

    function test_commitProgress_afterDeadline_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        uint256 deadline = market.getTask(taskId).deliveryDeadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.DeliveryDeadlinePassed.selector, taskId, deadline, deadline));
        vm.prank(alice);
        market.commitProgress(taskId, keccak256("p"), 1);
    }

    function test_commitProgress_beforeAssignment_reverts() public {
        uint256 taskId = _post();
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Bidding,
                IDisputeHook.TaskStatus.Assigned
            )
        );
        vm.prank(alice);
        market.commitProgress(taskId, keccak256("p"), 1);
    }

    // ─────────────────────────────────────────────── submitResult

    function test_submitResult_opensChallengeWindow_succeeds() public {
        uint256 taskId = _assigned(alice, 1 ether);
        uint64 deadline = uint64(block.timestamp) + CHALLENGE_WINDOW;
        vm.expectEmit(address(market));
        emit ITaskMarket.ResultSubmitted(taskId, TRACE, STEPS, FINAL, "ipfs://artifact", deadline);
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "ipfs://artifact");
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.ResultSubmitted));
        assertEq(t.traceRoot, TRACE);
        assertEq(t.finalStateRoot, FINAL);
        assertEq(t.numSteps, STEPS);
        assertEq(t.artifactURI, "ipfs://artifact");
        assertEq(t.challengeDeadline, deadline);
    }

    function test_submitResult_wrongSteps_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.StepsMismatch.selector, taskId, STEPS - 1, STEPS));
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS - 1, FINAL, "");
    }

    function test_submitResult_zeroTraceRoot_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(ITaskMarket.ZeroRoot.selector);
        vm.prank(alice);
        market.submitResult(taskId, bytes32(0), STEPS, FINAL, "");
    }

    function test_submitResult_zeroFinalRoot_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(ITaskMarket.ZeroRoot.selector);
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, bytes32(0), "");
    }

    function test_submitResult_notSolver_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.NotSolver.selector, taskId, bob, alice));
        vm.prank(bob);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
    }

    function test_submitResult_afterDeadline_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        uint256 deadline = market.getTask(taskId).deliveryDeadline;
        vm.warp(deadline + 5);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskMarket.DeliveryDeadlinePassed.selector, taskId, deadline, deadline + 5)
        );
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
    }

    function test_submitResult_twice_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.ResultSubmitted,
                IDisputeHook.TaskStatus.Assigned
            )
        );
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
    }

    // ─────────────────────────────────────────────── finalize

    function test_finalize_paysAndUnlocks_succeeds() public {
        _stake(alice, STAKE);
        _stake(bob, STAKE);
        uint256 taskId = _post();
        _commit(taskId, alice, 3 ether);
        _commit(taskId, bob, 4 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 3 ether);
        _reveal(taskId, bob, 4 ether);
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
        vm.warp(market.getTask(taskId).challengeDeadline);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskCompleted(taskId, alice, 4 ether, 6 ether);
        vm.expectEmit(address(market));
        emit ITaskMarket.SolverRecordUpdated(alice, 1, 0, 1);
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
        assertEq(market.paymentsOf(alice), 4 ether + BOND);
        assertEq(market.paymentsOf(submitter), 6 ether);
        assertEq(sm.lockedFor(alice, taskId), 0);
        assertEq(sm.freeStakeOf(alice), STAKE);
        ITaskMarket.SolverRecord memory r = market.recordOf(alice);
        assertEq(r.completed, 1);
        assertEq(r.credit, 1);
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    function test_finalize_smallStakeEarnsNoCredit_succeeds() public {
        ITaskMarket.TaskParams memory p = _params();
        p.requiredStake = CREDIT_MIN_STAKE - 1;
        _stake(alice, STAKE);
        vm.prank(submitter);
        uint256 taskId = market.postTask{value: PAYMENT}(p);
        _commit(taskId, alice, 1 ether);
        _toReveal(taskId);
        _reveal(taskId, alice, 1 ether);
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.prank(alice);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "");
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(market.recordOf(alice).completed, 1);
        assertEq(market.recordOf(alice).credit, 0);
    }

    function test_finalize_duringChallengeWindow_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        uint256 deadline = market.getTask(taskId).challengeDeadline;
        vm.warp(deadline - 1);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskMarket.ChallengeWindowOpen.selector, taskId, deadline, deadline - 1)
        );
        market.finalize(taskId);
    }

    function test_finalize_withOpenDispute_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.prank(game);
        market.openDispute(taskId, challenger);
        vm.warp(market.getTask(taskId).challengeDeadline);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.DisputesOpen.selector, taskId, 1));
        market.finalize(taskId);
    }

    function test_finalize_beforeResult_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Assigned,
                IDisputeHook.TaskStatus.ResultSubmitted
            )
        );
        market.finalize(taskId);
    }

    function test_finalize_twice_reverts() public {
        uint256 taskId = _completed(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.Completed,
                IDisputeHook.TaskStatus.ResultSubmitted
            )
        );
        market.finalize(taskId);
    }

    // ─────────────────────────────────────────────── failUndelivered

    function test_failUndelivered_slashesAndRefunds_succeeds() public {
        _completed(alice, 1 ether);
        uint256 taskId = _assigned(alice, 1 ether);
        vm.warp(market.getTask(taskId).deliveryDeadline);
        uint256 before = market.paymentsOf(submitter);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskFailed(taskId, ITaskMarket.FailureReason.Undelivered, PAYMENT, STAKE);
        vm.expectEmit(address(market));
        emit ITaskMarket.SolverRecordUpdated(alice, 1, 1, 0);
        market.failUndelivered(taskId);
        ITaskMarket.Task memory t = market.getTask(taskId);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.Failed));
        assertEq(uint256(t.failure), uint256(ITaskMarket.FailureReason.Undelivered));
        assertEq(market.paymentsOf(submitter) - before, PAYMENT);
        assertEq(sm.lockedFor(alice, taskId), 0);
        assertEq(sm.proceedsOf(submitter), STAKE * BENEFICIARY_BPS / 10_000);
        assertEq(sm.sinkBalance(), STAKE - STAKE * BENEFICIARY_BPS / 10_000);
        ITaskMarket.SolverRecord memory r = market.recordOf(alice);
        assertEq(r.slashed, 1);
        assertEq(r.credit, 0);
        assertEq(r.lastSlashedAt, block.timestamp);
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    function test_failUndelivered_beforeDeadline_reverts() public {
        uint256 taskId = _assigned(alice, 1 ether);
        uint256 deadline = market.getTask(taskId).deliveryDeadline;
        vm.expectRevert(
            abi.encodeWithSelector(ITaskMarket.DeliveryDeadlineNotPassed.selector, taskId, deadline, block.timestamp)
        );
        market.failUndelivered(taskId);
    }

    function test_failUndelivered_afterResult_reverts() public {
        uint256 taskId = _delivered(alice, 1 ether);
        vm.warp(market.getTask(taskId).deliveryDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeHook.WrongTaskStatus.selector,
                taskId,
                IDisputeHook.TaskStatus.ResultSubmitted,
                IDisputeHook.TaskStatus.Assigned
            )
        );
        market.failUndelivered(taskId);
    }

    function test_failUndelivered_lockAlreadySlashedElsewhere_succeeds() public {
        address other = makeAddr("otherSlasher");
        vm.prank(owner);
        sm.setSlasher(other, true);
        uint256 taskId = _assigned(alice, 1 ether);
        vm.prank(other);
        sm.slash(alice, taskId, STAKE, bob);
        vm.warp(market.getTask(taskId).deliveryDeadline);
        vm.expectEmit(address(market));
        emit ITaskMarket.TaskFailed(taskId, ITaskMarket.FailureReason.Undelivered, PAYMENT, 0);
        market.failUndelivered(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Failed));
        _assertMarketSolvent();
        _assertStakeSolvent();
    }

    function test_finalize_lockPartlySlashedElsewhere_succeeds() public {
        address other = makeAddr("otherSlasher");
        vm.prank(owner);
        sm.setSlasher(other, true);
        uint256 taskId = _delivered(alice, 1 ether);
        vm.prank(other);
        sm.slash(alice, taskId, 1 ether, bob);
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(sm.lockedFor(alice, taskId), 0);
        assertEq(sm.freeStakeOf(alice), STAKE - 1 ether);
        _assertStakeSolvent();
    }

    function test_finalize_lockFullySlashedElsewhere_succeeds() public {
        address other = makeAddr("otherSlasher");
        vm.prank(owner);
        sm.setSlasher(other, true);
        uint256 taskId = _delivered(alice, 1 ether);
        vm.prank(other);
        sm.slash(alice, taskId, STAKE, bob);
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Completed));
        _assertMarketSolvent();
    }

    // ─────────────────────────────────────────────── withdrawPayments

    function test_withdrawPayments_paysCredit_succeeds() public {
        uint256 taskId = _post();
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.expectEmit(address(market));
        emit ITaskMarket.PaymentWithdrawn(submitter, PAYMENT);
        vm.prank(submitter);
        market.withdrawPayments();
        assertEq(submitter.balance, 1_000 ether);
        assertEq(market.paymentsOf(submitter), 0);
        _assertMarketSolvent();
    }

    function test_withdrawPayments_nothing_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        market.withdrawPayments();
    }

    function test_withdrawPayments_rejectingReceiver_reverts() public {
        RejectingReceiver r = new RejectingReceiver();
        vm.deal(address(r), PAYMENT);
        bytes memory ret = r.call(address(market), PAYMENT, abi.encodeCall(ITaskMarket.postTask, (_params())));
        uint256 taskId = abi.decode(ret, (uint256));
        _toClose(taskId);
        market.closeAuction(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskMarket.TransferFailed.selector, address(r), PAYMENT));
        r.call(address(market), 0, abi.encodeCall(ITaskMarket.withdrawPayments, ()));
        assertEq(market.paymentsOf(address(r)), PAYMENT, "credit kept");
        _assertMarketSolvent();
    }

    function test_withdrawPayments_reentry_reverts() public {
        ReentrantReceiver r = new ReentrantReceiver();
        vm.deal(address(r), PAYMENT);
        bytes memory ret = r.call(address(market), PAYMENT, abi.encodeCall(ITaskMarket.postTask, (_params())));
        uint256 taskId = abi.decode(ret, (uint256));
        _toClose(taskId);
        market.closeAuction(taskId);
        r.arm(address(market), abi.encodeCall(ITaskMarket.withdrawPayments, ()));
        r.call(address(market), 0, abi.encodeCall(ITaskMarket.withdrawPayments, ()));
        assertTrue(r.reentered());
        assertFalse(r.reentrySucceeded(), "a re-entered withdrawal pays nothing twice");
        assertEq(address(r).balance, PAYMENT);
        _assertMarketSolvent();
    }

    // ─────────────────────────────────────────────── setDisputeContract

    function test_setDisputeContract_authorises_succeeds() public {
        vm.expectEmit(address(market));
        emit ITaskMarket.DisputeContractSet(alice, true);
        vm.prank(owner);
        market.setDisputeContract(alice, true);
        assertTrue(market.isDisputeContract(alice));
        vm.prank(owner);
        market.setDisputeContract(alice, false);
        assertFalse(market.isDisputeContract(alice));
    }

    function test_setDisputeContract_zero_reverts() public {
        vm.expectRevert(ITaskMarket.ZeroAddress.selector);
        vm.prank(owner);
        market.setDisputeContract(address(0), true);
    }

    function test_setDisputeContract_notOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        market.setDisputeContract(alice, true);
    }

    // ─────────────────────────────────────────────── views

    function test_bidCommitment_matchesAbiEncode_succeeds() public view {
        bytes32 salt = keccak256("s");
        assertEq(market.bidCommitment(3, alice, 5, salt), keccak256(abi.encode(uint256(3), alice, uint256(5), salt)));
    }

    function test_scoreOf_appliesBonus_succeeds() public {
        assertEq(market.scoreOf(alice, 1 ether), uint256(1 ether) * 1e18 / 10_000);
        _completed(alice, 1 ether);
        assertEq(market.scoreOf(alice, 1 ether), uint256(1 ether) * 1e18 / 10_500);
    }

    function test_getTask_unknownIsEmpty_succeeds() public view {
        ITaskMarket.Task memory t = market.getTask(42);
        assertEq(uint256(t.status), uint256(IDisputeHook.TaskStatus.None));
        assertEq(t.submitter, address(0));
    }
}
