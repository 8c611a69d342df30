// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IDisputeHook
/// @notice The narrow part of the task market a dispute game talks to. An authorised dispute contract
///         opens a dispute on a submitted result during its challenge window (which freezes finalize
///         while any dispute on the task is open) and later reports whether the solver lost.
///         The first dispute the solver loses slashes its locked stake once (the challenger named at
///         opening is the beneficiary), refunds the submitter's escrow and fails the task; every other
///         dispute on that task then only closes. Challenge bonds stay inside the dispute contract.
interface IDisputeHook {
    // ─────────────────────────────────────────────────────────────── types

    /// @notice Life cycle of a task. Zero means no such task.
    enum TaskStatus {
        None,
        Bidding, // posted: commit window, then reveal window, then the auction closes
        Assigned, // a solver won and locked its stake; training, progress commitments
        ResultSubmitted, // final result on chain; challenge window, disputes
        Completed, // finalized: solver paid, remainder refunded, stake unlocked
        Failed, // solver never delivered or lost a dispute: stake slashed, escrow refunded
        Cancelled // no valid bid: escrow refunded
    }

    /// @notice Life cycle of a dispute. Zero means no such dispute.
    enum DisputeStatus {
        None,
        Open, // payout of the task is frozen
        SolverWon, // closed, the solver kept its result
        SolverLost, // closed, the solver was slashed and the task failed
        Closed, // closed without effect: the task had already failed through another dispute
        Expired // closed by timeout because the dispute contract never reported
    }

    /// @notice What a dispute game needs to know about a task.
    struct DisputeContext {
        TaskStatus status;
        address submitter;
        address solver;
        bytes32 specHash; // hash of the task spec (model, data commitment, optimizer, seed, ...)
        bytes32 initialStateRoot; // S_0 fixed by the submitter: the left end of the trace
        bytes32 opGraphRoot; // root over the op descriptors of a training step (same for every step)
        bytes32 traceRoot; // root over the checkpoint states S_0, S_c, ..., S_N
        bytes32 finalStateRoot; // S_N as claimed
        uint64 numSteps; // training steps claimed (equals the task's steps)
        uint64 checkpointInterval; // steps between two checkpoints
        uint64 numCheckpoints; // leaves of the trace: numSteps / checkpointInterval + 1
        uint64 challengeDeadline; // disputes may be opened strictly before this time
        uint32 openDisputes; // disputes on the task still open
    }

    /// @notice A dispute as the market records it.
    struct Dispute {
        uint256 taskId;
        address disputeContract; // the contract that opened it and alone may resolve it
        address challenger; // beneficiary of the slash if the solver loses
        uint64 openedAt;
        DisputeStatus status;
    }

    // ─────────────────────────────────────────────────────────────── errors

    /// @notice The caller is not an authorised dispute contract.
    error NotDisputeContract(address caller);
    /// @notice Task `taskId` is in `actual` but `expected` was needed.
    error WrongTaskStatus(uint256 taskId, TaskStatus actual, TaskStatus expected);
    /// @notice The challenge window of `taskId` closed at `deadline`; it is `nowTs`.
    error ChallengeWindowClosed(uint256 taskId, uint256 deadline, uint256 nowTs);
    /// @notice No dispute `disputeId` exists.
    error UnknownDispute(uint256 disputeId);
    /// @notice Dispute `disputeId` is `status`, not open.
    error DisputeNotOpen(uint256 disputeId, DisputeStatus status);
    /// @notice Dispute `disputeId` was opened by `opener`; only it may resolve it.
    error NotDisputeOpener(uint256 disputeId, address opener, address caller);
    /// @notice The challenger must not be the zero address or the task's solver.
    error InvalidChallenger(address challenger);
    /// @notice Dispute `disputeId` may expire at `expiresAt`; it is `nowTs`.
    error DisputeNotExpired(uint256 disputeId, uint256 expiresAt, uint256 nowTs);

    // ─────────────────────────────────────────────────────────────── events

    /// @notice `disputeContract` opened dispute `disputeId` on `taskId` for `challenger`; `openDisputes` now open.
    event DisputeOpened(
        uint256 indexed disputeId,
        uint256 indexed taskId,
        address indexed disputeContract,
        address challenger,
        uint32 openDisputes
    );
    /// @notice Dispute `disputeId` on `taskId` closed with `status`; `openDisputes` still open.
    event DisputeResolved(uint256 indexed disputeId, uint256 indexed taskId, DisputeStatus status, uint32 openDisputes);

    // ─────────────────────────────────────────────────────────────── dispute contracts

    /// @notice Opens a dispute on the result of `taskId` for `challenger`. Only an authorised dispute
    ///         contract, only while the task is ResultSubmitted and before its challenge deadline.
    /// @return disputeId the market-wide id the dispute contract passes to `resolveDispute`.
    function openDispute(uint256 taskId, address challenger) external returns (uint256 disputeId);

    /// @notice Reports the outcome of an open dispute. Only the contract that opened it.
    ///         `solverLost` on a task not yet failed slashes the solver's locked stake (challenger as
    ///         beneficiary), refunds the escrow and fails the task; otherwise the dispute just closes.
    ///         An expired dispute accepts the report without effect, so a slow game can still settle its bonds.
    /// @return status the dispute's final status (SolverWon, SolverLost, Closed or Expired).
    function resolveDispute(uint256 disputeId, bool solverLost) external returns (DisputeStatus status);

    // ─────────────────────────────────────────────────────────────── views

    /// @notice Everything a dispute game checks about `taskId`.
    function disputeContext(uint256 taskId) external view returns (DisputeContext memory);
    /// @notice Dispute `disputeId` as recorded.
    function getDispute(uint256 disputeId) external view returns (Dispute memory);
    /// @notice Whether `account` is an authorised dispute contract.
    function isDisputeContract(address account) external view returns (bool);
}
