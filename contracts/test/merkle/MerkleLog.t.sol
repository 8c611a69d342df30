// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {MerkleVectors} from "./MerkleVectors.sol";
import {VectorBlob} from "./VectorBlob.sol";

/// @notice External entry points, so reverts of the library surface at a call boundary.
contract MerkleLogHarness {
    function rootFromInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata siblings)
        external
        pure
        returns (bytes32)
    {
        return MerkleLog.rootFromInclusion(leaf, index, size, siblings);
    }

    function verifyInclusion(bytes32 root, bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata siblings)
        external
        pure
        returns (bool)
    {
        return MerkleLog.verifyInclusion(root, leaf, index, size, siblings);
    }

    function verifyAppend(bytes32 oldRoot, bytes32 newRoot, uint256 oldSize, bytes32 leaf, bytes32[] calldata sib)
        external
        pure
        returns (bool)
    {
        return MerkleLog.verifyAppend(oldRoot, newRoot, oldSize, leaf, sib);
    }

    function verifyConsistency(
        uint256 oldSize,
        uint256 newSize,
        bytes32 oldRoot,
        bytes32 newRoot,
        bytes32[] calldata path
    ) external pure returns (bool) {
        return MerkleLog.verifyConsistency(oldSize, newSize, oldRoot, newRoot, path);
    }
}

