// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";
import {MerkleVectors} from "./MerkleVectors.sol";
import {VectorBlob} from "./VectorBlob.sol";

/// @notice External entry points, so reverts of the library surface at a call boundary.
contract TensorCommitHarness {
    function verifyElement(
        bytes32 expectedId,
        uint8 dtype,
        uint32[] calldata shape,
        uint256 flatIndex,
        bytes calldata chunk,
        bytes32[] calldata siblings
    ) external pure returns (uint256) {
        return TensorCommit.verifyElement(expectedId, dtype, shape, flatIndex, chunk, siblings);
    }

    function tensorId(uint8 dtype, uint32[] calldata shape, bytes32 chunkRoot) external pure returns (bytes32) {
        return TensorCommit.tensorId(dtype, shape, chunkRoot);
    }
}

/// @notice Element opening and tensor ids against the Python vectors, and tampering.
contract TensorCommitTest is TestBase {
    using VectorBlob for VectorBlob.Cursor;

    event log_named_uint(string key, uint256 val);

    struct Element {
        uint256 flatIndex;
        bytes chunk;
        bytes32[] siblings;
        uint256 bits;
    }

    TensorCommitHarness internal h;

    function setUp() public {
        h = new TensorCommitHarness();
    }

    // =============================================================================================
    //                                          HELPERS
    // =============================================================================================

    function _shape() internal pure returns (uint32[] memory s) {
        s = new uint32[](2);
        s[0] = MerkleVectors.TENSOR_ROWS;
        s[1] = MerkleVectors.TENSOR_COLS;
    }

    function _elements() internal pure returns (Element[] memory out) {
        Element[] memory tmp = new Element[](32);
        uint256 n;
        VectorBlob.Cursor memory c = VectorBlob.open(MerkleVectors.ELEMENTS);
        while (!c.done()) {
            uint256 flatIndex = c.readUint(4);
            bytes memory chunk = c.readBytes(c.readUint(2));
            bytes32[] memory sib = c.readHashes(c.readUint(1));
            tmp[n++] = Element(flatIndex, chunk, sib, c.readUint(8));
        }
        out = new Element[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = tmp[i];
        }
    }

    /// Expect TensorIdMismatch with the id these (tampered) arguments actually lead to.
    function _expectIdMismatch(
        uint8 dtype,
        uint32[] memory shape,
        uint256 flatIndex,
        bytes memory chunk,
        bytes32[] memory siblings
    ) internal {
        uint256 total = TensorCommit.numel(shape) * TensorCommit.elementWidth(dtype);
        uint256 chunkIndex = flatIndex * TensorCommit.elementWidth(dtype) / TensorCommit.CHUNK_BYTES;
        uint256 size = (total + TensorCommit.CHUNK_BYTES - 1) / TensorCommit.CHUNK_BYTES;
        bytes32 root = MerkleLog.rootFromInclusion(MerkleLog.hashLeaf(chunk), chunkIndex, size, siblings);
        bytes32 computed = TensorCommit.tensorId(dtype, shape, root);
        assertNotEq(computed, MerkleVectors.TENSOR_ID);
        vm.expectRevert(
            abi.encodeWithSelector(TensorCommit.TensorIdMismatch.selector, MerkleVectors.TENSOR_ID, computed)
        );
    }

    function _copy(bytes memory b) internal pure returns (bytes memory out) {
        out = new bytes(b.length);
        for (uint256 i; i < b.length; ++i) {
            out[i] = b[i];
        }
    }

    // =============================================================================================
    //                                         TENSOR IDS
    // =============================================================================================

    function test_tensorId_pythonVectors_succeeds() public view {
        VectorBlob.Cursor memory c = VectorBlob.open(MerkleVectors.TENSOR_IDS);
        uint256 count;
        while (!c.done()) {
            uint8 dtype = uint8(c.readUint(1));
            uint256 ndim = c.readUint(1);
            uint32[] memory shape = new uint32[](ndim);
            for (uint256 i; i < ndim; ++i) {
                shape[i] = uint32(c.readUint(4));
            }
            bytes32 root = c.readBytes32();
            bytes32 id = c.readBytes32();
            assertEq(h.tensorId(dtype, shape, root), id, "python tensor id");
            assertEq(TensorCommit.tensorId(dtype, shape, root), id, "internal tensor id");
            ++count;
        }
        assertEq(count, 5);
        assertEq(TensorCommit.tensorId(1, _shape(), MerkleVectors.TENSOR_CHUNK_ROOT), MerkleVectors.TENSOR_ID);
    }

    function test_tensorId_unknownDtype_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(TensorCommit.UnknownDtype.selector, uint8(9)));
        h.tensorId(9, _shape(), bytes32(0));
    }

    function testFuzz_tensorId_shapeAndDtypeBound_succeeds(uint32 a, uint32 b, bytes32 root) public pure {
        uint32[] memory ab = new uint32[](2);
        ab[0] = a;
        ab[1] = b;
        uint32[] memory ba = new uint32[](2);
        ba[0] = b;
        ba[1] = a;
        uint32[] memory flat = new uint32[](1);
        flat[0] = a;
        bytes32 id = TensorCommit.tensorId(1, ab, root);
        if (a != b) assertNotEq(id, TensorCommit.tensorId(1, ba, root));
        assertNotEq(id, TensorCommit.tensorId(2, ab, root));
        assertNotEq(id, TensorCommit.tensorId(1, flat, root));
        assertNotEq(id, TensorCommit.tensorId(1, ab, root ^ bytes32(uint256(1))));
    }

    // =============================================================================================
    //                                          ELEMENTS
    // =============================================================================================

    function test_verifyElement_pythonVectors_succeeds() public view {
        Element[] memory es = _elements();
        assertEq(es.length, 8);
        for (uint256 k; k < es.length; ++k) {
            Element memory e = es[k];
            uint256 bits = h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), e.flatIndex, e.chunk, e.siblings);
            assertEq(bits, e.bits, "element bits");
        }
    }

    function test_verifyElement_tamperedChunk_reverts() public {
        Element memory e = _elements()[4];
        bytes memory chunk = _copy(e.chunk);
        uint256 at = (e.flatIndex * 4) % TensorCommit.CHUNK_BYTES + 3;
        chunk[at] = chunk[at] ^ 0x01; // lowest bit of the element's mantissa
        _expectIdMismatch(1, _shape(), e.flatIndex, chunk, e.siblings);
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), e.flatIndex, chunk, e.siblings);
    }

    function test_verifyElement_tamperedSibling_reverts() public {
        Element memory e = _elements()[2];
        e.siblings[1] = e.siblings[1] ^ bytes32(uint256(1));
        _expectIdMismatch(1, _shape(), e.flatIndex, e.chunk, e.siblings);
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), e.flatIndex, e.chunk, e.siblings);
    }

    function test_verifyElement_indexOfOtherChunk_reverts() public {
        Element memory e = _elements()[4]; // element 200, chunk 3
        _expectIdMismatch(1, _shape(), 130, e.chunk, e.siblings);
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), 130, e.chunk, e.siblings); // chunk 2
    }

    function test_verifyElement_wrongShape_reverts() public {
        Element memory e = _elements()[1];
        uint32[] memory shape = _shape();
        shape[0] = 41;
        shape[1] = 7; // same element count, other shape
        _expectIdMismatch(1, shape, e.flatIndex, e.chunk, e.siblings);
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, shape, e.flatIndex, e.chunk, e.siblings);
    }

    function test_verifyElement_wrongDtype_reverts() public {
        Element memory e = _elements()[1];
        _expectIdMismatch(TensorCommit.DTYPE_INT32, _shape(), e.flatIndex, e.chunk, e.siblings);
        h.verifyElement(MerkleVectors.TENSOR_ID, TensorCommit.DTYPE_INT32, _shape(), e.flatIndex, e.chunk, e.siblings);
    }

    function test_verifyElement_shortLastChunk_reverts() public {
        Element memory e = _elements()[7]; // element 286, in the 124-byte last chunk
        assertEq(e.chunk.length, 124);
        bytes memory padded = new bytes(TensorCommit.CHUNK_BYTES);
        for (uint256 i; i < e.chunk.length; ++i) {
            padded[i] = e.chunk[i];
        }
        vm.expectRevert(abi.encodeWithSelector(TensorCommit.ChunkLengthMismatch.selector, 4, 124, 256));
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), e.flatIndex, padded, e.siblings);
    }

    function test_verifyElement_outOfRange_reverts() public {
        Element memory e = _elements()[7];
        vm.expectRevert(abi.encodeWithSelector(TensorCommit.ElementOutOfRange.selector, 287, 287));
        h.verifyElement(MerkleVectors.TENSOR_ID, 1, _shape(), 287, e.chunk, e.siblings);
    }

    function test_verifyElement_gas_succeeds() public {
        Element memory e = _elements()[4];
        uint32[] memory shape = _shape();
        uint256 g0 = gasleft();
        uint256 bits = TensorCommit.verifyElement(MerkleVectors.TENSOR_ID, 1, shape, e.flatIndex, e.chunk, e.siblings);
        uint256 used = g0 - gasleft();
        assertEq(bits, e.bits);
        emit log_named_uint("verifyElement, 5 chunks (internal, memory)", used);
    }

    function testFuzz_readElement_bigEndian_succeeds(bytes32 w0, bytes32 w1, uint256 j, bool wide) public pure {
        bytes memory chunk = abi.encodePacked(w0, w1);
        uint256 width = wide ? 8 : 4;
        j = bound(j, 0, 64 / width - 1);
        uint256 expected;
        for (uint256 b; b < width; ++b) {
            expected = (expected << 8) | uint8(chunk[j * width + b]);
        }
        assertEq(TensorCommit.readElement(chunk, j, width), expected);
    }
}
