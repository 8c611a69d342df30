// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IAvailabilityChallenge} from "./interfaces/IAvailabilityChallenge.sol";
import {IDisputeHook} from "./interfaces/IDisputeHook.sol";
import {Bisection} from "./libraries/Bisection.sol";
import {MerkleLog} from "./merkle/MerkleLog.sol";
import {TensorCommit} from "./merkle/TensorCommit.sol";

/// @title AvailabilityChallenge
/// @notice Makes a result's checkpoints retrievable: a challenger demands chunks of one committed
///         tensor; an answer puts them on chain, no answer in time slashes the solver. See
///         IAvailabilityChallenge and docs/DISPUTE.md ("Availability challenges").
/// @dev Money: `address(this).balance == totalBonds + totalCredits` at all times. A bond enters with
///      `challenge`, is split between the answerer's refund and the challenger (or returned whole to the
///      challenger when nobody answers) when the challenge ends, and leaves with `withdraw`.
contract AvailabilityChallenge is IAvailabilityChallenge, ReentrancyGuard {
    /// @inheritdoc IAvailabilityChallenge
    IDisputeHook public immutable market;
    /// @inheritdoc IAvailabilityChallenge
    uint256 public immutable bond;
    /// @inheritdoc IAvailabilityChallenge
    uint64 public immutable responseWindow;
    /// @inheritdoc IAvailabilityChallenge
    uint256 public immutable refundBps;

    /// @notice Most chunks one challenge may ask for (8 KiB of float32 data; an answer of 32 chunks
    ///         executes in ~0.39M gas and, with its 20 KB of calldata, costs ~0.7M).
    uint256 public constant MAX_CHUNKS = 32;
    /// @notice Gas of an answer that `gasleft()` cannot see, besides the answerer's credit, its calldata
    ///         and the event's data (added by `_payAnswer`): the transaction's base cost (21,000) and
    ///         what follows the measurement (the event's fixed part, copying the chunks to memory for
    ///         it, returning). Calibrated in contracts/test/dispute/AvailabilityGas.t.sol and
    ///         benchmarks/availability_cost.py.
    uint256 public constant ANSWER_OVERHEAD_GAS = 21_000 + 3_000;

    /// @inheritdoc IAvailabilityChallenge
    uint256 public challengeCount;

    mapping(uint256 challengeId => Challenge) internal _challenges;
    mapping(address account => uint256) internal _credits;

    uint256 public totalBonds;
    uint256 public totalCredits;

    /// @param market_ the task market (this contract must be authorised there as a dispute contract).
    /// @param bond_ wei a challenger posts; it must cover the gas of an answer of MAX_CHUNKS chunks
    ///        at the base fees expected, or an answerer is paid less than its cost.
    /// @param responseWindow_ seconds an answer has; keep it below the market's dispute timeout.
    /// @param refundBps_ share of an answer's gas cost paid from the bond (10,000 = all of it).
    constructor(IDisputeHook market_, uint256 bond_, uint64 responseWindow_, uint256 refundBps_) {
        if (address(market_) == address(0)) revert InvalidParameter(0, 0);
        if (responseWindow_ == 0) revert InvalidParameter(1, responseWindow_);
        if (refundBps_ > 10_000) revert InvalidParameter(2, refundBps_);
        market = market_;
        bond = bond_;
        responseWindow = responseWindow_;
        refundBps = refundBps_;
    }

    // ─────────────────────────────────────────────────────────────── challenger

    /// @inheritdoc IAvailabilityChallenge
    function challenge(
        uint256 taskId,
        uint256 checkpoint,
        uint256 tensor,
        uint256 firstChunk,
        uint256 count,
        StateLayout calldata stateLayout
    ) external payable returns (uint256 challengeId) {
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        if (count == 0 || count > MAX_CHUNKS) revert BadChunkCount(count, MAX_CHUNKS);
        if (firstChunk > type(uint32).max - MAX_CHUNKS) revert TooLarge(firstChunk, type(uint32).max - MAX_CHUNKS);
        IDisputeHook.DisputeContext memory ctx = market.disputeContext(taskId);
        if (checkpoint >= ctx.numCheckpoints) revert CheckpointOutOfRange(checkpoint, ctx.numCheckpoints);
        uint256 stateSize = _stateSize(ctx.opGraphRoot, stateLayout);
        if (tensor >= stateSize) revert TensorOutOfRange(tensor, stateSize);
        // The market checks the task's status, the challenge window and that the challenger is not
        // the solver; it reverts otherwise.
        uint256 disputeId = market.openDispute(taskId, msg.sender);
        challengeId = ++challengeCount;
        Challenge storage c = _challenges[challengeId];
        // forge-lint: disable-start(unsafe-typecast) -- each bound is stated on its line
        c.taskId = uint64(taskId); // the market's ids are counters far below 2^64
        c.disputeId = uint64(disputeId); // likewise
        c.deadline = uint64(block.timestamp) + responseWindow;
        c.status = Status.Open;
        c.challenger = msg.sender;
        c.solver = ctx.solver;
        c.checkpoint = uint32(checkpoint); // < numCheckpoints, a uint64 of steps / interval + 1
        c.tensor = uint32(tensor); // < stateSize
        c.firstChunk = uint32(firstChunk); // checked above
        c.count = uint32(count); // <= MAX_CHUNKS
        c.stateSize = uint32(stateSize); // _stateSize bounds it to 32 bits
        // forge-lint: disable-end(unsafe-typecast)
        c.numCheckpoints = ctx.numCheckpoints;
        c.traceRoot = ctx.traceRoot;
        c.bond = msg.value;
        totalBonds += msg.value;
        emit AvailabilityChallenged(
            challengeId,
            taskId,
            msg.sender,
            ctx.solver,
            disputeId,
            c.checkpoint,
            c.tensor,
            c.firstChunk,
            c.count,
            c.deadline,
            msg.value
        );
    }

    /// @notice The state's tensor count, from the layout the challenger opened against the task's op
    ///         graph commitment (the same preimage `DisputeGame.commitOps` checks).
    function _stateSize(bytes32 opGraphRoot, StateLayout calldata l) internal pure returns (uint256) {
        if (l.designated.length != l.stateSize) revert LayoutMismatch(l.stateSize, l.designated.length);
        if (l.stateSize > type(uint32).max) revert TooLarge(l.stateSize, type(uint32).max);
        bytes32 layoutHash = keccak256(abi.encode(l.numOps, l.stateSize, l.designated, l.inputsRoot));
        bytes32 computed = Bisection.graphCommitment(l.graphRoot, layoutHash);
        if (computed != opGraphRoot) revert GraphMismatch(opGraphRoot, computed);
        return l.stateSize;
    }

    // ─────────────────────────────────────────────────────────────── answerer

    /// @inheritdoc IAvailabilityChallenge
    function answer(uint256 challengeId, ChunkAnswer calldata a) external {
        uint256 gasStart = gasleft();
        Challenge storage c = _requireOpen(challengeId);
        if (block.timestamp >= c.deadline) revert ResponseWindowClosed(challengeId, c.deadline, block.timestamp);
        _requireLeaf(c.traceRoot, a.stateRoot, c.checkpoint, c.numCheckpoints, a.traceProof);
        _requireLeaf(a.stateRoot, a.tensorId, c.tensor, c.stateSize, a.idProof);
        bytes32 computed = TensorCommit.tensorId(a.dtype, a.shape, a.chunkRoot);
        if (computed != a.tensorId) revert TensorIdMismatch(a.tensorId, computed);
        uint256 dataBytes = _checkChunks(c, a);

        c.status = Status.Answered; // before the market call: nothing can answer or claim twice
        totalBonds -= c.bond;
        // The bond is split the same way whatever the market answers (SolverWon, or Closed/Expired when
        // the task already ended): the data is on chain either way.
        // slither-disable-next-line unused-return
        market.resolveDispute(c.disputeId, false);
        (uint256 refund, uint256 returned) = _payAnswer(c, gasStart, dataBytes, _canonicalLength(a));
        _emitAnswered(challengeId, c.firstChunk, a, refund, returned);
    }

    function _emitAnswered(uint256 challengeId, uint32 firstChunk, ChunkAnswer calldata a, uint256 refund, uint256 returned)
        internal
    {
        uint32[] memory shape = a.shape; // in memory: the event's arguments do not fit the stack otherwise
        bytes[] memory chunks = a.chunks;
        emit ChunksAnswered(
            challengeId, msg.sender, a.stateRoot, a.tensorId, a.dtype, shape, firstChunk, chunks, refund, returned
        );
    }

    /// @notice Splits the bond of an answered challenge: the answer's gas cost to the answerer, the
    ///         rest to the challenger. The whole bond is credited to the challenger first, so that the
    ///         storage writes of the credits are measured by `gasleft()` like the rest of the answer;
    ///         what it cannot see is added: the transaction's base cost and the event's fixed part
    ///         (`ANSWER_OVERHEAD_GAS`), the answerer's credit (20,000 gas if it held none, else 2,900),
    ///         its calldata at 16 gas a byte and the event's data at 8 a byte. The cost is priced at
    ///         the block's base fee: a priority fee is the answerer's own choice and is not refunded.
    ///         Calldata counts at most the standard encoding's length: the decoder ignores bytes past
    ///         it, and padding must not buy a larger share of the bond.
    function _payAnswer(Challenge storage c, uint256 gasStart, uint256 dataBytes, uint256 canonicalBytes)
        internal
        returns (uint256 refund, uint256 returned)
    {
        address challenger = c.challenger;
        uint256 amount = c.bond;
        _credit(challenger, amount);
        uint256 prior = _credits[msg.sender]; // read now: the write below then costs what is added for it
        uint256 callBytes = msg.data.length < canonicalBytes ? msg.data.length : canonicalBytes;
        uint256 unseen = ANSWER_OVERHEAD_GAS + (prior == 0 ? 20_000 : 2_900) + 16 * callBytes + 8 * dataBytes;
        uint256 used = gasStart - gasleft() + unseen;
        refund = used * block.basefee * refundBps / 10_000;
        if (refund > amount) refund = amount;
        returned = amount - refund;
        if (refund > 0) {
            // The credits' total is unchanged: the refund moves from the challenger to the answerer.
            _credits[challenger] -= refund;
            _credits[msg.sender] += refund;
        }
    }

    /// @notice Bytes of the standard ABI encoding of `answer(challengeId, a)`: the selector, the id and
    ///         the struct's offset, the struct's nine head words, then each dynamic member (a length
    ///         word and its words; arrays of dynamic items add an offset word and a length word per item,
    ///         bytes padded to whole words).
    function _canonicalLength(ChunkAnswer calldata a) internal pure returns (uint256 n) {
        n = 4 + 32 + 32 + 9 * 32;
        n += 32 + 32 * a.traceProof.length;
        n += 32 + 32 * a.idProof.length;
        n += 32 + 32 * a.shape.length;
        n += 32 + 64 * a.chunks.length;
        for (uint256 i; i < a.chunks.length; ++i) {
            n += (a.chunks[i].length + 31) / 32 * 32;
        }
        n += 32 + 64 * a.chunkProofs.length;
        for (uint256 i; i < a.chunkProofs.length; ++i) {
            n += 32 * a.chunkProofs[i].length;
        }
    }

    /// @notice Each chunk of the asked range that exists, of its exact length, opens to the chunk
    ///         root; returns the bytes of data answered.
    function _checkChunks(Challenge storage c, ChunkAnswer calldata a) internal view returns (uint256 dataBytes) {
        uint256 totalBytes = TensorCommit.numel(a.shape) * TensorCommit.elementWidth(a.dtype);
        uint256 nChunks = (totalBytes + TensorCommit.CHUNK_BYTES - 1) / TensorCommit.CHUNK_BYTES;
        uint256 first = c.firstChunk;
        uint256 end = first + c.count;
        if (end > nChunks) end = nChunks;
        uint256 expected = end > first ? end - first : 0;
        if (a.chunks.length != expected || a.chunkProofs.length != expected) {
            revert ChunkCountMismatch(expected, a.chunks.length, a.chunkProofs.length);
        }
        for (uint256 i; i < expected; ++i) {
            dataBytes += _checkChunk(a.chunkRoot, first + i, totalBytes, a.chunks[i], a.chunkProofs[i]);
        }
    }

    /// @notice Chunk `index` of a tensor of `totalBytes` bytes (index below its chunk count) has its
    ///         exact length and opens to `chunkRoot`; returns its length.
    function _checkChunk(
        bytes32 chunkRoot,
        uint256 index,
        uint256 totalBytes,
        bytes calldata chunk,
        bytes32[] calldata path
    ) internal pure returns (uint256 len) {
        // INVARIANT: index < chunk count, so index * CHUNK_BYTES < totalBytes.
        len = totalBytes - index * TensorCommit.CHUNK_BYTES;
        if (len > TensorCommit.CHUNK_BYTES) len = TensorCommit.CHUNK_BYTES;
        if (chunk.length != len) revert ChunkLengthMismatch(index, len, chunk.length);
        uint256 nChunks = (totalBytes + TensorCommit.CHUNK_BYTES - 1) / TensorCommit.CHUNK_BYTES;
        _requireLeafHash(chunkRoot, MerkleLog.hashLeaf(chunk), index, nChunks, path);
    }

    /// @inheritdoc IAvailabilityChallenge
    function claimUnanswered(uint256 challengeId) external {
        Challenge storage c = _requireOpen(challengeId);
        if (block.timestamp < c.deadline) revert ResponseWindowOpen(challengeId, c.deadline, block.timestamp);
        c.status = Status.Unanswered;
        totalBonds -= c.bond;
        IDisputeHook.DisputeStatus ds = market.resolveDispute(c.disputeId, true);
        _credit(c.challenger, c.bond);
        emit ChallengeUnanswered(challengeId, c.taskId, ds);
    }

    /// @inheritdoc IAvailabilityChallenge
    function withdraw() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ─────────────────────────────────────────────────────────────── views

    /// @inheritdoc IAvailabilityChallenge
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IAvailabilityChallenge
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    // ─────────────────────────────────────────────────────────────── internals

    function _requireOpen(uint256 challengeId) internal view returns (Challenge storage c) {
        c = _challenges[challengeId];
        if (c.status == Status.None) revert UnknownChallenge(challengeId);
        if (c.status != Status.Open) revert NotOpen(challengeId, c.status);
    }

    /// @notice A 32-byte value (a state root, a tensor id) is leaf `position` of `root`.
    function _requireLeaf(bytes32 root, bytes32 value, uint256 position, uint256 size, bytes32[] calldata path)
        internal
        pure
    {
        _requireLeafHash(root, MerkleLog.hashLeaf(value), position, size, path);
    }

    function _requireLeafHash(bytes32 root, bytes32 leafHash, uint256 position, uint256 size, bytes32[] calldata path)
        internal
        pure
    {
        if (!MerkleLog.verifyInclusion(root, leafHash, position, size, path)) {
            revert NotInTree(root, position, size, leafHash);
        }
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        _credits[account] += amount;
        totalCredits += amount;
    }
}
