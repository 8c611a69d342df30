// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDisputeHook} from "./IDisputeHook.sol";

/// @title ITaskMarket
/// @notice Training tasks with the payment in escrow, a sealed-bid reverse auction (commit, reveal,
///         close), assignment by an eligibility test plus a record-weighted score, second-price payment,
///         progress commitments, the final result, a challenge window with disputes (see IDisputeHook),
///         and a timeout with a defined outcome at every stage. All payouts are credited and pulled
///         with `withdrawPayments`, so a recipient that rejects ETH never blocks a task.
/// @dev Solvency invariant: `address(this).balance == totalEscrow + totalBonds + totalPayable`.
///      Commitment of a bid: `keccak256(abi.encode(taskId, bidder, price, salt))`.
///      Score of a revealed bid (lower wins): `price * 1e18 / (10_000 + bonusBps)`, where
///      `bonusBps = min(credit * creditBonusBps, maxBonusBps)` and `credit` counts the solver's completed
///      tasks since its last slash (see docs/CONTRACTS.md).
interface ITaskMarket is IDisputeHook {
    // ─────────────────────────────────────────────────────────────── types

    /// @notice State of one sealed bid. Zero means no bid.
    enum BidStatus {
        None,
        Committed, // sealed, bond held
        Revealed, // price known, bond held until the auction closes
        Refunded, // auction closed, bond returned
        Forfeited // never revealed or stake gone at close: bond paid to the submitter
    }

    /// @notice Why a task failed. Zero means it did not.
    enum FailureReason {
        None,
        Undelivered, // no result before the delivery deadline
        DisputeLost // the solver lost a dispute
    }

    /// @notice What a submitter passes to `postTask`; the payment is `msg.value`.
    struct TaskParams {
        bytes32 specHash; // hash of the task spec document
        bytes32 initialStateRoot; // S_0, the state the spec's seed gives; non-zero (the game's level 1 starts here)
        bytes32 opGraphRoot; // root over the spec's op graph of one training step (the one-step verifier's programs)
        string specURI; // where the spec document lives
        uint256 requiredStake; // stake the winner locks; bidders need it free at commit, reveal and close
        uint256 bidBond; // ETH sent with each sealed bid, forfeited to the submitter if not revealed
        uint64 bidWindow; // seconds for commits, from posting
        uint64 revealWindow; // seconds for reveals, after the commit window
        uint64 trainingWindow; // seconds from assignment to the final result
        uint64 challengeWindow; // seconds from the result during which disputes may be opened
        uint64 steps; // training steps the result must claim
        uint64 checkpointInterval; // steps between checkpoints; divides `steps`
        uint64 minCredit; // bidders need at least this much credit (0 admits newcomers)
    }

    /// @notice A task as stored.
    struct Task {
        address submitter;
        TaskStatus status;
        FailureReason failure;
        uint32 openDisputes;
        address solver; // the winner, once assigned
        uint32 bidCount;
        uint64 commitDeadline; // commits strictly before
        uint64 revealDeadline; // reveals at or after commitDeadline and strictly before this
        uint64 trainingWindow;
        uint64 deliveryDeadline; // set at assignment; the result strictly before
        uint64 challengeWindow;
        uint64 challengeDeadline; // set with the result; disputes strictly before, finalize at or after
        uint64 steps;
        uint64 checkpointInterval;
        uint64 minCredit;
        uint64 progressCheckpoints; // latest progress commitment: number of checkpoints
        uint256 payment; // escrowed until the task settles
        uint256 requiredStake;
        uint256 bidBond;
        uint256 winningPrice; // the winner's revealed price
        uint256 agreedPrice; // second-price amount paid on completion (winningPrice <= agreedPrice <= payment)
        bytes32 specHash;
        bytes32 initialStateRoot; // S_0 as fixed at posting
        bytes32 opGraphRoot; // op graph root as fixed at posting
        bytes32 progressRoot; // latest progress commitment: trace root
        bytes32 traceRoot; // final result
        bytes32 finalStateRoot; // final result
        uint64 numSteps; // final result
        string specURI;
        string artifactURI; // final result
    }

