// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title MerkleLog
/// @notice Positional RFC 9162 Merkle proofs over keccak-256: the trees behind every verigrad
///         commitment (tensor chunks, training states, the checkpoint trace, the op log, the game's
///         sequences). Leaf order is the claim, so proofs carry an index and a tree size, never
///         sorted pairs.
/// @dev Hashing (RFC 9162 §2.1.1, identical to protocol/commit/hashing.py):
///
///          leaf = keccak256(0x00 || data)        node = keccak256(0x01 || left || right)
///          empty tree root = keccak256("")
///
///      A tree of n > 1 leaves splits at k, the largest power of two below n; the left part is
///      always a complete tree. Five leaves:
///
///                        root
///                       /    \
///                  n(0..4)    d4          k = 4: d4 is promoted, it has no sibling yet
///                  /     \
///              n(0,1)   n(2,3)
///              /   \     /   \
///             d0   d1   d2   d3
///
///      An inclusion proof of leaf i in a tree of `size` leaves is the RFC 9162 §2.1.3 audit path:
///      the sibling hashes bottom-up, levels where the node was promoted skipped (leaf 4 above:
///      [n(0..4)]; leaf 1: [d0, n(2,3), d4]). The verifier rebuilds the root from (index, size),
///      which fix every left/right decision. The size must come from the caller's own record of
///      the commitment: paths of equal shape cannot tell sizes apart (leaf 0 of a 3-leaf tree has
///      the same path as leaf 0 of a 4-leaf tree), though they always bind the value at the index.
///
///      Consistency proofs (RFC 9162 §2.1.4) show that the tree of `newSize` leaves extends the
///      tree of `oldSize` leaves: used for progress commitments of the checkpoint trace.
library MerkleLog {
    // =============================================================================================
    //                                          ERRORS
    // =============================================================================================

    /// @notice The leaf index is not below the tree size.
    error IndexOutOfRange(uint256 index, uint256 size);
    /// @notice The path has more siblings than a leaf at this index of a tree this size can have.
    error PathTooLong(uint256 length, uint256 used);
    /// @notice The path ends before reaching the root of a tree this size.
    error PathTooShort(uint256 length);

    // =============================================================================================
    //                                         CONSTANTS
    // =============================================================================================

    /// @notice Root of the empty tree: keccak256("").
    bytes32 internal constant EMPTY_ROOT = 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470;

    uint256 private constant _OK = 0;
    uint256 private constant _OUT_OF_RANGE = 1;
    uint256 private constant _TOO_LONG = 2;
    uint256 private constant _TOO_SHORT = 3;

    // =============================================================================================
    //                                          HASHING
    // =============================================================================================

    /// @notice RFC 9162 leaf hash of arbitrary data: keccak256(0x00 || data).
    function hashLeaf(bytes memory data) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @notice RFC 9162 leaf hash of a 32-byte value (a root, a tensor id): keccak256(0x00 || value).
    function hashLeaf(bytes32 value) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            // Scratch use of the free memory area; the free memory pointer is not moved.
            let p := mload(0x40)
            mstore8(p, 0x00)
            mstore(add(p, 1), value)
            h := keccak256(p, 33)
        }
    }

    /// @notice RFC 9162 interior node hash: keccak256(0x01 || left || right).
    function hashNode(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            // Scratch use of the free memory area; the free memory pointer is not moved.
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            h := keccak256(p, 65)
        }
    }

    // =============================================================================================
    //                                         INCLUSION
    // =============================================================================================

    /// @notice The root implied by an audit path; reverts if the path cannot belong to (index, size).
    /// @param leafHash The leaf's hash (see `hashLeaf`), not its data.
    /// @param index Zero-based position of the leaf.
    /// @param size Number of leaves in the tree, taken from the commitment, not from the prover.
    /// @param siblings RFC 9162 audit path, bottom-up.
    function rootFromInclusion(bytes32 leafHash, uint256 index, uint256 size, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32 root)
    {
        uint256 status;
        uint256 used;
        (status, used, root) = _walkInclusion(leafHash, index, size, siblings);
        if (status == _OUT_OF_RANGE) revert IndexOutOfRange(index, size);
        if (status == _TOO_LONG) revert PathTooLong(siblings.length, used);
        if (status == _TOO_SHORT) revert PathTooShort(siblings.length);
    }

    /// @notice Whether `leafHash` is leaf `index` of the tree of `size` leaves with root `root`.
    /// @dev Never reverts on proof contents: a malformed proof is simply not valid.
    function verifyInclusion(bytes32 root, bytes32 leafHash, uint256 index, uint256 size, bytes32[] memory siblings)
        internal
        pure
        returns (bool)
    {
        (uint256 status,, bytes32 computed) = _walkInclusion(leafHash, index, size, siblings);
        return status == _OK && computed == root;
    }

    /// @notice `verifyInclusion` for a 32-byte leaf value (a state root, a tensor id, a log root).
    function verifyValue(bytes32 root, bytes32 value, uint256 index, uint256 size, bytes32[] memory siblings)
        internal
        pure
        returns (bool)
    {
        return verifyInclusion(root, hashLeaf(value), index, size, siblings);
    }

    /// @dev RFC 9162 §2.1.3.2. `fn` walks the leaf's position up the tree and `sn` the last leaf's;
    ///      when they meet on an even position the node had no right sibling at those levels
    ///      (it was promoted), so both are shifted until `fn` is a right child or the root's left.
    ///      The loop is assembly because it runs once per level of every proof in a dispute: the
    ///      same loop in Solidity (bounds checks, internal calls) cost 7,979 gas for a depth-20
    ///      proof against 5,660 here. It mirrors `root_from_inclusion` in protocol/commit/merkle.py
    ///      step for step, with the same variable names; the forge tests fuzz it against a
    ///      recursive RFC 9162 reference.
    function _walkInclusion(bytes32 leafHash, uint256 index, uint256 size, bytes32[] memory siblings)
        private
        pure
        returns (uint256 status, uint256 used, bytes32 r)
    {
        if (index >= size) return (_OUT_OF_RANGE, 0, bytes32(0));
        r = leafHash;
        assembly ("memory-safe") {
            let fn := index
            let sn := sub(size, 1) // cannot underflow: size > index >= 0
            // Scratch buffer past the free memory pointer: 0x01 || left || right.
            let buf := mload(0x40)
            mstore8(buf, 0x01)
            let ptr := add(siblings, 0x20)
            let end := add(ptr, shl(5, mload(siblings)))
            for {} lt(ptr, end) { ptr := add(ptr, 0x20) } {
                if iszero(sn) {
                    status := _TOO_LONG
                    break
                }
                let p := mload(ptr)
                switch or(and(fn, 1), eq(fn, sn))
                case 0 {
                    // fn is a left child with a right sibling: node(r, p).
                    mstore(add(buf, 0x01), r)
                    mstore(add(buf, 0x21), p)
                }
                default {
                    // fn is a right child, or the last node of its level: node(p, r), then climb
                    // past the levels where this node was promoted.
                    mstore(add(buf, 0x01), p)
                    mstore(add(buf, 0x21), r)
                    for {} and(iszero(and(fn, 1)), iszero(iszero(fn))) {} {
                        fn := shr(1, fn)
                        sn := shr(1, sn)
                    }
                }
                r := keccak256(buf, 0x41)
                fn := shr(1, fn)
                sn := shr(1, sn)
            }
            used := shr(5, sub(ptr, add(siblings, 0x20)))
            if iszero(status) {
                if iszero(iszero(sn)) { status := _TOO_SHORT }
            }
        }
        if (status != _OK) r = bytes32(0);
    }

    // =============================================================================================
    //                                           APPEND
    // =============================================================================================

    /// @notice Whether `newRoot` is the tree `oldRoot` of `oldSize` leaves with `leafHash` appended.
    /// @dev One audit path proves both sides: it is the path of leaf `oldSize` (the last) in the tree
    ///      of `oldSize + 1` leaves, so all its siblings lie to the left and are exactly the roots of
    ///      the complete subtrees of the old tree, smallest first; folding them right to left gives
    ///      the old root. The one-step check of an append-only log (one op output appended) and of
    ///      a trace extended by one checkpoint. Never reverts on proof contents.
    /// @param siblings `AppendOnlyTree.append_proof(oldSize).siblings` in Python.
    function verifyAppend(
        bytes32 oldRoot,
        bytes32 newRoot,
        uint256 oldSize,
        bytes32 leafHash,
        bytes32[] memory siblings
    ) internal pure returns (bool) {
        if (oldSize == type(uint256).max) return false;
        (uint256 status,, bytes32 computed) = _walkInclusion(leafHash, oldSize, oldSize + 1, siblings);
        if (status != _OK || computed != newRoot) return false;
        uint256 n = siblings.length;
        if (n == 0) return oldRoot == EMPTY_ROOT;
        bytes32 r = siblings[0];
        for (uint256 i = 1; i < n; ++i) {
            r = hashNode(siblings[i], r);
        }
        return r == oldRoot;
    }

    // =============================================================================================
    //                                        CONSISTENCY
    // =============================================================================================

    /// @notice Whether the tree `newRoot` of `newSize` leaves extends the tree `oldRoot` of `oldSize`.
    /// @param path RFC 9162 §2.1.4 consistency proof (empty when the sizes are equal).
    /// @dev Never reverts on proof contents; sizes with 0 < oldSize <= newSize are required to be valid.
    function verifyConsistency(
        uint256 oldSize,
        uint256 newSize,
        bytes32 oldRoot,
        bytes32 newRoot,
        bytes32[] memory path
    ) internal pure returns (bool) {
        if (oldSize == 0 || oldSize > newSize) return false;
        if (oldSize == newSize) return path.length == 0 && oldRoot == newRoot;

        uint256 i;
        bytes32 fr;
        bytes32 sr;
        if (oldSize & (oldSize - 1) == 0) {
            // The old tree is a complete subtree of the new one: its root starts the walk.
            fr = oldRoot;
            sr = oldRoot;
        } else {
            if (path.length == 0) return false;
            fr = path[0];
            sr = path[0];
            i = 1;
        }
        uint256 fn = oldSize - 1; // cannot underflow: oldSize > 0
        uint256 sn = newSize - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        for (; i < path.length; ++i) {
            if (sn == 0) return false;
            bytes32 c = path[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = hashNode(c, fr);
                sr = hashNode(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = hashNode(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == oldRoot && sr == newRoot;
    }
}