/// @notice MerkleLog against the Python vectors, tampered proofs, and fuzzed reference trees.
contract MerkleLogTest is TestBase {
    using VectorBlob for VectorBlob.Cursor;

    event log_named_uint(string key, uint256 val);

    struct Case {
        uint256 a; // index (inclusion) or oldSize (consistency)
        uint256 b; // size (inclusion) or newSize (consistency)
        bytes32[] path;
    }

    MerkleLogHarness internal h;

    function setUp() public {
        h = new MerkleLogHarness();
    }

    // =============================================================================================
    //                                          HELPERS
    // =============================================================================================

    function _cases(bytes memory blob) internal pure returns (Case[] memory out) {
        Case[] memory tmp = new Case[](200);
        uint256 n;
        VectorBlob.Cursor memory c = VectorBlob.open(blob);
        while (!c.done()) {
            uint256 a = c.readUint(4);
            uint256 b = c.readUint(4);
            uint256 len = c.readUint(1);
            tmp[n++] = Case(a, b, c.readHashes(len));
        }
        out = new Case[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = tmp[i];
        }
    }

    function _leaf(uint256 i) internal pure returns (bytes32) {
        return MerkleLog.hashLeaf(VectorBlob.word(MerkleVectors.LEAVES, i));
    }

    function _root(uint256 size) internal pure returns (bytes32) {
        return VectorBlob.word(MerkleVectors.ROOTS, size);
    }

    function _flip(bytes32[] memory path, uint256 k) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](path.length);
        for (uint256 i; i < path.length; ++i) {
            out[i] = path[i];
        }
        out[k] = path[k] ^ bytes32(uint256(1) << (k % 256));
    }

    function _resized(bytes32[] memory path, uint256 len) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](len);
        for (uint256 i; i < len && i < path.length; ++i) {
            out[i] = path[i];
        }
    }

    // =============================================================================================
    //                                   HASHING AND VECTORS
    // =============================================================================================

    function test_hashLeaf_matchesPython_succeeds() public pure {
        assertEq(MerkleLog.EMPTY_ROOT, keccak256(""));
        assertEq(_root(0), MerkleLog.EMPTY_ROOT, "empty root");
        assertEq(_root(1), _leaf(0), "one-leaf root is the leaf hash");
        assertEq(_root(2), MerkleLog.hashNode(_leaf(0), _leaf(1)), "two-leaf root");
        bytes32 v = VectorBlob.word(MerkleVectors.LEAVES, 3);
        assertEq(MerkleLog.hashLeaf(v), MerkleLog.hashLeaf(abi.encodePacked(v)), "value and bytes leaf agree");
        // Three leaves split 2 + 1.
        assertEq(_root(3), MerkleLog.hashNode(_root(2), _leaf(2)), "three-leaf root");
    }

    function test_verifyInclusion_pythonVectors_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        assertEq(cs.length, 39);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            assertTrue(h.verifyInclusion(_root(c.b), _leaf(c.a), c.a, c.b, c.path), "python proof accepted");
            assertEq(h.rootFromInclusion(_leaf(c.a), c.a, c.b, c.path), _root(c.b));
            assertTrue(
                MerkleLog.verifyValue(_root(c.b), VectorBlob.word(MerkleVectors.LEAVES, c.a), c.a, c.b, c.path),
                "verifyValue"
            );
        }
    }

    function test_verifyInclusion_tamperedSiblingRejected_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            for (uint256 s; s < c.path.length; ++s) {
                assertFalse(h.verifyInclusion(_root(c.b), _leaf(c.a), c.a, c.b, _flip(c.path, s)), "flipped sibling");
            }
        }
    }

    function test_verifyInclusion_wrongIndexOrLeafRejected_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            if (c.b == 1) continue;
            uint256 other = (c.a + 1) % c.b;
            assertFalse(h.verifyInclusion(_root(c.b), _leaf(c.a), other, c.b, c.path), "wrong index");
            assertFalse(h.verifyInclusion(_root(c.b), _leaf(other), c.a, c.b, c.path), "wrong leaf");
            assertFalse(h.verifyInclusion(_root(c.b - 1), _leaf(c.a), c.a, c.b, c.path), "wrong root");
        }
    }

    function test_verifyInclusion_wrongSizeShapeRejected_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            if (c.b == 1) continue;
            // Doubling the size adds a level: the path no longer reaches the root.
            assertFalse(h.verifyInclusion(_root(c.b), _leaf(c.a), c.a, 2 * c.b, c.path), "doubled size");
            assertFalse(h.verifyInclusion(_root(c.b), _leaf(c.a), c.a, c.a, c.path), "size == index");
        }
        // Leaf 2 of 3 has path [n(0,1)]; in a tree of 4 it would need two siblings.
        bytes32[] memory p = new bytes32[](1);
        p[0] = _root(2);
        assertTrue(h.verifyInclusion(_root(3), _leaf(2), 2, 3, p));
        assertFalse(h.verifyInclusion(_root(3), _leaf(2), 2, 4, p));
    }

    function test_rootFromInclusion_indexOutOfRange_reverts() public {
        bytes32[] memory p = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(MerkleLog.IndexOutOfRange.selector, 5, 5));
        h.rootFromInclusion(_leaf(0), 5, 5, p);
    }

    function test_rootFromInclusion_pathTooLong_reverts() public {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        Case memory c = cs[cs.length - 1]; // leaf 12 of 13: path of 2
        bytes32[] memory longer = _resized(c.path, c.path.length + 1);
        vm.expectRevert(abi.encodeWithSelector(MerkleLog.PathTooLong.selector, c.path.length + 1, c.path.length));
        h.rootFromInclusion(_leaf(c.a), c.a, c.b, longer);
    }

    function test_rootFromInclusion_pathTooShort_reverts() public {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        Case memory c = cs[cs.length - 2];
        bytes32[] memory shorter = _resized(c.path, c.path.length - 1);
        vm.expectRevert(abi.encodeWithSelector(MerkleLog.PathTooShort.selector, c.path.length - 1));
        h.rootFromInclusion(_leaf(c.a), c.a, c.b, shorter);
    }

    function test_verifyAppend_pythonVectors_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.INCLUSION);
        uint256 checked;
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            if (c.a + 1 != c.b) continue; // the last leaf's path is the append proof from size a
            assertTrue(h.verifyAppend(_root(c.a), _root(c.b), c.a, _leaf(c.a), c.path), "append accepted");
            assertFalse(
                h.verifyAppend(_root(c.a), _root(c.b), c.a, _leaf((c.a + 1) % MerkleVectors.N_LEAVES), c.path),
                "other leaf"
            );
            if (c.a > 0) {
                assertFalse(h.verifyAppend(_root(c.a - 1), _root(c.b), c.a, _leaf(c.a), c.path), "other old root");
                assertFalse(h.verifyAppend(_root(c.a), _root(c.b), c.a, _leaf(c.a), _flip(c.path, 0)), "flipped");
            }
            ++checked;
        }
        assertEq(checked, 7);
    }

    function testFuzz_verifyAppend_referenceTree_succeeds(uint256 seed, uint256 m, uint256 s) public view {
        m = bound(m, 0, 69);
        bytes32[] memory l = _leaves(seed, m + 1);
        bytes32 oldRoot = _mth(l, 0, m);
        bytes32 newRoot = _mth(l, 0, m + 1);
        bytes32[] memory buf = new bytes32[](16);
        bytes32[] memory path = _resized(buf, _path(l, m, 0, m + 1, buf, 0));
        assertTrue(h.verifyAppend(oldRoot, newRoot, m, l[m], path), "reference append accepted");
        if (m > 0) {
            l[s % m] = keccak256(abi.encode("forged", l[s % m])); // rewrite one old entry
            bytes32 forgedRoot = _mth(l, 0, m + 1);
            path = _resized(buf, _path(l, m, 0, m + 1, buf, 0));
            assertFalse(h.verifyAppend(oldRoot, forgedRoot, m, l[m], path), "rewritten history rejected");
        }
    }

    function test_verifyConsistency_pythonVectors_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.CONSISTENCY);
        assertEq(cs.length, 28);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            assertTrue(h.verifyConsistency(c.a, c.b, _root(c.a), _root(c.b), c.path), "python proof accepted");
        }
    }

    function test_verifyConsistency_tamperedRejected_succeeds() public view {
        Case[] memory cs = _cases(MerkleVectors.CONSISTENCY);
        for (uint256 k; k < cs.length; ++k) {
            Case memory c = cs[k];
            for (uint256 s; s < c.path.length; ++s) {
                assertFalse(h.verifyConsistency(c.a, c.b, _root(c.a), _root(c.b), _flip(c.path, s)), "flipped node");
            }
            if (c.a > 1) {
                assertFalse(h.verifyConsistency(c.a, c.b, _root(c.a - 1), _root(c.b), c.path), "other old root");
            }
            if (c.a < c.b) {
                assertFalse(h.verifyConsistency(c.a + 1, c.b, _root(c.a), _root(c.b), c.path), "old size + 1");
                assertFalse(h.verifyConsistency(c.a, c.b, _root(c.a), _root(c.b - 1), c.path), "other new root");
                assertFalse(
                    h.verifyConsistency(c.a, c.b, _root(c.a), _root(c.b), _resized(c.path, c.path.length + 1)),
                    "longer path"
                );
            }
        }
        bytes32[] memory empty = new bytes32[](0);
        assertFalse(h.verifyConsistency(0, 5, MerkleLog.EMPTY_ROOT, _root(5), empty), "old size 0");
        assertFalse(h.verifyConsistency(6, 5, _root(6), _root(5), empty), "old > new");
        assertFalse(h.verifyConsistency(5, 5, _root(5), _root(4), empty), "equal sizes, other root");
        assertTrue(h.verifyConsistency(5, 5, _root(5), _root(5), empty), "equal sizes");
    }

    // =============================================================================================
    //                                  FUZZ: REFERENCE TREES
    // =============================================================================================

    function _split(uint256 n) internal pure returns (uint256 k) {
        k = 1;
        while (k << 1 < n) k <<= 1;
    }

    /// RFC 9162 §2.1.1 MTH, recursive as the RFC states it.
    function _mth(bytes32[] memory l, uint256 lo, uint256 hi) internal pure returns (bytes32) {
        if (hi == lo) return MerkleLog.EMPTY_ROOT;
        if (hi - lo == 1) return l[lo];
        uint256 k = _split(hi - lo);
        return MerkleLog.hashNode(_mth(l, lo, lo + k), _mth(l, lo + k, hi));
    }

    /// RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]), appended bottom-up into `out` from position `n`.
    function _path(bytes32[] memory l, uint256 m, uint256 lo, uint256 hi, bytes32[] memory out, uint256 n)
        internal
        pure
        returns (uint256)
    {
        if (hi - lo <= 1) return n;
        uint256 k = _split(hi - lo);
        if (m < k) {
            n = _path(l, m, lo, lo + k, out, n);
            out[n] = _mth(l, lo + k, hi);
        } else {
            n = _path(l, m - k, lo + k, hi, out, n);
            out[n] = _mth(l, lo, lo + k);
        }
        return n + 1;
    }

    /// RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], b).
    function _subproof(bytes32[] memory l, uint256 m, uint256 lo, uint256 hi, bool b, bytes32[] memory out, uint256 n)
        internal
        pure
        returns (uint256)
    {
        if (m == hi - lo) {
            if (!b) out[n++] = _mth(l, lo, hi);
            return n;
        }
        uint256 k = _split(hi - lo);
        if (m <= k) {
            n = _subproof(l, m, lo, lo + k, b, out, n);
            out[n] = _mth(l, lo + k, hi);
        } else {
            n = _subproof(l, m - k, lo + k, hi, false, out, n);
            out[n] = _mth(l, lo, lo + k);
        }
        return n + 1;
    }

    function _leaves(uint256 seed, uint256 n) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            l[i] = MerkleLog.hashLeaf(keccak256(abi.encode(seed, i)));
        }
    }

    function testFuzz_verifyInclusion_referenceTree_succeeds(uint256 seed, uint256 n, uint256 i, uint256 j)
        public
        view
    {
        n = bound(n, 1, 70);
        i = bound(i, 0, n - 1);
        j = bound(j, 0, n - 1);
        bytes32[] memory l = _leaves(seed, n);
        bytes32 root = _mth(l, 0, n);
        bytes32[] memory buf = new bytes32[](16);
        uint256 len = _path(l, i, 0, n, buf, 0);
        bytes32[] memory path = _resized(buf, len);
        assertTrue(h.verifyInclusion(root, l[i], i, n, path), "reference path accepted");
        if (len > 0) {
            assertFalse(h.verifyInclusion(root, l[i], i, n, _flip(path, j % len)), "flipped sibling rejected");
        }
        if (j != i) {
            assertFalse(h.verifyInclusion(root, l[i], j, n, path), "other index rejected");
            assertFalse(h.verifyInclusion(root, l[j], i, n, path), "other leaf rejected");
        }
    }

    function _consistency(bytes32[] memory l, uint256 m, uint256 n) internal pure returns (bytes32[] memory) {
        bytes32[] memory buf = new bytes32[](16);
        return _resized(buf, _subproof(l, m, 0, n, true, buf, 0));
    }

    function testFuzz_verifyConsistency_referenceTree_succeeds(uint256 seed, uint256 n, uint256 m, uint256 s)
        public
        view
    {
        n = bound(n, 1, 70);
        m = bound(m, 1, n);
        bytes32[] memory l = _leaves(seed, n);
        bytes32 oldRoot = _mth(l, 0, m);
        bytes32[] memory path = _consistency(l, m, n);
        assertTrue(h.verifyConsistency(m, n, oldRoot, _mth(l, 0, n), path), "reference proof accepted");
        if (path.length > 0) {
            assertFalse(
                h.verifyConsistency(m, n, oldRoot, _mth(l, 0, n), _flip(path, s % path.length)), "flipped node rejected"
            );
        }
        if (m < n) {
            // A rewritten history: leaf s of the old part replaced.
            l[s % m] = keccak256(abi.encode("forged", l[s % m]));
            assertFalse(h.verifyConsistency(m, n, oldRoot, _mth(l, 0, n), _consistency(l, m, n)), "rewrite rejected");
        }
    }

    // =============================================================================================
    //                                            GAS
    // =============================================================================================

    function _depth20()
        internal
        pure
        returns (bytes32 leaf, uint256 index, uint256 size, bytes32[] memory sib, bytes32 root)
    {
        VectorBlob.Cursor memory c = VectorBlob.open(MerkleVectors.DEPTH20);
        leaf = c.readBytes32();
        index = c.readUint(4);
        size = c.readUint(4);
        sib = c.readHashes(20);
        root = c.readBytes32();
    }

    /// The same assembly walk as MerkleLog._walkInclusion with sha256 nodes (precompile 0x02), only
    /// to compare gas; proof structure checks are left out, which only flatters sha256.
    function _sha256Root(bytes32 leaf, uint256 index, uint256 size, bytes32[] memory siblings)
        internal
        view
        returns (bytes32 r)
    {
        r = leaf;
        assembly ("memory-safe") {
            let fn := index
            let sn := sub(size, 1)
            let buf := mload(0x40)
            mstore8(buf, 0x01)
            let ptr := add(siblings, 0x20)
            let end := add(ptr, shl(5, mload(siblings)))
            for {} lt(ptr, end) { ptr := add(ptr, 0x20) } {
                let p := mload(ptr)
                switch or(and(fn, 1), eq(fn, sn))
                case 0 {
                    mstore(add(buf, 0x01), r)
                    mstore(add(buf, 0x21), p)
                }
                default {
                    mstore(add(buf, 0x01), p)
                    mstore(add(buf, 0x21), r)
                    for {} and(iszero(and(fn, 1)), iszero(iszero(fn))) {} {
                        fn := shr(1, fn)
                        sn := shr(1, sn)
                    }
                }
                if iszero(staticcall(gas(), 0x02, buf, 0x41, add(buf, 0x60), 0x20)) { revert(0, 0) }
                r := mload(add(buf, 0x60))
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
        }
    }

    function test_verifyInclusion_depth20Gas_succeeds() public {
        (bytes32 leaf, uint256 index, uint256 size, bytes32[] memory sib, bytes32 root) = _depth20();
        assertEq(size, 1 << 20);

        uint256 g0 = gasleft();
        bool ok = MerkleLog.verifyInclusion(root, leaf, index, size, sib);
        uint256 keccakGas = g0 - gasleft();
        assertTrue(ok, "python depth-20 proof accepted");

        g0 = gasleft();
        bytes32 shaRoot = _sha256Root(leaf, index, size, sib);
        uint256 shaGas = g0 - gasleft();
        assertNotEq(shaRoot, bytes32(0));

        g0 = gasleft();
        ok = h.verifyInclusion(root, leaf, index, size, sib);
        uint256 externalGas = g0 - gasleft();
        assertTrue(ok);

        emit log_named_uint("depth20 keccak verifyInclusion (internal, memory)", keccakGas);
        emit log_named_uint("depth20 sha256 same walk (internal, memory)", shaGas);
        emit log_named_uint("depth20 keccak via external call (abi decode + call)", externalGas);
        assertLt(keccakGas, shaGas);
    }
}
