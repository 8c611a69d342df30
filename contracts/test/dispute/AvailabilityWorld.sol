// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleBuilder} from "./MerkleBuilder.sol";
import {IAvailabilityChallenge} from "../../src/interfaces/IAvailabilityChallenge.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";

/// @notice A result whose checkpoints hold three real tensors each: a float32 vector of 150 (600
///         bytes: chunks of 256, 256 and 88 bytes), an int64 scalar and an int32 2x3 matrix, their
///         bytes a function of the checkpoint. Trace, states and tensor ids are built the way the
///         protocol commits them (docs/COMMITMENTS.md), and honest answers to any demand from them.
abstract contract AvailabilityWorld {
    uint256 internal constant N_CP = 11; // a trace of 11 checkpoints (1,000 steps, every 100)
    uint256 internal constant STATE_SIZE = 3;
    bytes32 internal constant GRAPH = keccak256("graph");
    bytes32 internal constant INPUTS = keccak256("inputs");

    function _dtype(uint256 j) internal pure returns (uint8) {
        if (j == 0) return TensorCommit.DTYPE_FLOAT32;
        if (j == 1) return TensorCommit.DTYPE_INT64;
        return TensorCommit.DTYPE_INT32;
    }

    function _shapeOf(uint256 j) internal pure returns (uint32[] memory s) {
        if (j == 0) {
            s = new uint32[](1);
            s[0] = 150;
        } else if (j == 1) {
            s = new uint32[](0);
        } else {
            s = new uint32[](2);
            s[0] = 2;
            s[1] = 3;
        }
    }

    /// @dev Bytes of tensor `j` at checkpoint `c`.
    function _bytes(uint256 c, uint256 j) internal pure returns (bytes memory b) {
        uint256 n = TensorCommit.numel(_shapeOf(j)) * TensorCommit.elementWidth(_dtype(j));
        b = new bytes(n);
        for (uint256 i; i < n; ++i) {
            b[i] = bytes1(uint8(uint256(keccak256(abi.encode(c, j, i / 32))) >> (8 * (i % 32))));
        }
    }

    function _chunks(uint256 c, uint256 j) internal pure returns (bytes[] memory chunks) {
        bytes memory b = _bytes(c, j);
        uint256 n = (b.length + 255) / 256;
        chunks = new bytes[](n);
        for (uint256 k; k < n; ++k) {
            uint256 len = b.length - 256 * k < 256 ? b.length - 256 * k : 256;
            chunks[k] = new bytes(len);
            for (uint256 i; i < len; ++i) {
                chunks[k][i] = b[256 * k + i];
            }
        }
    }

    function _chunkLeaves(uint256 c, uint256 j) internal pure returns (bytes32[] memory h) {
        bytes[] memory chunks = _chunks(c, j);
        h = new bytes32[](chunks.length);
        for (uint256 k; k < chunks.length; ++k) {
            h[k] = MerkleLog.hashLeaf(chunks[k]);
        }
    }

    function _ids(uint256 c) internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](STATE_SIZE);
        for (uint256 j; j < STATE_SIZE; ++j) {
            ids[j] = TensorCommit.tensorId(_dtype(j), _shapeOf(j), MerkleBuilder.rootOfHashes(_chunkLeaves(c, j)));
        }
    }

    function _states() internal pure returns (bytes32[] memory s) {
        s = new bytes32[](N_CP);
        for (uint256 c; c < N_CP; ++c) {
            s[c] = MerkleBuilder.root(_ids(c));
        }
    }

    function _layout() internal pure returns (IAvailabilityChallenge.StateLayout memory l) {
        l.graphRoot = GRAPH;
        l.numOps = 5;
        l.stateSize = STATE_SIZE;
        l.designated = new uint64[](STATE_SIZE);
        l.designated[0] = 7;
        l.designated[1] = 1;
        l.designated[2] = 6;
        l.inputsRoot = INPUTS;
    }

    function _opGraphRoot() internal pure returns (bytes32) {
        IAvailabilityChallenge.StateLayout memory l = _layout();
        return Bisection.graphCommitment(
            l.graphRoot, keccak256(abi.encode(l.numOps, l.stateSize, l.designated, l.inputsRoot))
        );
    }

    /// @dev The honest answer to a demand for chunks [first, first + count) of tensor j of checkpoint c.
    function _answer(uint256 c, uint256 j, uint256 first, uint256 count)
        internal
        pure
        returns (IAvailabilityChallenge.ChunkAnswer memory)
    {
        return _answerFrom(_states(), _ids(c), c, j, first, count);
    }

    /// @dev As `_answer`, with the trace's state roots and checkpoint c's tensor ids already computed.
    function _answerFrom(
        bytes32[] memory states,
        bytes32[] memory ids,
        uint256 c,
        uint256 j,
        uint256 first,
        uint256 count
    ) internal pure returns (IAvailabilityChallenge.ChunkAnswer memory a) {
        bytes[] memory all = _chunks(c, j);
        bytes32[] memory leaves = _chunkLeaves(c, j);
        a.stateRoot = states[c];
        a.traceProof = MerkleBuilder.proof(states, c);
        a.tensorId = ids[j];
        a.idProof = MerkleBuilder.proof(ids, j);
        a.dtype = _dtype(j);
        a.shape = _shapeOf(j);
        a.chunkRoot = MerkleBuilder.rootOfHashes(leaves);
        uint256 end = first + count < all.length ? first + count : all.length;
        uint256 n = end > first ? end - first : 0;
        a.chunks = new bytes[](n);
        a.chunkProofs = new bytes32[][](n);
        for (uint256 i; i < n; ++i) {
            a.chunks[i] = all[first + i];
            a.chunkProofs[i] = MerkleBuilder.proofOfHashes(leaves, first + i);
        }
    }
}
