// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDisputeHook} from "./IDisputeHook.sol";

/// @title IAvailabilityChallenge
/// @notice Data-availability challenges on a submitted result (docs/DISPUTE.md, "Availability
///         challenges"). A result commits checkpoint states by their roots only; the tensors behind
///         them live in the solver's artifact store. Anyone who cannot fetch them may, during the
///         challenge window and with a bond, demand a range of chunks of one tensor of one committed
///         checkpoint. That opens a dispute in the market (the task's payout is frozen) and starts a
///         response window. Anyone holding the data answers on chain with the chunks and their proofs
///         up to the task's trace root; the chunks are emitted in `ChunksAnswered`, so from then on
///         they are readable by every node of the chain. An answer is paid for its gas out of the bond
///         (at the block's base fee, times `refundBps`) and the rest of the bond goes back to the
///         challenger: availability costs an honest solver nothing and a challenger only the data it
///         asked for. A challenge nobody answers in time is lost by the solver: slashed as for a lost
///         dispute game, with the challenger as beneficiary, and the bond goes back to the challenger.
///
///         The challenger proves that the tensor it names exists (the task's op graph commitment opens
///         to a step layout with the state's tensor count); a chunk range past the end of the tensor is
///         answered with the chunks that exist (none, if it starts past the end) and the tensor's shape.
interface IAvailabilityChallenge {
    // ─────────────────────────────────────────────────────────────── types

    /// @notice Life cycle of a challenge. Zero means no such challenge.
    enum Status {
        None,
        Open, // the task's payout is frozen until it is answered or its response window ends
        Answered, // the chunks are on chain; the answer's gas was paid from the bond
        Unanswered // nobody answered in time: the solver was reported as having lost
    }

    /// @notice The step layout the challenger opens to show that tensor `tensor` exists: with the
    ///         op descriptors' root it hashes to the task's opGraphRoot (protocol/dispute/layout.py).
    struct StateLayout {
        bytes32 graphRoot; // root over the op descriptors of one step
        uint256 numOps; // ops of one step
        uint256 stateSize; // tensors of a training state
        uint64[] designated; // the last op log's entries holding S_t+1, in state order
        bytes32 inputsRoot; // root of the step-input table
    }

    /// @notice One challenge as stored.
    struct Challenge {
        uint64 taskId;
        uint64 disputeId; // the market's id of the dispute this challenge opened
        uint64 deadline; // answers strictly before, `claimUnanswered` at or after
        Status status;
        address challenger;
        address solver;
        uint32 checkpoint; // index of the checkpoint in the task's trace (0 = S_0, ..., n-1 = S_N)
        uint32 tensor; // position of the tensor in the checkpoint's state
        uint32 firstChunk; // first chunk asked for
        uint32 count; // chunks asked for, 1 .. MAX_CHUNKS
        uint32 stateSize; // tensors of a state, from the layout the challenger opened
        uint64 numCheckpoints; // size of the trace tree
        bytes32 traceRoot; // the result's trace root
        uint256 bond;
    }

    /// @notice What an answer carries: the checkpoint's state root in the trace, the tensor's id in
    ///         the state, the id's preimage (dtype, shape, chunk root) and the chunks with their paths.
    struct ChunkAnswer {
        bytes32 stateRoot; // root of checkpoint `checkpoint`
        bytes32[] traceProof; // its audit path in the trace root
        bytes32 tensorId; // id of tensor `tensor` of that state
        bytes32[] idProof; // its audit path in the state root
        uint8 dtype; // TensorCommit dtype code
        uint32[] shape;
        bytes32 chunkRoot; // root over the tensor's chunk leaves
        bytes[] chunks; // chunks firstChunk .. min(firstChunk + count, numChunks) - 1, in order
        bytes32[][] chunkProofs; // the audit path of each chunk in chunkRoot
    }

    // ─────────────────────────────────────────────────────────────── errors

