// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {MerkleLog} from "../merkle/MerkleLog.sol";
import {TensorCommit} from "../merkle/TensorCommit.sol";
import {Bisection} from "./Bisection.sol";

/// @title BisectionLinks
/// @notice The proofs that tie the ends of one level of the dispute game to the adjacent pair of the
///         level above (docs/DISPUTE.md, "What each link checks, exactly"). Pure functions: the game
///         passes what it has stored and what the solver sent, and gets a revert with the values
///         that did not match, or the leaves it may store.
library BisectionLinks {
    /// @notice `leaf` is leaf `position` of the `size`-leaf tree `root`.
    function requireLeaf(bytes32 root, bytes32 leaf, uint256 position, uint256 size, bytes32[] calldata proof)
        internal
        pure
    {
        if (!MerkleLog.verifyValue(root, leaf, position, size, proof)) {
            revert IDisputeGame.NotInTree(root, position, size, leaf);
        }
    }

    /// @notice Level 3's links: the step's layout is the task's (op count, S_t's size, S_t+1's
    ///         entries, the step-input table), its first leaf is the log of S_t's tensors followed by
    ///         row `step` of the input table (computed here), its last leaf the log of `size - 1` more
    ///         entries whose designated entries make S_t+1.
    /// @param opGraphRoot the task's commitment to the op graph and the step layout.
    /// @return first level 3's leaf 0, `opLeaf(first log root, firstLogSize)`.
    /// @return last level 3's last leaf, `opLeaf(lastLogRoot, lastLogSize)`.
    /// @return firstLogSize entries of the first log: `stateSize + inputIds.length`.
    function checkOps(
        IDisputeGame.OpsCommitment calldata c,
        bytes32 opGraphRoot,
        uint256 step,
        bytes32 stateT,
        bytes32 stateNext
    ) internal pure returns (bytes32 first, bytes32 last, uint256 firstLogSize) {
        // INVARIANT: a step has at least one op, so level 3 has at least two leaves.
        if (c.size < 2) revert IDisputeGame.SequenceTooShort(c.size, 2);
        checkLayout(c, opGraphRoot, step);
        // INVARIANT: the step's log starts with exactly S_t's tensors and row `step` of the input
        // table, in order: the first log's root is computed here, never taken from the solver.
        bytes32 firstRoot;
        (firstRoot, firstLogSize) = extendRoot(stateT, c.stateSize, c.stateBorder, c.inputIds);
        first = Bisection.opLeaf(firstRoot, firstLogSize);
        requireLeaf(c.root, first, 0, c.size, c.firstProof);
        // INVARIANT: every op appends exactly one entry, so the last log has size - 1 more entries.
        uint256 lastSize = firstLogSize + c.size - 1;
        if (c.lastLogSize != lastSize) revert IDisputeGame.LogSizeMismatch(lastSize, c.lastLogSize);
        last = Bisection.opLeaf(c.lastLogRoot, lastSize);
        requireLeaf(c.root, last, c.size - 1, c.size, c.lastProof);
        checkDesignated(c, stateNext);
    }

    /// @notice The op count, S_t's size, S_t+1's entries and the input table are the task's: they
    ///         hash, with the descriptors' root, to the opGraphRoot the submitter posted; and
    ///         `inputIds` is row `step` of the table.
    function checkLayout(IDisputeGame.OpsCommitment calldata c, bytes32 opGraphRoot, uint256 step) internal pure {
        bytes32 layoutHash =
            keccak256(abi.encode(uint256(c.size - 1), uint256(c.stateSize), c.designated, c.inputsRoot));
        bytes32 committed = Bisection.graphCommitment(c.graphRoot, layoutHash);
        if (committed != opGraphRoot) revert IDisputeGame.GraphMismatch(opGraphRoot, committed);
        // The leaf carries its step, so any tree size the solver names proves only the true row.
        bytes32 row = MerkleLog.hashLeaf(abi.encode(step, c.inputIds));
        if (!MerkleLog.verifyInclusion(c.inputsRoot, row, step, c.inputsRows, c.inputsProof)) {
            revert IDisputeGame.NotInTree(c.inputsRoot, step, c.inputsRows, row);
        }
    }

    /// @notice S_t+1 is the root over the designated entries of the last log, in order.
    function checkDesignated(IDisputeGame.OpsCommitment calldata c, bytes32 stateNext) internal pure {
        uint256 n = c.designated.length;
        if (n == 0 || c.designatedIds.length != n || c.designatedProofs.length != n) {
            revert IDisputeGame.BadDesignation(n, c.designatedIds.length, c.designatedProofs.length);
        }
        bytes32[] memory ids = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            requireLeaf(c.lastLogRoot, c.designatedIds[i], c.designated[i], c.lastLogSize, c.designatedProofs[i]);
            ids[i] = c.designatedIds[i];
        }
        bytes32 computed = Bisection.rootOfValues(ids);
        if (computed != stateNext) revert IDisputeGame.StateMismatch(stateNext, computed);
    }

    /// @notice The root of the tree `root` of `size` values with `values` appended, from the roots of
    ///         its complete subtrees (`border`, largest first: one per set bit of `size`).
    /// @dev RFC 9162's tree of n leaves is its complete subtrees of the sizes of n's set bits, largest
    ///      on the left, folded right to left; appending a leaf to a tree of n leaves merges it with
    ///      as many of the smallest subtrees as n has trailing one bits.
    /// @return newRoot the root after the append.
    /// @return newSize `size + values.length`.
    function extendRoot(bytes32 root, uint256 size, bytes32[] calldata border, bytes32[] calldata values)
        internal
        pure
        returns (bytes32 newRoot, uint256 newSize)
    {
        uint256 peaks;
        for (uint256 s = size; s != 0; s >>= 1) {
            peaks += s & 1;
        }
        // INVARIANT: the border has one node per complete subtree and folds to the agreed root.
        if (peaks == 0 || border.length != peaks) revert IDisputeGame.WrongBorderLength(border.length, peaks);
        bytes32[] memory stack = new bytes32[](peaks + values.length);
        for (uint256 i; i < peaks; ++i) {
            stack[i] = border[i];
        }
        bytes32 folded = _fold(stack, peaks);
        if (folded != root) revert IDisputeGame.BorderMismatch(root, folded);
        uint256 top = peaks;
        newSize = size;
        for (uint256 i; i < values.length; ++i) {
            bytes32 h = MerkleLog.hashLeaf(values[i]);
            for (uint256 s = newSize; s & 1 == 1; s >>= 1) {
                h = MerkleLog.hashNode(stack[--top], h);
            }
            stack[top++] = h;
            ++newSize;
        }
        newRoot = _fold(stack, top);
    }

    /// @dev The root over the first `n` complete-subtree roots of `stack` (n > 0), folded right to left.
    function _fold(bytes32[] memory stack, uint256 n) private pure returns (bytes32 r) {
        r = stack[n - 1];
        for (uint256 i = n - 1; i > 0; --i) {
            r = MerkleLog.hashNode(stack[i - 1], r);
        }
    }

    /// @notice A chunk of the disputed output, opened against the disputed log: the tensor at `entry`
    ///         has this dtype, shape and chunk root, and `chunk` is its chunk `chunkIndex` (or the
    ///         tensor has no such chunk and `chunk` is empty).
    /// @return count the tensor's number of chunks.
    function checkChunk(
        bytes32 logRoot,
        uint256 logSize,
        uint256 entry,
        uint256 chunkIndex,
        IDisputeGame.ChunkOpening calldata o
    ) internal pure returns (uint256 count) {
        // INVARIANT: the opened tensor is the disputed entry of the disputed log, with this header.
        requireLeaf(logRoot, o.tensorId, entry, logSize, o.idProof);
        bytes32 computed = TensorCommit.tensorId(o.dtype, o.shape, o.chunkRoot);
        if (computed != o.tensorId) revert IDisputeGame.TensorIdMismatch(o.tensorId, computed);
        count = TensorCommit.numChunks(o.dtype, o.shape);
        uint256 expected = 0; // past the last chunk: an empty opening
        if (chunkIndex < count) {
            uint256 total = TensorCommit.numel(o.shape) * TensorCommit.elementWidth(o.dtype);
            expected = total - chunkIndex * TensorCommit.CHUNK_BYTES; // chunkIndex < count: no underflow
            if (expected > TensorCommit.CHUNK_BYTES) expected = TensorCommit.CHUNK_BYTES;
        }
        // INVARIANT: the chunk has the length its index gives (none past the end), so its elements
        // are exactly the tensor's.
        if (o.chunk.length != expected) {
            revert IDisputeGame.ChunkLengthMismatch(chunkIndex, expected, o.chunk.length);
        }
        if (expected != 0) {
            bytes32 leaf = MerkleLog.hashLeaf(o.chunk);
            if (!MerkleLog.verifyInclusion(o.chunkRoot, leaf, chunkIndex, count, o.chunkProof)) {
                revert IDisputeGame.NotInTree(o.chunkRoot, chunkIndex, count, leaf);
            }
        }
    }

    /// @notice The opening of the disputed op: the two logs are the adjacent level 3 leaves and the
    ///         second extends the first by at least one entry.
    function checkOpOpening(
        bytes32 leafLo,
        bytes32 leafHi,
        bytes32 preRoot,
        uint256 preSize,
        bytes32 postRoot,
        uint256 postSize,
        bytes32[] calldata consistency
    ) internal pure {
        // INVARIANT: the opened roots and sizes are exactly the two adjacent level 3 leaves.
        bytes32 pre = Bisection.opLeaf(preRoot, preSize);
        if (pre != leafLo) revert IDisputeGame.LeafPreimageMismatch(leafLo, pre);
        bytes32 post = Bisection.opLeaf(postRoot, postSize);
        if (post != leafHi) revert IDisputeGame.LeafPreimageMismatch(leafHi, post);
        // INVARIANT: the op appends at least one output and rewrites no earlier entry, so the only
        // entries in dispute are its outputs [preSize, postSize).
        if (postSize <= preSize) revert IDisputeGame.EmptyOp(preSize, postSize);
        if (!MerkleLog.verifyConsistency(preSize, postSize, preRoot, postRoot, consistency)) {
            revert IDisputeGame.NotConsistent(preSize, postSize);
        }
    }

    /// @notice The named element does not exist: the tensor at the named entry of the disputed log
    ///         opens to a dtype and shape with no more than `flatIndex` elements.
    /// @return count the tensor's element count.
    function checkOutputAbsent(
        bytes32 logRoot,
        uint256 logSize,
        uint256 entry,
        uint256 flatIndex,
        bytes32 tensorId,
        bytes32[] calldata proof,
        uint8 dtype,
        uint32[] calldata shape,
        bytes32 chunkRoot
    ) internal pure returns (uint256 count) {
        // INVARIANT: the opened tensor is the named entry of the disputed log, with this dtype and shape.
        requireLeaf(logRoot, tensorId, entry, logSize, proof);
        bytes32 computed = TensorCommit.tensorId(dtype, shape, chunkRoot);
        if (computed != tensorId) revert IDisputeGame.TensorIdMismatch(tensorId, computed);
        count = TensorCommit.numel(shape);
        // INVARIANT: only an element that does not exist can be rejected.
        if (flatIndex < count) revert IDisputeGame.ElementExists(flatIndex, count);
    }
}
