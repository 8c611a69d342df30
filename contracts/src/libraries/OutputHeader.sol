// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {MerkleLog} from "../merkle/MerkleLog.sol";
import {TensorCommit} from "../merkle/TensorCommit.sol";
import {BisectionLinks} from "./BisectionLinks.sol";

/// @title OutputHeader
/// @notice The `rejectHeader` check of the dispute game: the disputed op's descriptor, proven against
///         the graph root, against the solver's output header, proven against the disputed log
///         (docs/DISPUTE.md, "Wrong header"). The game reads nothing else of a descriptor: this reads
///         only its `index`, `outShape` and `output` words, in place (OpDescriptor.sol has the layout).
library OutputHeader {
    /// @notice The dtype every op of a graph writes: ops compute in binary32 and the verifier reads
    ///         every output as float32 (integer tensors of a log are only batch inputs).
    uint8 internal constant OUTPUT_DTYPE = TensorCommit.DTYPE_FLOAT32;

    /// @dev Head words of the descriptor's ABI encoding (OpDescriptor.sol).
    uint256 private constant _INDEX_AT = 0;
    uint256 private constant _OUT_SHAPE_AT = 6 * 32;
    uint256 private constant _OUTPUT_AT = 7 * 32;

    /// @notice Checks the opening and returns the descriptor's output shape, or reverts
    ///         `HeaderMatches` when the solver's output has the descriptor's dtype and shape.
    /// @param graphRoot the root over the op descriptors (the game's after `commitOps`).
    /// @param opIndex the disputed op's index in the graph (level 3's leaf j is the log after op j - 1).
    /// @param logRoot the disputed log (after the op).
    /// @param logSize its size.
    /// @param entry the disputed op's output entry (the one entry it appended).
    function check(
        bytes32 graphRoot,
        uint256 opIndex,
        bytes32 logRoot,
        uint256 logSize,
        uint256 entry,
        IDisputeGame.HeaderOpening calldata h
    ) internal pure returns (uint32[] memory outShape) {
        bytes calldata d = h.descriptor;
        // INVARIANT: the descriptor is the graph's leaf of the disputed op, and that op writes the
        // disputed entry. The index inside the leaf binds its position, so any tree size proves only it.
        uint256 index = _word(d, _INDEX_AT);
        uint256 output = _word(d, _OUTPUT_AT);
        if (index != opIndex || output != entry) revert IDisputeGame.DescriptorMismatch(opIndex, index, entry, output);
        bytes32 leaf = MerkleLog.hashLeaf(d);
        if (!MerkleLog.verifyInclusion(graphRoot, leaf, index, h.graphSize, h.graphProof)) {
            revert IDisputeGame.NotInTree(graphRoot, index, h.graphSize, leaf);
        }
        outShape = _shape(d, _word(d, _OUT_SHAPE_AT));
        // INVARIANT: the header is the solver's output's: its id is at the disputed entry of the
        // disputed log and hashes from this dtype, shape and chunk root.
        BisectionLinks.requireLeaf(logRoot, h.tensorId, entry, logSize, h.idProof);
        bytes32 computed = TensorCommit.tensorId(h.dtype, h.shape, h.chunkRoot);
        if (computed != h.tensorId) revert IDisputeGame.TensorIdMismatch(h.tensorId, computed);
        // INVARIANT: only an output whose dtype or shape differs from the descriptor's is rejected.
        if (h.dtype == OUTPUT_DTYPE && _equal(h.shape, outShape)) {
            revert IDisputeGame.HeaderMatches(opIndex, h.dtype, h.shape);
        }
    }

    /// @dev The 32-byte word at byte `at` of `d`.
    function _word(bytes calldata d, uint256 at) private pure returns (uint256) {
        if (at > d.length || d.length - at < 32) revert IDisputeGame.BadDescriptorWord(d.length, at);
        return uint256(bytes32(d[at:at + 32]));
    }

    /// @dev The uint32[] encoded at byte `at` of `d` (its length word, then one word per element).
    function _shape(bytes calldata d, uint256 at) private pure returns (uint32[] memory shape) {
        uint256 n = _word(d, at);
        // INVARIANT: every element word lies inside the encoding (this also bounds n).
        if (n > (d.length - at - 32) / 32) revert IDisputeGame.BadDescriptorWord(d.length, at);
        shape = new uint32[](n);
        for (uint256 i; i < n; ++i) {
            uint256 v = _word(d, at + 32 * (i + 1));
            if (v > type(uint32).max) revert IDisputeGame.BadDescriptorWord(d.length, at + 32 * (i + 1));
            // forge-lint: disable-next-line(unsafe-typecast) -- checked just above
            shape[i] = uint32(v);
        }
    }

    function _equal(uint32[] calldata a, uint32[] memory b) private pure returns (bool) {
        if (a.length != b.length) return false;
        for (uint256 i; i < a.length; ++i) {
            if (a[i] != b[i]) return false;
        }
        return true;
    }
}
