// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleLog} from "../merkle/MerkleLog.sol";

/// @title Bisection
/// @notice Pure position arithmetic of the dispute game: which leaves a k-ary query or a pinpoint
///         asks for, which interval a choice selects, and the leaf/root encodings the levels share.
///
///         An interval [lo, hi] with hi - lo = n > 1 and degree k. The query asks for the interior
///         points p_i = lo + floor(n * i / k), i = 1 .. k - 1 (all of lo + 1 .. hi - 1 when n <= k),
///         which cut it into sub-intervals 0 .. r:
///
///             lo ────── p_1 ────── p_2 ── … ── p_r ────── hi
///              └─── 0 ───┘└─── 1 ───┘          └─── r ───┘
///
///         A pinpoint at position p (lo <= p < hi) asks for p and p + 1 instead (those strictly
///         inside the interval), cutting it into at most three: [lo, p], [p, p + 1], [p + 1, hi].
library Bisection {
    /// @notice Positions are strictly increasing and strictly between lo and hi.
    /// @dev When n > k, n * i / k grows by at least 1 per i (n / k > 1), so the points are distinct
    ///      and interior: 0 < n * i / k < n for 0 < i < k.
    function queryPositions(uint256 lo, uint256 hi, uint256 k) internal pure returns (uint256[] memory pos) {
        uint256 n = hi - lo; // checked: reverts on an inverted interval
        if (n <= 1) return new uint256[](0);
        if (n <= k) {
            pos = new uint256[](n - 1);
            for (uint256 i; i < n - 1; ++i) {
                pos[i] = lo + 1 + i;
            }
            return pos;
        }
        pos = new uint256[](k - 1);
        for (uint256 i = 1; i < k; ++i) {
            pos[i - 1] = lo + (n * i) / k;
        }
    }

    /// @notice The pinpointed pair (p, p + 1) restricted to the interior of [lo, hi]; p in [lo, hi).
    function pinpointPositions(uint256 lo, uint256 hi, uint256 p) internal pure returns (uint256[] memory pos) {
        bool first = p > lo; // p itself is interior unless it is lo
        bool second = p + 1 < hi; // p + 1 is interior unless it is hi
        uint256 count = (first ? 1 : 0) + (second ? 1 : 0);
        pos = new uint256[](count);
        uint256 j;
        if (first) pos[j++] = p;
        if (second) pos[j] = p + 1;
    }

    /// @notice Bounds of sub-interval `index` of [lo, pos..., hi]; the caller checks index <= pos.length.
    function subInterval(uint256 lo, uint256 hi, uint256[] memory pos, uint256 index)
        internal
        pure
        returns (uint256 newLo, uint256 newHi)
    {
        newLo = index == 0 ? lo : pos[index - 1];
        newHi = index == pos.length ? hi : pos[index];
    }

    /// @notice Level 3's leaf: the op log's root together with its size, because proofs against a log
    ///         root need the size and the size must be as committed as the root.
    ///         keccak256(abi.encode(logRoot, logSize)).
    function opLeaf(bytes32 logRoot, uint256 logSize) internal pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            // Scratch space 0x00..0x3f holds the two words; nothing else lives there between statements.
            mstore(0x00, logRoot)
            mstore(0x20, logSize)
            leaf := keccak256(0x00, 0x40)
        }
    }

    /// @notice The task's `opGraphRoot`: the op descriptors' root together with the step layout's
    ///         hash. keccak256(abi.encode(graphRoot, layoutHash)).
    function graphCommitment(bytes32 graphRoot, bytes32 layoutHash) internal pure returns (bytes32 c) {
        assembly ("memory-safe") {
            // Scratch space 0x00..0x3f holds the two words; nothing else lives there between statements.
            mstore(0x00, graphRoot)
            mstore(0x20, layoutHash)
            c := keccak256(0x00, 0x40)
        }
    }

    /// @notice RFC 9162 root over 32-byte values (each hashed as a leaf), e.g. a state root over
    ///         ordered tensor ids. Overwrites `values` with intermediate hashes.
    /// @dev In-place bottom-up reduction. Pairing neighbours left to right and promoting an odd last
    ///      node gives the RFC 9162 split (largest power of two first): at every layer the left part
    ///      of each split is a complete subtree whose nodes pair among themselves.
    function rootOfValues(bytes32[] memory values) internal pure returns (bytes32) {
        uint256 n = values.length;
        if (n == 0) return MerkleLog.EMPTY_ROOT;
        for (uint256 i; i < n; ++i) {
            values[i] = MerkleLog.hashLeaf(values[i]);
        }
        while (n > 1) {
            uint256 half = n / 2;
            for (uint256 i; i < half; ++i) {
                values[i] = MerkleLog.hashNode(values[2 * i], values[2 * i + 1]);
            }
            if (n % 2 == 1) {
                values[half] = values[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
        }
        return values[0];
    }
}
