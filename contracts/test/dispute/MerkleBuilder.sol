// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleLog} from "../../src/merkle/MerkleLog.sol";

/// @title MerkleBuilder
/// @notice RFC 9162 trees built the way the specification defines them (recursive MTH, PATH and
///         SUBPROOF), for the dispute tests' prover side. Deliberately written apart from the
///         contracts' verifiers so that the tests check one against the other.
library MerkleBuilder {
    /// @notice Leaf hashes of 32-byte values.
    function leafHashes(bytes32[] memory values) internal pure returns (bytes32[] memory h) {
        h = new bytes32[](values.length);
        for (uint256 i; i < values.length; ++i) {
            h[i] = MerkleLog.hashLeaf(values[i]);
        }
    }

    /// @notice MTH over 32-byte values (the empty tree's root for none).
    function root(bytes32[] memory values) internal pure returns (bytes32) {
        if (values.length == 0) return MerkleLog.EMPTY_ROOT;
        return _mth(leafHashes(values), 0, values.length);
    }

    /// @notice MTH over the first `size` values.
    function rootAt(bytes32[] memory values, uint256 size) internal pure returns (bytes32) {
        return _mth(leafHashes(values), 0, size);
    }

    /// @notice PATH(index, D[0:size]) over 32-byte values, bottom-up.
    function proof(bytes32[] memory values, uint256 index, uint256 size) internal pure returns (bytes32[] memory) {
        bytes32[] memory h = leafHashes(values);
        bytes32[] memory out = new bytes32[](64);
        uint256 n = _path(h, index, 0, size, out, 0);
        return _trim(out, n);
    }

    /// @notice PATH(index, D[0:n]) over all values.
    function proof(bytes32[] memory values, uint256 index) internal pure returns (bytes32[] memory) {
        return proof(values, index, values.length);
    }

    /// @notice PROOF(oldSize, D[0:newSize]): the consistency proof from the first `oldSize` values.
    function consistency(bytes32[] memory values, uint256 oldSize, uint256 newSize)
        internal
        pure
        returns (bytes32[] memory)
    {
        bytes32[] memory h = leafHashes(values);
        bytes32[] memory out = new bytes32[](128);
        uint256 n = _subproof(h, oldSize, 0, newSize, true, out, 0);
        return _trim(out, n);
    }

    /// @notice MTH over leaf hashes (of leaves that are not 32-byte values).
    function rootOfHashes(bytes32[] memory h) internal pure returns (bytes32) {
        if (h.length == 0) return MerkleLog.EMPTY_ROOT;
        return _mth(h, 0, h.length);
    }

    /// @notice PATH(index, D[0:n]) over leaf hashes.
    function proofOfHashes(bytes32[] memory h, uint256 index) internal pure returns (bytes32[] memory) {
        bytes32[] memory out = new bytes32[](64);
        uint256 n = _path(h, index, 0, h.length, out, 0);
        return _trim(out, n);
    }

    /// @notice The roots of the complete subtrees of the first `size` values, largest (leftmost) first.
    function border(bytes32[] memory values, uint256 size) internal pure returns (bytes32[] memory out) {
        bytes32[] memory h = leafHashes(values);
        uint256 count;
        for (uint256 s = size; s != 0; s >>= 1) {
            count += s & 1;
        }
        out = new bytes32[](count);
        uint256 lo;
        uint256 j;
        for (uint256 bit = 256; bit > 0; --bit) {
            uint256 w = uint256(1) << (bit - 1);
            if (size & w != 0) {
                out[j++] = _mth(h, lo, lo + w);
                lo += w;
            }
        }
    }

    // ─────────────────────────────────────────────── internal

    function _split(uint256 n) private pure returns (uint256 k) {
        k = 1;
        while (k * 2 < n) k *= 2;
    }

    function _mth(bytes32[] memory h, uint256 lo, uint256 hi) private pure returns (bytes32) {
        uint256 n = hi - lo;
        if (n == 1) return h[lo];
        uint256 k = _split(n);
        return MerkleLog.hashNode(_mth(h, lo, lo + k), _mth(h, lo + k, hi));
    }

    /// @dev Appends PATH(m, D[lo:hi]) to out from position `pos`; returns the new length.
    function _path(bytes32[] memory h, uint256 m, uint256 lo, uint256 hi, bytes32[] memory out, uint256 pos)
        private
        pure
        returns (uint256)
    {
        uint256 n = hi - lo;
        if (n <= 1) return pos;
        uint256 k = _split(n);
        if (m < k) {
            pos = _path(h, m, lo, lo + k, out, pos);
            out[pos] = _mth(h, lo + k, hi);
        } else {
            pos = _path(h, m - k, lo + k, hi, out, pos);
            out[pos] = _mth(h, lo, lo + k);
        }
        return pos + 1;
    }

    /// @dev Appends SUBPROOF(m, D[lo:hi], b) to out; returns the new length.
    function _subproof(bytes32[] memory h, uint256 m, uint256 lo, uint256 hi, bool b, bytes32[] memory out, uint256 pos)
        private
        pure
        returns (uint256)
    {
        uint256 n = hi - lo;
        if (m == n) {
            if (b) return pos;
            out[pos] = _mth(h, lo, hi);
            return pos + 1;
        }
        uint256 k = _split(n);
        if (m <= k) {
            pos = _subproof(h, m, lo, lo + k, b, out, pos);
            out[pos] = _mth(h, lo + k, hi);
        } else {
            pos = _subproof(h, m - k, lo + k, hi, false, out, pos);
            out[pos] = _mth(h, lo, lo + k);
        }
        return pos + 1;
    }

    function _trim(bytes32[] memory a, uint256 n) private pure returns (bytes32[] memory b) {
        b = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            b[i] = a[i];
        }
    }
}
