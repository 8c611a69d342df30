// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {IDisputeHook} from "./interfaces/IDisputeHook.sol";
import {ITaskMarket} from "./interfaces/ITaskMarket.sol";
import {BidScoring} from "./libraries/BidScoring.sol";

/// @title TaskMarket
/// @notice Tasks, escrow, sealed-bid auction, results, challenge window, disputes and payout.
///         See ITaskMarket and IDisputeHook for the rules, docs/CONTRACTS.md for why.
contract TaskMarket is ITaskMarket, Ownable, ReentrancyGuard {
    /// @notice Most sealed bids one task accepts (bounds the loop in `closeAuction`).
    uint256 public constant MAX_BIDS = 32;
    /// @notice Shortest window a task may set, in seconds.
    uint256 public constant MIN_WINDOW = 1;
    /// @notice Longest window a task may set, in seconds.
    uint256 public constant MAX_WINDOW = 365 days;

    /// @notice Where stakes are locked, unlocked and slashed.
    IStakeManager public immutable stakeManager;
    /// @notice Bonus per credit, in basis points of score.
    uint16 public immutable creditBonusBps;
    /// @notice Cap of the bonus, in basis points of score.
    uint16 public immutable maxBonusBps;
    /// @notice A completed task earns credit only if its required stake was at least this.
    uint256 public immutable creditMinStake;
    /// @notice Seconds after opening after which an unresolved dispute may be expired by anyone.
    uint64 public immutable disputeTimeout;

    mapping(uint256 taskId => Task) internal _tasks;
    mapping(uint256 taskId => mapping(address bidder => Bid)) internal _bids;
    mapping(uint256 taskId => address[]) internal _bidders;
    mapping(address solver => SolverRecord) internal _records;
    mapping(address account => uint256) internal _payments;
    mapping(uint256 disputeId => Dispute) internal _disputes;
    mapping(address account => bool) internal _disputeContracts;

    /// @inheritdoc ITaskMarket
    uint256 public taskCount;
    /// @inheritdoc ITaskMarket
    uint256 public disputeCount;

    uint256 internal _totalEscrow;
    uint256 internal _totalBonds;
    uint256 internal _totalPayable;

    /// @param owner_ governance: authorises dispute contracts.
    /// @param stakeManager_ the StakeManager; its owner must call `setMarket(address(this))`.
    /// @param creditBonusBps_ score bonus per credit, in basis points.
    /// @param maxBonusBps_ cap of the score bonus, in basis points (at most 10,000).
    /// @param creditMinStake_ least required stake of a task whose completion earns credit.
    /// @param disputeTimeout_ seconds after which an unresolved dispute may be expired.
    constructor(
        address owner_,
        IStakeManager stakeManager_,
        uint16 creditBonusBps_,
        uint16 maxBonusBps_,
        uint256 creditMinStake_,
        uint64 disputeTimeout_
    ) Ownable(owner_) {
        if (address(stakeManager_) == address(0)) revert ZeroAddress();
        if (maxBonusBps_ > BidScoring.BPS) revert InvalidBonusParams(creditBonusBps_, maxBonusBps_);
        if (disputeTimeout_ < MIN_WINDOW || disputeTimeout_ > MAX_WINDOW) {
            revert InvalidWindow(4, disputeTimeout_, MIN_WINDOW, MAX_WINDOW);
        }
        stakeManager = stakeManager_;
        creditBonusBps = creditBonusBps_;
        maxBonusBps = maxBonusBps_;
        creditMinStake = creditMinStake_;
        disputeTimeout = disputeTimeout_;
    }

    // ─────────────────────────────────────────────────────────────── submitters

    /// @inheritdoc ITaskMarket
    function postTask(TaskParams calldata params) external payable returns (uint256 taskId) {
        if (msg.value == 0) revert ZeroPayment();
        if (params.requiredStake == 0) revert ZeroStake();
        if (params.initialStateRoot == bytes32(0)) revert ZeroRoot();
        _checkWindow(0, params.bidWindow);
        _checkWindow(1, params.revealWindow);
        _checkWindow(2, params.trainingWindow);
        _checkWindow(3, params.challengeWindow);
        if (params.checkpointInterval == 0 || params.steps == 0 || params.steps % params.checkpointInterval != 0) {
            revert InvalidSteps(params.steps, params.checkpointInterval);
        }
        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.submitter = msg.sender;
        t.status = TaskStatus.Bidding;
        // Windows are at most MAX_WINDOW, so the deadlines fit in 64 bits for any realistic timestamp.
        uint64 commitDeadline = uint64(block.timestamp) + params.bidWindow;
        uint64 revealDeadline = commitDeadline + params.revealWindow;
        t.commitDeadline = commitDeadline;
        t.revealDeadline = revealDeadline;
        t.trainingWindow = params.trainingWindow;
        t.challengeWindow = params.challengeWindow;
        t.steps = params.steps;
        t.checkpointInterval = params.checkpointInterval;
        t.minCredit = params.minCredit;
        t.payment = msg.value;
        t.requiredStake = params.requiredStake;
        t.bidBond = params.bidBond;
        t.specHash = params.specHash;
        t.initialStateRoot = params.initialStateRoot;
        t.opGraphRoot = params.opGraphRoot;
        t.specURI = params.specURI;
        _totalEscrow += msg.value;
        emit TaskPosted(
            taskId, msg.sender, msg.value, params.requiredStake, params.specHash, commitDeadline, revealDeadline
        );
    }

    // ─────────────────────────────────────────────────────────────── bidders

    /// @inheritdoc ITaskMarket
    function commitBid(uint256 taskId, bytes32 commitment) external payable {
        Task storage t = _taskIn(taskId, TaskStatus.Bidding);
        if (block.timestamp >= t.commitDeadline) {
            revert CommitWindowClosed(taskId, t.commitDeadline, block.timestamp);
        }
        if (msg.sender == t.submitter) revert SubmitterCannotBid(taskId, msg.sender);
        if (msg.value != t.bidBond) revert WrongBidBond(taskId, msg.value, t.bidBond);
        Bid storage bid = _bids[taskId][msg.sender];
        if (bid.status != BidStatus.None) revert BidAlreadyCommitted(taskId, msg.sender);
        if (t.bidCount >= MAX_BIDS) revert TooManyBids(taskId, MAX_BIDS);
        _checkEligible(t, msg.sender);
        bid.commitment = commitment;
        bid.bond = msg.value;
        bid.status = BidStatus.Committed;
        t.bidCount += 1;
        _bidders[taskId].push(msg.sender);
        _totalBonds += msg.value;
        emit BidCommitted(taskId, msg.sender, commitment, msg.value);
    }

    /// @inheritdoc ITaskMarket
    function revealBid(uint256 taskId, uint256 price, bytes32 salt) external {
        Task storage t = _taskIn(taskId, TaskStatus.Bidding);
        if (block.timestamp < t.commitDeadline || block.timestamp >= t.revealDeadline) {
            revert RevealWindowNotOpen(taskId, t.commitDeadline, t.revealDeadline, block.timestamp);
        }
        Bid storage bid = _bids[taskId][msg.sender];
        if (bid.status != BidStatus.Committed) revert NoSealedBid(taskId, msg.sender);
        bytes32 actual = BidScoring.commitment(taskId, msg.sender, price, salt);
        if (actual != bid.commitment) revert CommitmentMismatch(taskId, msg.sender, bid.commitment, actual);
        if (price == 0 || price > t.payment) revert InvalidPrice(taskId, price, t.payment);
        _checkEligible(t, msg.sender);
        bid.price = price;
        bid.status = BidStatus.Revealed;
        emit BidRevealed(taskId, msg.sender, price);
    }

    /// @dev The running best and runner-up of an auction (a struct keeps the loop off the stack limit).
    struct Ranking {
        address best;
        uint256 bestPrice;
        uint256 bestScore;
        uint256 bestCredit;
        uint256 bestBonus;
        bool hasRunnerUp;
        uint256 runnerUpScore;
    }

    /// @inheritdoc ITaskMarket
    function closeAuction(uint256 taskId) external returns (address solver) {
        Task storage t = _taskIn(taskId, TaskStatus.Bidding);
        if (block.timestamp < t.revealDeadline) revert AuctionNotOver(taskId, t.revealDeadline, block.timestamp);

        Ranking memory r = Ranking({
            best: address(0),
            bestPrice: 0,
            bestScore: 0,
            bestCredit: 0,
            bestBonus: 0,
            hasRunnerUp: false,
            runnerUpScore: 0
        });
        uint256 forfeited = 0;
        uint256 settled = 0;
        address[] storage bidders = _bidders[taskId];
        uint256 n = bidders.length;
        for (uint256 i = 0; i < n; ++i) {
            address bidder = bidders[i];
            Bid storage bid = _bids[taskId][bidder];
            uint256 bond = bid.bond;
            settled += bond;
            uint64 credit = _records[bidder].credit;
            bool eligible = bid.status == BidStatus.Revealed && credit >= t.minCredit
                && stakeManager.freeStakeOf(bidder) >= t.requiredStake;
            if (!eligible) {
                bid.status = BidStatus.Forfeited;
                forfeited += bond;
                emit BidBondForfeited(taskId, bidder, bond);
                continue;
            }
            bid.status = BidStatus.Refunded;
            _payments[bidder] += bond;
            emit BidBondRefunded(taskId, bidder, bond);
            _rank(r, bidder, bid.price, credit);
        }
        address submitter = t.submitter;
        _payments[submitter] += forfeited;
        _totalBonds -= settled;
        _totalPayable += settled;

        if (r.best == address(0)) {
            uint256 refund = t.payment;
            t.status = TaskStatus.Cancelled;
            _totalEscrow -= refund;
            _totalPayable += refund;
            _payments[submitter] += refund;
            emit TaskCancelled(taskId, refund);
            return address(0);
        }

        solver = r.best;
        uint256 agreed = BidScoring.agreedPrice(r.bestPrice, r.bestBonus, r.hasRunnerUp, r.runnerUpScore, t.payment);
        uint64 deliveryDeadline = uint64(block.timestamp) + t.trainingWindow;
        t.solver = solver;
        t.winningPrice = r.bestPrice;
        t.agreedPrice = agreed;
        t.deliveryDeadline = deliveryDeadline;
        t.status = TaskStatus.Assigned;
        emit TaskAssigned(taskId, solver, r.bestPrice, agreed, deliveryDeadline);
        stakeManager.lock(solver, taskId, t.requiredStake);
    }

    // ─────────────────────────────────────────────────────────────── solver

    /// @inheritdoc ITaskMarket
    function commitProgress(uint256 taskId, bytes32 traceRoot, uint64 numCheckpoints) external {
        Task storage t = _solverTask(taskId);
        if (traceRoot == bytes32(0)) revert ZeroRoot();
        uint64 maxCheckpoints = _numCheckpoints(t);
        uint64 previous = t.progressCheckpoints;
        if (numCheckpoints <= previous || numCheckpoints > maxCheckpoints) {
            revert InvalidCheckpointCount(taskId, numCheckpoints, previous, maxCheckpoints);
        }
        t.progressRoot = traceRoot;
        t.progressCheckpoints = numCheckpoints;
        emit ProgressCommitted(taskId, traceRoot, numCheckpoints);
    }

    /// @inheritdoc ITaskMarket
    function submitResult(
        uint256 taskId,
        bytes32 traceRoot,
        uint64 numSteps,
        bytes32 finalStateRoot,
        string calldata artifactURI
    ) external {
        Task storage t = _solverTask(taskId);
        if (traceRoot == bytes32(0) || finalStateRoot == bytes32(0)) revert ZeroRoot();
        if (numSteps != t.steps) revert StepsMismatch(taskId, numSteps, t.steps);
        uint64 challengeDeadline = uint64(block.timestamp) + t.challengeWindow;
        t.traceRoot = traceRoot;
        t.numSteps = numSteps;
        t.finalStateRoot = finalStateRoot;
        t.artifactURI = artifactURI;
        t.challengeDeadline = challengeDeadline;
        t.status = TaskStatus.ResultSubmitted;
        emit ResultSubmitted(taskId, traceRoot, numSteps, finalStateRoot, artifactURI, challengeDeadline);
    }

    // ─────────────────────────────────────────────────────────────── settlement

    /// @inheritdoc ITaskMarket
    function finalize(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.ResultSubmitted);
        if (block.timestamp < t.challengeDeadline) {
            revert ChallengeWindowOpen(taskId, t.challengeDeadline, block.timestamp);
        }
        if (t.openDisputes != 0) revert DisputesOpen(taskId, t.openDisputes);
        address solver = t.solver;
        uint256 payment = t.payment;
        uint256 paid = t.agreedPrice;
        // Safe: agreedPrice <= payment by BidScoring.agreedPrice.
        uint256 refund;
        unchecked {
            refund = payment - paid;
        }
        t.status = TaskStatus.Completed;
        _totalEscrow -= payment;
        _totalPayable += payment;
        _payments[solver] += paid;
        _payments[t.submitter] += refund;
        emit TaskCompleted(taskId, solver, paid, refund);

        SolverRecord storage rec = _records[solver];
        rec.completed += 1;
        if (t.requiredStake >= creditMinStake) rec.credit += 1;
        emit SolverRecordUpdated(solver, rec.completed, rec.slashed, rec.credit);

        // A slasher the StakeManager's owner authorised may have taken part or all of the lock directly;
        // release what is left, and never let an empty lock block the payout.
        if (stakeManager.lockedFor(solver, taskId) != 0) {
            // unlock returns the amount released, which is the lockedFor value just read.
            // slither-disable-next-line unused-return
            stakeManager.unlock(solver, taskId);
        }
    }

    /// @inheritdoc ITaskMarket
    function failUndelivered(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.Assigned);
        if (block.timestamp < t.deliveryDeadline) {
            revert DeliveryDeadlineNotPassed(taskId, t.deliveryDeadline, block.timestamp);
        }
        _fail(taskId, t, FailureReason.Undelivered, t.submitter);
    }

    /// @inheritdoc ITaskMarket
    function expireDispute(uint256 disputeId) external {
        Dispute storage d = _openDispute(disputeId);
        uint256 expiresAt = uint256(d.openedAt) + disputeTimeout;
        if (block.timestamp < expiresAt) revert DisputeNotExpired(disputeId, expiresAt, block.timestamp);
        _close(disputeId, d, DisputeStatus.Expired);
    }

    /// @inheritdoc ITaskMarket
    function withdrawPayments() external nonReentrant {
        uint256 amount = _payments[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _payments[msg.sender] = 0;
        _totalPayable -= amount;
        emit PaymentWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ─────────────────────────────────────────────────────────────── dispute contracts

    /// @inheritdoc IDisputeHook
    function openDispute(uint256 taskId, address challenger) external returns (uint256 disputeId) {
        if (!_disputeContracts[msg.sender]) revert NotDisputeContract(msg.sender);
        Task storage t = _taskIn(taskId, TaskStatus.ResultSubmitted);
        // INVARIANT: disputes open only strictly before the challenge deadline, and finalize only at or
        // after it, so no dispute can be opened on a task that is being paid out.
        if (block.timestamp >= t.challengeDeadline) {
            revert ChallengeWindowClosed(taskId, t.challengeDeadline, block.timestamp);
        }
        if (challenger == address(0) || challenger == t.solver) revert InvalidChallenger(challenger);
        disputeId = ++disputeCount;
        _disputes[disputeId] = Dispute({
            taskId: taskId,
            disputeContract: msg.sender,
            challenger: challenger,
            openedAt: uint64(block.timestamp),
            status: DisputeStatus.Open
        });
        uint32 open = t.openDisputes + 1;
        t.openDisputes = open;
        emit DisputeOpened(disputeId, taskId, msg.sender, challenger, open);
    }

    /// @inheritdoc IDisputeHook
    function resolveDispute(uint256 disputeId, bool solverLost) external returns (DisputeStatus status) {
        Dispute storage d = _disputes[disputeId];
        status = d.status;
        if (status == DisputeStatus.None) revert UnknownDispute(disputeId);
        if (msg.sender != d.disputeContract) revert NotDisputeOpener(disputeId, d.disputeContract, msg.sender);
        // An expired dispute already released the freeze; the late report changes nothing.
        if (status == DisputeStatus.Expired) return status;
        if (status != DisputeStatus.Open) revert DisputeNotOpen(disputeId, status);
        if (!_disputeContracts[msg.sender]) revert NotDisputeContract(msg.sender);

        Task storage t = _tasks[d.taskId];
        if (t.status != TaskStatus.ResultSubmitted) {
            // INVARIANT: with a dispute open the task is ResultSubmitted or already Failed by another
            // dispute; a solver is slashed at most once, so this one only closes.
            status = DisputeStatus.Closed;
        } else if (solverLost) {
            status = DisputeStatus.SolverLost;
        } else {
            status = DisputeStatus.SolverWon;
        }
        _close(disputeId, d, status);
        if (status == DisputeStatus.SolverLost) _fail(d.taskId, t, FailureReason.DisputeLost, d.challenger);
    }

    // ─────────────────────────────────────────────────────────────── owner

    /// @inheritdoc ITaskMarket
    function setDisputeContract(address account, bool allowed) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        _disputeContracts[account] = allowed;
        emit DisputeContractSet(account, allowed);
    }

    // ─────────────────────────────────────────────────────────────── views

    /// @inheritdoc ITaskMarket
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @inheritdoc ITaskMarket
    function getBid(uint256 taskId, address bidder) external view returns (Bid memory) {
        return _bids[taskId][bidder];
    }

    /// @inheritdoc ITaskMarket
    function biddersOf(uint256 taskId) external view returns (address[] memory) {
        return _bidders[taskId];
    }

    /// @inheritdoc ITaskMarket
    function recordOf(address solver) external view returns (SolverRecord memory) {
        return _records[solver];
    }

    /// @inheritdoc ITaskMarket
    function paymentsOf(address account) external view returns (uint256) {
        return _payments[account];
    }

    /// @inheritdoc ITaskMarket
    function totals() external view returns (uint256 escrow, uint256 bonds, uint256 payable_) {
        return (_totalEscrow, _totalBonds, _totalPayable);
    }

    /// @inheritdoc ITaskMarket
    function scoreOf(address bidder, uint256 price) external view returns (uint256) {
        return BidScoring.score(price, _bonus(_records[bidder].credit));
    }

    /// @inheritdoc ITaskMarket
    function bidCommitment(uint256 taskId, address bidder, uint256 price, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return BidScoring.commitment(taskId, bidder, price, salt);
    }

    /// @inheritdoc IDisputeHook
    function disputeContext(uint256 taskId) external view returns (DisputeContext memory ctx) {
        Task storage t = _tasks[taskId];
        ctx.status = t.status;
        ctx.submitter = t.submitter;
        ctx.solver = t.solver;
        ctx.specHash = t.specHash;
        ctx.initialStateRoot = t.initialStateRoot;
        ctx.opGraphRoot = t.opGraphRoot;
        ctx.traceRoot = t.traceRoot;
        ctx.finalStateRoot = t.finalStateRoot;
        ctx.numSteps = t.numSteps;
        ctx.checkpointInterval = t.checkpointInterval;
        ctx.numCheckpoints = t.status == TaskStatus.None ? 0 : _numCheckpoints(t);
        ctx.challengeDeadline = t.challengeDeadline;
        ctx.openDisputes = t.openDisputes;
    }

    /// @inheritdoc IDisputeHook
    function getDispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc IDisputeHook
    function isDisputeContract(address account) external view returns (bool) {
        return _disputeContracts[account];
    }

    // ─────────────────────────────────────────────────────────────── internal

    function _taskIn(uint256 taskId, TaskStatus expected) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert UnknownTask(taskId);
        if (t.status != expected) revert WrongTaskStatus(taskId, t.status, expected);
    }

    /// @dev The task in Assigned, called by its solver before the delivery deadline.
    function _solverTask(uint256 taskId) internal view returns (Task storage t) {
        t = _taskIn(taskId, TaskStatus.Assigned);
        if (msg.sender != t.solver) revert NotSolver(taskId, msg.sender, t.solver);
        if (block.timestamp >= t.deliveryDeadline) {
            revert DeliveryDeadlinePassed(taskId, t.deliveryDeadline, block.timestamp);
        }
    }

    function _openDispute(uint256 disputeId) internal view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status == DisputeStatus.None) revert UnknownDispute(disputeId);
        if (d.status != DisputeStatus.Open) revert DisputeNotOpen(disputeId, d.status);
    }

    function _checkWindow(uint8 which, uint64 value) internal pure {
        if (value < MIN_WINDOW || value > MAX_WINDOW) revert InvalidWindow(which, value, MIN_WINDOW, MAX_WINDOW);
    }

    /// @dev Eligibility to bid: enough credit and the required stake free right now.
    function _checkEligible(Task storage t, address bidder) internal view {
        uint64 credit = _records[bidder].credit;
        if (credit < t.minCredit) revert InsufficientCredit(bidder, credit, t.minCredit);
        uint256 free = stakeManager.freeStakeOf(bidder);
        if (free < t.requiredStake) revert StakeTooLow(bidder, t.requiredStake, free);
    }

    function _bonus(uint256 credit) internal view returns (uint256) {
        return BidScoring.bonusBps(credit, creditBonusBps, maxBonusBps);
    }

    /// @dev Puts an eligible revealed bid into the running ranking.
    function _rank(Ranking memory r, address bidder, uint256 price, uint256 credit) internal view {
        uint256 bonus = _bonus(credit);
        uint256 s = BidScoring.score(price, bonus);
        if (r.best == address(0) || BidScoring.beats(s, credit, r.bestScore, r.bestCredit)) {
            if (r.best != address(0)) {
                r.hasRunnerUp = true;
                r.runnerUpScore = r.bestScore;
            }
            r.best = bidder;
            r.bestPrice = price;
            r.bestScore = s;
            r.bestCredit = credit;
            r.bestBonus = bonus;
        } else if (!r.hasRunnerUp || s < r.runnerUpScore) {
            r.hasRunnerUp = true;
            r.runnerUpScore = s;
        }
    }

    /// @dev Leaves of the full trace: S_0, S_c, ..., S_N.
    function _numCheckpoints(Task storage t) internal view returns (uint64) {
        return t.steps / t.checkpointInterval + 1;
    }

    /// @dev Fails an Assigned or ResultSubmitted task: slashes the solver's whole lock for the task
    ///      (`beneficiary` gets the beneficiary share), refunds the escrow, wipes the solver's credit.
    function _fail(uint256 taskId, Task storage t, FailureReason reason, address beneficiary) internal {
        address solver = t.solver;
        uint256 refund = t.payment;
        t.status = TaskStatus.Failed;
        t.failure = reason;
        _totalEscrow -= refund;
        _totalPayable += refund;
        _payments[t.submitter] += refund;
        // Normally the whole requiredStake; less if an authorised slasher already took part of it directly.
        uint256 slashed = stakeManager.lockedFor(solver, taskId);
        emit TaskFailed(taskId, reason, refund, slashed);

        SolverRecord storage rec = _records[solver];
        rec.slashed += 1;
        rec.credit = 0;
        rec.lastSlashedAt = uint64(block.timestamp);
        emit SolverRecordUpdated(solver, rec.completed, rec.slashed, 0);

        // The split is fixed by the StakeManager's beneficiaryBps and emitted there in StakeSlashed.
        if (slashed != 0) {
            // slither-disable-next-line unused-return
            stakeManager.slash(solver, taskId, slashed, beneficiary);
        }
    }

    function _close(uint256 disputeId, Dispute storage d, DisputeStatus status) internal {
        d.status = status;
        Task storage t = _tasks[d.taskId];
        uint32 open = t.openDisputes - 1;
        t.openDisputes = open;
        emit DisputeResolved(disputeId, d.taskId, status, open);
    }
}