    /// @notice Constructor parameter `which` (0 market, 1 response window, 2 refundBps) is invalid.
    error InvalidParameter(uint8 which, uint256 value);
    /// @notice A challenge needs a bond of exactly `required`; `sent` was sent.
    error WrongBond(uint256 sent, uint256 required);
    /// @notice Checkpoint `checkpoint` is not in a trace of `numCheckpoints` checkpoints.
    error CheckpointOutOfRange(uint256 checkpoint, uint256 numCheckpoints);
    /// @notice Tensor `tensor` is not in a state of `stateSize` tensors.
    error TensorOutOfRange(uint256 tensor, uint256 stateSize);
    /// @notice A challenge asks for 1 .. `max` chunks; `count` were asked for.
    error BadChunkCount(uint256 count, uint256 max);
    /// @notice A value does not fit the field it is stored in.
    error TooLarge(uint256 value, uint256 max);
    /// @notice The opened layout and graph root hash to `computed`, not the task's opGraphRoot `expected`.
    error GraphMismatch(bytes32 expected, bytes32 computed);
    /// @notice The layout's state size `stateSize` does not match its `designated` entries (`entries`).
    error LayoutMismatch(uint256 stateSize, uint256 entries);
    /// @notice No challenge `challengeId` exists.
    error UnknownChallenge(uint256 challengeId);
    /// @notice Challenge `challengeId` is `status`, not open.
    error NotOpen(uint256 challengeId, Status status);
    /// @notice Answers to `challengeId` closed at `deadline`; it is `nowTs`.
    error ResponseWindowClosed(uint256 challengeId, uint256 deadline, uint256 nowTs);
    /// @notice Challenge `challengeId` may be answered until `deadline`; it is `nowTs`.
    error ResponseWindowOpen(uint256 challengeId, uint256 deadline, uint256 nowTs);
    /// @notice The leaf hashing to `leafHash` at `position` does not open to `root` in a tree of `size` leaves.
    error NotInTree(bytes32 root, uint256 position, uint256 size, bytes32 leafHash);
    /// @notice The answer's dtype, shape and chunk root hash to `computed`, not the proven tensor id `expected`.
    error TensorIdMismatch(bytes32 expected, bytes32 computed);
    /// @notice The answer has `chunks` chunks and `proofs` paths; `expected` chunks exist in the range.
    error ChunkCountMismatch(uint256 expected, uint256 chunks, uint256 proofs);
    /// @notice Chunk `chunkIndex` must be `expected` bytes long; it is `length`.
    error ChunkLengthMismatch(uint256 chunkIndex, uint256 expected, uint256 length);
    /// @notice `account` has nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    // ─────────────────────────────────────────────────────────────── events

    /// @notice `challenger` demands chunks [firstChunk, firstChunk + count) of tensor `tensor` of
    ///         checkpoint `checkpoint` of `taskId`'s result, answerable until `deadline`.
    event AvailabilityChallenged(
        uint256 indexed challengeId,
        uint256 indexed taskId,
        address indexed challenger,
        address solver,
        uint256 disputeId,
        uint32 checkpoint,
        uint32 tensor,
        uint32 firstChunk,
        uint32 count,
        uint64 deadline,
        uint256 bond
    );
    /// @notice `answerer` answered `challengeId`: the chunks from `firstChunk` on of the tensor
    ///         (`tensorId`, `dtype`, `shape`) of checkpoint state `stateRoot`; `refund` of the bond went
    ///         to the answerer, `returned` back to the challenger. The market closed the dispute as
    ///         SolverWon (or Closed/Expired if the task had already ended: see its DisputeResolved).
    event ChunksAnswered(
        uint256 indexed challengeId,
        address indexed answerer,
        bytes32 stateRoot,
        bytes32 tensorId,
        uint8 dtype,
        uint32[] shape,
        uint32 firstChunk,
        bytes[] chunks,
        uint256 refund,
        uint256 returned
    );
    /// @notice Nobody answered `challengeId` in time; the bond went back to the challenger; the market
    ///         answered `disputeStatus` (SolverLost, or Closed/Expired if the task had already ended).
    event ChallengeUnanswered(uint256 indexed challengeId, uint256 indexed taskId, IDisputeHook.DisputeStatus disputeStatus);
    /// @notice `account` withdrew `amount` of credited bonds and refunds.
    event Withdrawn(address indexed account, uint256 amount);

    // ─────────────────────────────────────────────────────────────── functions

    /// @notice Demands chunks [firstChunk, firstChunk + count) of tensor `tensor` of checkpoint
    ///         `checkpoint` of `taskId`'s result, with the bond as `msg.value`. The market checks the
    ///         task's status, the challenge window and that the caller is not the solver.
    /// @return challengeId the new challenge's id (ids start at 1).
    function challenge(
        uint256 taskId,
        uint256 checkpoint,
        uint256 tensor,
        uint256 firstChunk,
        uint256 count,
        StateLayout calldata stateLayout
    ) external payable returns (uint256 challengeId);

    /// @notice Answers an open challenge before its deadline. Anyone may answer; the answerer is
    ///         paid its gas from the bond.
    function answer(uint256 challengeId, ChunkAnswer calldata a) external;

    /// @notice After the deadline of an unanswered challenge, anyone reports the solver as having lost.
    function claimUnanswered(uint256 challengeId) external;

    /// @notice Sends the caller everything credited to it.
    function withdraw() external;

    // ─────────────────────────────────────────────────────────────── views

    /// @notice The task market.
    function market() external view returns (IDisputeHook);
    /// @notice Wei a challenger posts.
    function bond() external view returns (uint256);
    /// @notice Seconds an answer has from the challenge.
    function responseWindow() external view returns (uint64);
    /// @notice Share of an answer's gas cost (at the base fee) paid from the bond, in basis points.
    function refundBps() external view returns (uint256);
    /// @notice Number of challenges opened (the last id).
    function challengeCount() external view returns (uint256);
    /// @notice Challenge `challengeId` (all zero for an unknown id).
    function getChallenge(uint256 challengeId) external view returns (Challenge memory);
    /// @notice Credited and not yet withdrawn.
    function creditOf(address account) external view returns (uint256);
}
