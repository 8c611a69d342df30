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

    /// @notice Level 3's links: its first leaf is the log that starts with S_t's tensors, its last
    ///         leaf the log whose designated entries make S_t+1.
    /// @return first level 3's leaf 0, `opLeaf(firstLogRoot, firstLogSize)`.
    /// @return last level 3's last leaf, `opLeaf(lastLogRoot, lastLogSize)`.
    function checkOps(IDisputeGame.OpsCommitment calldata c, bytes32 stateT, bytes32 stateNext)
        internal
        pure
        returns (bytes32 first, bytes32 last)
    {
        // INVARIANT: a step has at least one op, so level 3 has at least two leaves.
        if (c.size < 2) revert IDisputeGame.SequenceTooShort(c.size, 2);
        first = Bisection.opLeaf(c.firstLogRoot, c.firstLogSize);
        last = Bisection.opLeaf(c.lastLogRoot, c.lastLogSize);
        requireLeaf(c.root, first, 0, c.size, c.firstProof);
        requireLeaf(c.root, last, c.size - 1, c.size, c.lastProof);
        // INVARIANT: the step's log starts with S_t's tensors: S_t is the root of the first log's
        // prefix of `stateSize` entries (a consistency proof; domain-separated hashing binds the size).
        if (
            c.stateSize == 0
                || !MerkleLog.verifyConsistency(c.stateSize, c.firstLogSize, stateT, c.firstLogRoot, c.stateConsistency)
        ) revert IDisputeGame.NotConsistent(c.stateSize, c.firstLogSize);
        // INVARIANT: S_t+1 is the root over the designated entries of the last log, in order.
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
