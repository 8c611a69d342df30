// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../../utils/TestBase.sol";
import {StakeManager} from "../../../src/StakeManager.sol";
import {TaskMarket} from "../../../src/TaskMarket.sol";
import {ITaskMarket} from "../../../src/interfaces/ITaskMarket.sol";
import {IDisputeHook} from "../../../src/interfaces/IDisputeHook.sol";

/// @notice Drives several actors through random sequences of stake / withdraw / post / bid / reveal /
///         close / progress / result / finalize / timeouts, and plays an authorised dispute contract
///         that opens and resolves disputes at random. Every call that moves ETH updates ghost sums;
///         every call that may release a lock records how much it released per task.
contract MarketHandler is TestBase {
    uint256 internal constant MAX_TASKS = 12;
    uint64 internal constant STEPS = 100;
    uint64 internal constant INTERVAL = 10;

    StakeManager public immutable sm;
    TaskMarket public immutable market;

    address[] public solvers;
    address[] public submitters;

    // ghost sums of ETH that entered and left each contract
    uint256 public ghostMarketIn;
    uint256 public ghostMarketOut;
    uint256 public ghostStakeIn;
    uint256 public ghostStakeOut;

    /// @notice Stake released (unlocked or slashed) per task, summed over all calls.
    mapping(uint256 taskId => uint256) public released;
    /// @notice How many calls released any stake of a task.
    mapping(uint256 taskId => uint256) public releaseCount;

    mapping(uint256 taskId => mapping(address bidder => uint256)) internal _price;
    mapping(uint256 taskId => mapping(address bidder => bytes32)) internal _salt;
    mapping(address => bool) internal _isActor;
    address[] internal _actors;

    mapping(bytes4 => uint256) public calls;

    constructor(StakeManager sm_, TaskMarket market_) {
        sm = sm_;
        market = market_;
        for (uint256 i = 0; i < 4; ++i) {
            solvers.push(address(uint160(0xA000 + i)));
            _addActor(solvers[i]);
        }
        for (uint256 i = 0; i < 2; ++i) {
            submitters.push(address(uint160(0xB000 + i)));
            _addActor(submitters[i]);
        }
    }

    function _addActor(address a) internal {
        _isActor[a] = true;
        _actors.push(a);
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    // ─────────────────────────────────────────────── picking

    function _solver(uint256 seed) internal view returns (address) {
        return solvers[seed % solvers.length];
    }

    function _submitter(uint256 seed) internal view returns (address) {
        return submitters[seed % submitters.length];
    }

    function _task(uint256 seed) internal view returns (uint256) {
        uint256 n = market.taskCount();
        return n == 0 ? 0 : 1 + seed % n;
    }

    /// @dev Where a task stands now, finer than its status: which call can act on it.
    enum Phase {
        None,
        CommitOpen,
        RevealOpen,
        AuctionOver,
        Training,
        DeliveryLate,
        ChallengeOpen,
        ChallengeOver,
        Settled
    }

    function _phase(uint256 id) internal view returns (Phase) {
        ITaskMarket.Task memory t = market.getTask(id);
        if (t.status == IDisputeHook.TaskStatus.Bidding) {
            if (block.timestamp < t.commitDeadline) return Phase.CommitOpen;
            if (block.timestamp < t.revealDeadline) return Phase.RevealOpen;
            return Phase.AuctionOver;
        }
        if (t.status == IDisputeHook.TaskStatus.Assigned) {
            return block.timestamp < t.deliveryDeadline ? Phase.Training : Phase.DeliveryLate;
        }
        if (t.status == IDisputeHook.TaskStatus.ResultSubmitted) {
            return block.timestamp < t.challengeDeadline ? Phase.ChallengeOpen : Phase.ChallengeOver;
        }
        return t.status == IDisputeHook.TaskStatus.None ? Phase.None : Phase.Settled;
    }

    /// @dev A task in `phase` (scanning from `seed`). When none is, one seed in four still picks any
    ///      task, so the market's reverts stay exercised; otherwise zero, and the call does nothing.
    function _taskIn(uint256 seed, Phase phase) internal view returns (uint256) {
        uint256 n = market.taskCount();
        if (n == 0) return 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 id = 1 + (seed + k) % n;
            if (_phase(id) == phase) return id;
        }
        return seed % 4 == 0 ? 1 + seed % n : 0;
    }

    function _fund(address who, uint256 amount) internal {
        vm.deal(who, who.balance + amount);
    }

    /// @dev Runs `action` and records what it released from the lock of `taskId`'s solver.
    function _trackRelease(uint256 taskId) internal view returns (address solver, uint256 before) {
        solver = market.getTask(taskId).solver;
        before = solver == address(0) ? 0 : sm.lockedFor(solver, taskId);
    }

    function _recordRelease(uint256 taskId, address solver, uint256 before) internal {
        if (solver == address(0)) return;
        uint256 afterLock = sm.lockedFor(solver, taskId);
        if (afterLock < before) {
            released[taskId] += before - afterLock;
            releaseCount[taskId] += 1;
        }
    }

    // ─────────────────────────────────────────────── stake manager

    function deposit(uint256 seed, uint256 amount) external {
        address who = _solver(seed);
        amount = bound(amount, 1, 20 ether);
        _fund(who, amount);
        vm.prank(who);
        sm.deposit{value: amount}();
        ghostStakeIn += amount;
        calls[this.deposit.selector]++;
    }

    function requestWithdrawal(uint256 seed, uint256 amount) external {
        address who = _solver(seed);
        amount = bound(amount, 1, sm.freeStakeOf(who) + 1);
        vm.prank(who);
        sm.requestWithdrawal(amount);
        calls[this.requestWithdrawal.selector]++;
    }

    function cancelWithdrawal(uint256 seed) external {
        vm.prank(_solver(seed));
        sm.cancelWithdrawal();
        calls[this.cancelWithdrawal.selector]++;
    }

    function withdraw(uint256 seed) external {
        address who = _solver(seed);
        (uint256 amount,) = sm.pendingWithdrawalOf(who);
        vm.prank(who);
        sm.withdraw();
        ghostStakeOut += amount;
        calls[this.withdraw.selector]++;
    }

    function claimProceeds(uint256 seed) external {
        address who = _actors[seed % _actors.length];
        uint256 amount = sm.proceedsOf(who);
        vm.prank(who);
        sm.claimProceeds();
        ghostStakeOut += amount;
        calls[this.claimProceeds.selector]++;
    }

    function flushSink() external {
        uint256 amount = sm.sinkBalance();
        sm.flushSink();
        ghostStakeOut += amount;
        calls[this.flushSink.selector]++;
    }

    // ─────────────────────────────────────────────── market

    function postTask(uint256 seed, uint256 payment, uint256 bond, uint256 stake) external {
        if (market.taskCount() >= MAX_TASKS) return;
        address who = _submitter(seed);
        payment = bound(payment, 1, 50 ether);
        bond = bound(bond, 0, 1 ether);
        stake = bound(stake, 1, 10 ether);
        ITaskMarket.TaskParams memory p = ITaskMarket.TaskParams({
            specHash: keccak256(abi.encode(seed)),
            initialStateRoot: keccak256(abi.encode("S_0", seed)),
            opGraphRoot: keccak256(abi.encode("ops", seed)),
            specURI: "spec",
            requiredStake: stake,
            bidBond: bond,
            bidWindow: 2 hours,
            revealWindow: 2 hours,
            trainingWindow: 6 hours,
            challengeWindow: 4 hours,
            steps: STEPS,
            checkpointInterval: INTERVAL,
            minCredit: seed % 5 == 0 ? 1 : 0
        });
        _fund(who, payment);
        vm.prank(who);
        market.postTask{value: payment}(p);
        ghostMarketIn += payment;
        calls[this.postTask.selector]++;
    }

    function commitBid(uint256 taskSeed, uint256 seed, uint256 price) external {
        uint256 taskId = _taskIn(taskSeed, Phase.CommitOpen);
        if (taskId == 0) return;
        // A solver without a bid on the task, when there is one.
        address who = _solver(seed);
        for (uint256 k = 0; k < solvers.length && market.getBid(taskId, who).commitment != 0; ++k) {
            who = _solver(seed + k);
        }
        ITaskMarket.Task memory t = market.getTask(taskId);
        price = bound(price, 0, t.payment + 1);
        uint256 free = sm.freeStakeOf(who);
        if (seed % 4 != 0 && free < t.requiredStake) {
            // Top up most bidders so that auctions have several eligible bids.
            uint256 topUp = t.requiredStake - free;
            _fund(who, topUp);
            vm.prank(who);
            sm.deposit{value: topUp}();
            ghostStakeIn += topUp;
        }
        bytes32 salt = keccak256(abi.encode(seed, taskId));
        bytes32 c = market.bidCommitment(taskId, who, price, salt);
        _fund(who, t.bidBond);
        vm.prank(who);
        market.commitBid{value: t.bidBond}(taskId, c);
        _price[taskId][who] = price;
        _salt[taskId][who] = salt;
        ghostMarketIn += t.bidBond;
        calls[this.commitBid.selector]++;
    }

    function revealBid(uint256 taskSeed, uint256 seed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.RevealOpen);
        if (taskId == 0) return;
        address[] memory bidders = market.biddersOf(taskId);
        // Mostly a bidder of the task with a sealed bid; otherwise any solver, which must be rejected.
        address who = _solver(seed);
        if (bidders.length != 0 && seed % 5 != 0) {
            who = bidders[seed % bidders.length];
            for (uint256 k = 1; k < bidders.length && market.getBid(taskId, who).price != 0; ++k) {
                who = bidders[(seed + k) % bidders.length];
            }
        }
        // One reveal in eight uses a wrong salt, which the market must reject.
        bytes32 salt = seed % 8 == 0 ? bytes32(seed) : _salt[taskId][who];
        vm.prank(who);
        market.revealBid(taskId, _price[taskId][who], salt);
        calls[this.revealBid.selector]++;
    }

    function closeAuction(uint256 taskSeed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.AuctionOver);
        if (taskId == 0) return;
        market.closeAuction(taskId);
        calls[this.closeAuction.selector]++;
    }

    function commitProgress(uint256 taskSeed, uint64 n) external {
        uint256 taskId = _taskIn(taskSeed, Phase.Training);
        if (taskId == 0) return;
        ITaskMarket.Task memory t = market.getTask(taskId);
        n = uint64(bound(n, t.progressCheckpoints + 1, STEPS / INTERVAL + 1));
        vm.prank(t.solver);
        market.commitProgress(taskId, keccak256(abi.encode(taskId, n)), n);
        calls[this.commitProgress.selector]++;
    }

    function submitResult(uint256 taskSeed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.Training);
        if (taskId == 0) return;
        address solver = market.getTask(taskId).solver;
        // The last solver never delivers: its tasks run into the delivery timeout.
        if (solver == solvers[solvers.length - 1]) return;
        vm.prank(solver);
        market.submitResult(taskId, keccak256("trace"), STEPS, keccak256("final"), "artifact");
        calls[this.submitResult.selector]++;
    }

    function finalize(uint256 taskSeed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.ChallengeOver);
        if (taskId == 0) return;
        (address solver, uint256 before) = _trackRelease(taskId);
        market.finalize(taskId);
        _recordRelease(taskId, solver, before);
        calls[this.finalize.selector]++;
    }

    function failUndelivered(uint256 taskSeed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.DeliveryLate);
        if (taskId == 0) return;
        (address solver, uint256 before) = _trackRelease(taskId);
        market.failUndelivered(taskId);
        _recordRelease(taskId, solver, before);
        calls[this.failUndelivered.selector]++;
    }

    function withdrawPayments(uint256 seed) external {
        address who = _actors[seed % _actors.length];
        uint256 amount = market.paymentsOf(who);
        vm.prank(who);
        market.withdrawPayments();
        ghostMarketOut += amount;
        calls[this.withdrawPayments.selector]++;
    }

    // ─────────────────────────────────────────────── the dispute contract (this handler)

    function openDispute(uint256 taskSeed, uint256 seed) external {
        uint256 taskId = _taskIn(taskSeed, Phase.ChallengeOpen);
        if (taskId == 0) return;
        market.openDispute(taskId, _solver(seed));
        calls[this.openDispute.selector]++;
    }

    function resolveDispute(uint256 disputeSeed, bool solverLost) external {
        uint256 n = market.disputeCount();
        if (n == 0) return;
        uint256 id = 1 + disputeSeed % n;
        // Prefer an open dispute.
        for (uint256 k = 0; k < n && market.getDispute(id).status != IDisputeHook.DisputeStatus.Open; ++k) {
            id = 1 + (disputeSeed + k) % n;
        }
        uint256 taskId = market.getDispute(id).taskId;
        (address solver, uint256 before) = _trackRelease(taskId);
        market.resolveDispute(id, solverLost);
        _recordRelease(taskId, solver, before);
        calls[this.resolveDispute.selector]++;
    }

    function expireDispute(uint256 disputeSeed) external {
        uint256 n = market.disputeCount();
        if (n == 0) return;
        market.expireDispute(1 + disputeSeed % n);
        calls[this.expireDispute.selector]++;
    }

    // ─────────────────────────────────────────────── one step of a random task

    /// @notice Takes the natural next step of one task, so that long life cycles (auction, training,
    ///         challenge window, payout or failure) happen often within one run.
    function advance(uint256 taskSeed, uint256 seed, uint256 price) external {
        uint256 n = market.taskCount();
        if (n == 0) return;
        uint256 taskId = 1 + taskSeed % n;
        Phase phase = _phase(taskId);
        if (phase == Phase.CommitOpen) {
            this.commitBid(taskId - 1, seed, price);
        } else if (phase == Phase.RevealOpen) {
            this.revealBid(taskId - 1, seed);
        } else if (phase == Phase.AuctionOver) {
            this.closeAuction(taskId - 1);
        } else if (phase == Phase.Training) {
            if (seed % 3 == 0) this.commitProgress(taskId - 1, uint64(seed));
            else if (seed % 7 != 1) this.submitResult(taskId - 1);
            else this.warp(2 hours);
        } else if (phase == Phase.DeliveryLate) {
            this.failUndelivered(taskId - 1);
        } else if (phase == Phase.ChallengeOpen) {
            if (seed % 4 == 0) this.openDispute(taskId - 1, seed);
            else this.warp(2 hours);
        } else if (phase == Phase.ChallengeOver) {
            this.finalize(taskId - 1);
        }
    }

    // ─────────────────────────────────────────────── time

    function warp(uint256 secs) external {
        secs = bound(secs, 1, 2 hours);
        vm.warp(block.timestamp + secs);
        calls[this.warp.selector]++;
    }
}