    /// @notice One sealed bid.
    struct Bid {
        bytes32 commitment;
        uint256 price; // zero until revealed
        uint256 bond;
        BidStatus status;
    }

    /// @notice A solver's record, kept by the market. `credit` counts completed tasks since the last slash.
    struct SolverRecord {
        uint64 completed;
        uint64 slashed;
        uint64 credit;
        uint64 lastSlashedAt;
    }

    // ─────────────────────────────────────────────────────────────── errors

    /// @notice The zero address was given.
    error ZeroAddress();
    /// @notice Bonus parameters out of range: `maxBonusBps` must not exceed 10,000.
    error InvalidBonusParams(uint256 creditBonusBps, uint256 maxBonusBps);
    /// @notice A task needs a positive payment.
    error ZeroPayment();
    /// @notice A task needs a positive required stake.
    error ZeroStake();
    /// @notice Window `which` (0 bid, 1 reveal, 2 training, 3 challenge, 4 dispute timeout) of `value` seconds is outside [min, max].
    error InvalidWindow(uint8 which, uint256 value, uint256 min, uint256 max);
    /// @notice `steps` must be positive and a multiple of a positive `checkpointInterval`.
    error InvalidSteps(uint256 steps, uint256 checkpointInterval);
    /// @notice No task `taskId` exists.
    error UnknownTask(uint256 taskId);
    /// @notice Commits to `taskId` closed at `deadline`; it is `nowTs`.
    error CommitWindowClosed(uint256 taskId, uint256 deadline, uint256 nowTs);
    /// @notice Reveals to `taskId` are open in [`opensAt`, `closesAt`); it is `nowTs`.
    error RevealWindowNotOpen(uint256 taskId, uint256 opensAt, uint256 closesAt, uint256 nowTs);
    /// @notice The auction of `taskId` ends at `revealDeadline`; it is `nowTs`.
    error AuctionNotOver(uint256 taskId, uint256 revealDeadline, uint256 nowTs);
    /// @notice A bid on `taskId` needs a bond of exactly `required`; `sent` was sent.
    error WrongBidBond(uint256 taskId, uint256 sent, uint256 required);
    /// @notice `bidder` already bid on `taskId`.
    error BidAlreadyCommitted(uint256 taskId, address bidder);
    /// @notice `taskId` already has the maximum of `max` bids.
    error TooManyBids(uint256 taskId, uint256 max);
    /// @notice The submitter of `taskId` may not bid on it.
    error SubmitterCannotBid(uint256 taskId, address submitter);
    /// @notice `bidder` has `credit` credit; the task needs `minCredit`.
    error InsufficientCredit(address bidder, uint256 credit, uint256 minCredit);
    /// @notice `bidder` has `free` free stake; the task needs `required`.
    error StakeTooLow(address bidder, uint256 required, uint256 free);
    /// @notice `bidder` has no committed, unrevealed bid on `taskId`.
    error NoSealedBid(uint256 taskId, address bidder);
    /// @notice The revealed values hash to `actual`, not the committed `expected`.
    error CommitmentMismatch(uint256 taskId, address bidder, bytes32 expected, bytes32 actual);
    /// @notice A price must be positive and at most the payment `payment`; `price` was revealed.
    error InvalidPrice(uint256 taskId, uint256 price, uint256 payment);
    /// @notice Only the solver `solver` of `taskId` may do this; `caller` tried.
    error NotSolver(uint256 taskId, address caller, address solver);
    /// @notice Delivery for `taskId` closed at `deadline`; it is `nowTs`.
    error DeliveryDeadlinePassed(uint256 taskId, uint256 deadline, uint256 nowTs);
    /// @notice Delivery for `taskId` is open until `deadline`; it is `nowTs`.
    error DeliveryDeadlineNotPassed(uint256 taskId, uint256 deadline, uint256 nowTs);
    /// @notice Progress of `taskId` must grow: `given` checkpoints after `previous`, at most `max`.
    error InvalidCheckpointCount(uint256 taskId, uint256 given, uint256 previous, uint256 max);
    /// @notice The result of `taskId` claims `given` steps; the task has `expected`.
    error StepsMismatch(uint256 taskId, uint256 given, uint256 expected);
    /// @notice A trace or state root must not be zero.
    error ZeroRoot();
    /// @notice The challenge window of `taskId` is open until `deadline`; it is `nowTs`.
    error ChallengeWindowOpen(uint256 taskId, uint256 deadline, uint256 nowTs);
    /// @notice `taskId` still has `count` open disputes.
    error DisputesOpen(uint256 taskId, uint256 count);
    /// @notice `account` has nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    // ─────────────────────────────────────────────────────────────── events

