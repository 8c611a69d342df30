// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title VectorBlob
/// @notice Big-endian readers over the byte blobs of MerkleVectors.sol (layouts in
///         protocol/commit/vectors.py), with a cursor so records parse in one pass.
library VectorBlob {
    struct Cursor {
        bytes data;
        uint256 pos;
    }

    function open(bytes memory data) internal pure returns (Cursor memory) {
        return Cursor(data, 0);
    }

    function done(Cursor memory c) internal pure returns (bool) {
        return c.pos >= c.data.length;
    }

    function readUint(Cursor memory c, uint256 width) internal pure returns (uint256 v) {
        bytes memory d = c.data;
        uint256 p = c.pos;
        require(p + width <= d.length, "VectorBlob: out of data");
        uint256 w;
        assembly ("memory-safe") {
            w := mload(add(add(d, 32), p))
        }
        v = w >> (256 - 8 * width);
        c.pos = p + width;
    }

    function readBytes32(Cursor memory c) internal pure returns (bytes32 v) {
        v = bytes32(readUint(c, 32));
    }

    function readBytes(Cursor memory c, uint256 len) internal pure returns (bytes memory out) {
        require(c.pos + len <= c.data.length, "VectorBlob: out of data");
        out = new bytes(len);
        for (uint256 i; i < len; ++i) {
            out[i] = c.data[c.pos + i];
        }
        c.pos += len;
    }

    function readHashes(Cursor memory c, uint256 n) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = readBytes32(c);
        }
    }

    /// @notice Word `i` of a blob of consecutive 32-byte values (LEAVES, ROOTS).
    function word(bytes memory data, uint256 i) internal pure returns (bytes32 v) {
        require(32 * (i + 1) <= data.length, "VectorBlob: out of data");
        assembly ("memory-safe") {
            v := mload(add(add(data, 32), mul(i, 32)))
        }
    }
}
