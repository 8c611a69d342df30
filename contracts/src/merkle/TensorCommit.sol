// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleLog} from "./MerkleLog.sol";

/// @title TensorCommit
/// @notice Opens one element of a committed tensor: recomputes the tensor id from dtype, shape and
///         the chunk root that a chunk and its audit path lead to, and reads the element's bits.
/// @dev Byte layout (identical to protocol/commit/tensor.py; docs/COMMITMENTS.md):
///
///      - elements: raw bits, row-major, each a big-endian unsigned integer of the dtype's width
///        (float32 -> its IEEE-754 bits as uint32), so element j of a chunk is one word load and a
///        shift;
///      - chunks: consecutive CHUNK_BYTES-byte slices of that byte string, the last one shorter
///        (never padded); leaf = keccak256(0x00 || chunk);
///      - chunk root: RFC 9162 root over the chunk leaves (keccak256("") for an empty tensor);
///      - tensor id = keccak256(0x02 || dtype:uint8 || ndim:uint8 || dim_0:uint32 || ... ||
///        dim_{ndim-1}:uint32 || chunkRoot:bytes32), integers big-endian. The 0x02 prefix keeps ids
///        apart from leaf (0x00) and node (0x01) preimages.
library TensorCommit {
    // =============================================================================================
    //                                          ERRORS
    // =============================================================================================

    /// @notice The dtype code is not one of DTYPE_FLOAT32, DTYPE_INT32, DTYPE_INT64.
    error UnknownDtype(uint8 dtype);
    /// @notice A shape of more than 255 dimensions cannot be encoded in an id.
    error TooManyDims(uint256 ndim);
    /// @notice The element index is not below the tensor's element count.
    error ElementOutOfRange(uint256 flatIndex, uint256 numel);
    /// @notice The chunk does not have the length its position in the tensor implies.
    error ChunkLengthMismatch(uint256 chunkIndex, uint256 expected, uint256 actual);
    /// @notice The chunk and path do not open the claimed tensor id.
    error TensorIdMismatch(bytes32 expected, bytes32 computed);

    // =============================================================================================
    //                                         CONSTANTS
    // =============================================================================================

    /// @notice Bytes per chunk leaf (64 float32 elements).
    uint256 internal constant CHUNK_BYTES = 256;
    uint8 internal constant DTYPE_FLOAT32 = 1;
    uint8 internal constant DTYPE_INT32 = 2;
    uint8 internal constant DTYPE_INT64 = 3;
    bytes1 internal constant TENSOR_ID_PREFIX = 0x02;

    // =============================================================================================
    //                                       SHAPE HELPERS
    // =============================================================================================

    /// @notice Element width in bytes of a dtype code.
    function elementWidth(uint8 dtype) internal pure returns (uint256) {
        if (dtype == DTYPE_FLOAT32 || dtype == DTYPE_INT32) return 4;
        if (dtype == DTYPE_INT64) return 8;
        revert UnknownDtype(dtype);
    }

    /// @notice Number of elements of a shape (1 for a scalar, the empty shape).
    function numel(uint32[] memory shape) internal pure returns (uint256 n) {
        n = 1;
        for (uint256 i; i < shape.length; ++i) {
            n *= shape[i]; // checked: an absurd shape reverts instead of wrapping
        }
    }

    /// @notice Number of chunk leaves of a tensor.
    function numChunks(uint8 dtype, uint32[] memory shape) internal pure returns (uint256) {
        uint256 bytesTotal = numel(shape) * elementWidth(dtype);
        return (bytesTotal + CHUNK_BYTES - 1) / CHUNK_BYTES;
    }

    // =============================================================================================
    //                                         TENSOR ID
    // =============================================================================================

    /// @notice keccak256(0x02 || dtype || ndim || dims (uint32 BE each) || chunkRoot).
    function tensorId(uint8 dtype, uint32[] memory shape, bytes32 chunkRoot) internal pure returns (bytes32) {
        elementWidth(dtype); // reverts on an unknown dtype
        uint256 ndim = shape.length;
        if (ndim > type(uint8).max) revert TooManyDims(ndim);
        bytes memory dims = new bytes(4 * ndim);
        for (uint256 i; i < ndim; ++i) {
            uint32 d = shape[i];
            assembly ("memory-safe") {
                // Write the 4 big-endian bytes of d at dims[4i..4i+4): a word store of d shifted to
                // the top 4 bytes; the bytes after them are overwritten by the next dim or unused.
                mstore(add(add(dims, 32), mul(i, 4)), shl(224, d))
            }
        }
        return keccak256(abi.encodePacked(TENSOR_ID_PREFIX, dtype, uint8(ndim), dims, chunkRoot));
    }

    // =============================================================================================
    //                                          ELEMENTS
    // =============================================================================================

    /// @notice Bits of element `j` of a chunk of `width`-byte big-endian elements.
    /// @dev The caller guarantees (j + 1) * width <= chunk.length (verifyElement checks it).
    function readElement(bytes memory chunk, uint256 j, uint256 width) internal pure returns (uint256 bits) {
        uint256 word;
        assembly ("memory-safe") {
            word := mload(add(add(chunk, 32), mul(j, width)))
        }
        bits = word >> (256 - 8 * width);
    }

    /// @notice Verify that `chunk` + `siblings` open element `flatIndex` of `expectedId`; return its bits.
    /// @param expectedId The committed tensor id (from a state root or op log the caller trusts).
    /// @param dtype Dtype code of the tensor (part of the id).
    /// @param shape Shape of the tensor (part of the id).
    /// @param flatIndex Row-major index of the element.
    /// @param chunk The chunk holding the element (exact length: CHUNK_BYTES, or less for the last).
    /// @param siblings RFC 9162 audit path of the chunk, bottom-up.
    /// @return bits The element's raw bits (a float32 as uint32, an int64 as uint64).
    function verifyElement(
        bytes32 expectedId,
        uint8 dtype,
        uint32[] memory shape,
        uint256 flatIndex,
        bytes memory chunk,
        bytes32[] memory siblings
    ) internal pure returns (uint256 bits) {
        uint256 width = elementWidth(dtype);
        uint256 count = numel(shape);
        if (flatIndex >= count) revert ElementOutOfRange(flatIndex, count);
        uint256 totalBytes = count * width;
        uint256 start = flatIndex * width;
        uint256 chunkIndex = start / CHUNK_BYTES;
        // INVARIANT: chunkIndex * CHUNK_BYTES <= start < totalBytes, so the subtraction is safe.
        uint256 expectedLen = totalBytes - chunkIndex * CHUNK_BYTES;
        if (expectedLen > CHUNK_BYTES) expectedLen = CHUNK_BYTES;
        if (chunk.length != expectedLen) revert ChunkLengthMismatch(chunkIndex, expectedLen, chunk.length);

        uint256 size = (totalBytes + CHUNK_BYTES - 1) / CHUNK_BYTES;
        bytes32 root = MerkleLog.rootFromInclusion(MerkleLog.hashLeaf(chunk), chunkIndex, size, siblings);
        bytes32 computed = tensorId(dtype, shape, root);
        if (computed != expectedId) revert TensorIdMismatch(expectedId, computed);
        bits = readElement(chunk, (start % CHUNK_BYTES) / width, width);
    }
}