    /// @notice `submitter` posted `taskId` with `payment` in escrow.
    event TaskPosted(
        uint256 indexed taskId,
        address indexed submitter,
        uint256 payment,
        uint256 requiredStake,
        bytes32 specHash,
        uint64 commitDeadline,
        uint64 revealDeadline
    );
    /// @notice `bidder` committed a sealed bid on `taskId`.
    event BidCommitted(uint256 indexed taskId, address indexed bidder, bytes32 commitment, uint256 bond);
    /// @notice `bidder` revealed `price` on `taskId`.
    event BidRevealed(uint256 indexed taskId, address indexed bidder, uint256 price);
    /// @notice The bond of `bidder` on `taskId` was credited back to it.
    event BidBondRefunded(uint256 indexed taskId, address indexed bidder, uint256 amount);
    /// @notice The bond of `bidder` on `taskId` was credited to the submitter.
    event BidBondForfeited(uint256 indexed taskId, address indexed bidder, uint256 amount);
    /// @notice `solver` won `taskId` with `price`; it is paid `agreedPrice` on completion.
    event TaskAssigned(
        uint256 indexed taskId, address indexed solver, uint256 price, uint256 agreedPrice, uint64 deliveryDeadline
    );
    /// @notice `taskId` had no valid bid; `refund` was credited to the submitter.
    event TaskCancelled(uint256 indexed taskId, uint256 refund);
    /// @notice The solver of `taskId` committed a trace root over `numCheckpoints` checkpoints.
    event ProgressCommitted(uint256 indexed taskId, bytes32 traceRoot, uint64 numCheckpoints);
    /// @notice The solver of `taskId` submitted its result; disputes may be opened until `challengeDeadline`.
    event ResultSubmitted(
        uint256 indexed taskId,
        bytes32 traceRoot,
        uint64 numSteps,
        bytes32 finalStateRoot,
        string artifactURI,
        uint64 challengeDeadline
    );
    /// @notice `taskId` completed: `paid` credited to `solver`, `refund` to the submitter.
    event TaskCompleted(uint256 indexed taskId, address indexed solver, uint256 paid, uint256 refund);
    /// @notice `taskId` failed for `reason`: `refund` credited to the submitter, `slashed` taken from the solver.
    event TaskFailed(uint256 indexed taskId, FailureReason reason, uint256 refund, uint256 slashed);
    /// @notice The record of `solver` changed.
    event SolverRecordUpdated(address indexed solver, uint64 completed, uint64 slashed, uint64 credit);
    /// @notice `account` withdrew `amount` of credited payments.
    event PaymentWithdrawn(address indexed account, uint256 amount);
    /// @notice `account` was authorised (`allowed`) or deauthorised as a dispute contract.
    event DisputeContractSet(address indexed account, bool allowed);

    // ─────────────────────────────────────────────────────────────── submitters

    /// @notice Posts a task with `msg.value` as the payment in escrow. The commit window opens now.
    /// @return taskId the new task's id (ids start at 1).
    function postTask(TaskParams calldata params) external payable returns (uint256 taskId);

    // ─────────────────────────────────────────────────────────────── bidders

    /// @notice Commits a sealed bid with the task's bid bond as `msg.value`. Needs the required stake
    ///         free in the StakeManager and enough credit.
    function commitBid(uint256 taskId, bytes32 commitment) external payable;

    /// @notice Reveals the caller's bid; needs the required stake free again.
    function revealBid(uint256 taskId, uint256 price, bytes32 salt) external;

    /// @notice After the reveal window, anyone closes the auction: bonds of unrevealed bids (and of
    ///         bidders whose stake is no longer free) go to the submitter, the others are refunded; the
    ///         best eligible bid wins and its stake is locked, or the task is cancelled and the escrow refunded.
    /// @return solver the winner, or the zero address if the task was cancelled.
    function closeAuction(uint256 taskId) external returns (address solver);

    // ─────────────────────────────────────────────────────────────── solver

    /// @notice The solver commits a trace root over `numCheckpoints` checkpoints (strictly growing).
    function commitProgress(uint256 taskId, bytes32 traceRoot, uint64 numCheckpoints) external;

    /// @notice The solver submits its result before the delivery deadline; the challenge window opens.
    function submitResult(
        uint256 taskId,
        bytes32 traceRoot,
        uint64 numSteps,
        bytes32 finalStateRoot,
        string calldata artifactURI
    ) external;

    // ─────────────────────────────────────────────────────────────── settlement (anyone)

    /// @notice After the challenge window with no dispute open: pays the solver the agreed price,
    ///         refunds the rest, unlocks the stake and adds a credit to the solver's record.
    function finalize(uint256 taskId) external;

    /// @notice After the delivery deadline without a result: slashes the solver's locked stake
    ///         (the submitter is the beneficiary), refunds the escrow and fails the task.
    function failUndelivered(uint256 taskId) external;

    /// @notice Closes a dispute its contract never resolved within `disputeTimeout` of opening.
    function expireDispute(uint256 disputeId) external;

    /// @notice Sends the caller everything credited to it (refunds, payouts, bonds).
    function withdrawPayments() external;

    // ─────────────────────────────────────────────────────────────── owner

    /// @notice Authorises or deauthorises a dispute contract. Only the owner.
    function setDisputeContract(address account, bool allowed) external;

    // ─────────────────────────────────────────────────────────────── views

    /// @notice Task `taskId` (all zero for an unknown id).
    function getTask(uint256 taskId) external view returns (Task memory);
    /// @notice Bid of `bidder` on `taskId`.
    function getBid(uint256 taskId, address bidder) external view returns (Bid memory);
    /// @notice Bidders of `taskId` in commit order.
    function biddersOf(uint256 taskId) external view returns (address[] memory);
    /// @notice Record of `solver`.
    function recordOf(address solver) external view returns (SolverRecord memory);
    /// @notice Payments credited to `account`, withdrawable with `withdrawPayments`.
    function paymentsOf(address account) external view returns (uint256);
    /// @notice Number of tasks posted (the last id).
    function taskCount() external view returns (uint256);
    /// @notice Number of disputes opened (the last id).
    function disputeCount() external view returns (uint256);
    /// @notice Sums of what the market holds (the solvency invariant's right side).
    function totals() external view returns (uint256 escrow, uint256 bonds, uint256 payable_);
    /// @notice The score `bidder` would have at `price` now (lower wins).
    function scoreOf(address bidder, uint256 price) external view returns (uint256);
    /// @notice The commitment a bidder submits for `price` and `salt`.
    function bidCommitment(uint256 taskId, address bidder, uint256 price, bytes32 salt) external pure returns (bytes32);
}
