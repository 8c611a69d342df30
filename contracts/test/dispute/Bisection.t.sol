// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";

/// @notice The game's position arithmetic and encodings.
contract BisectionTest is TestBase {
    function test_queryPositions_binary_succeeds() public pure {
        uint256[] memory p = Bisection.queryPositions(0, 4, 2);
        assertEq(p.length, 1);
        assertEq(p[0], 2);
        p = Bisection.queryPositions(3, 8, 2);
        assertEq(p.length, 1);
        assertEq(p[0], 5);
    }

    function test_queryPositions_kary_succeeds() public pure {
        uint256[] memory p = Bisection.queryPositions(0, 65_536, 4);
        assertEq(p.length, 3);
        assertEq(p[0], 16_384);
        assertEq(p[1], 32_768);
        assertEq(p[2], 49_152);
    }

    function test_queryPositions_shortInterval_succeeds() public pure {
        uint256[] memory p = Bisection.queryPositions(10, 13, 8);
        assertEq(p.length, 2);
        assertEq(p[0], 11);
        assertEq(p[1], 12);
        assertEq(Bisection.queryPositions(10, 11, 8).length, 0);
    }

    function testFuzz_queryPositions_interiorAndIncreasing_succeeds(uint256 lo, uint256 n, uint256 k) public pure {
        lo = bound(lo, 0, 1 << 60);
        n = bound(n, 2, 1 << 40);
        k = bound(k, 2, 64);
        uint256[] memory p = Bisection.queryPositions(lo, lo + n, k);
        assertEq(p.length, n <= k ? n - 1 : k - 1);
        uint256 prev = lo;
        for (uint256 i; i < p.length; ++i) {
            assertGt(p[i], prev);
            prev = p[i];
        }
        assertLt(prev, lo + n);
        // No sub-interval is longer than ceil(n / k).
        for (uint256 i; i <= p.length; ++i) {
            (uint256 a, uint256 b) = Bisection.subInterval(lo, lo + n, p, i);
            assertLe(b - a, (n + k - 1) / k);
        }
    }

    function test_pinpointPositions_succeeds() public pure {
        uint256[] memory p = Bisection.pinpointPositions(0, 10, 4);
        assertEq(p.length, 2);
        assertEq(p[0], 4);
        assertEq(p[1], 5);
        p = Bisection.pinpointPositions(0, 10, 0);
        assertEq(p.length, 1);
        assertEq(p[0], 1);
        p = Bisection.pinpointPositions(0, 10, 9);
        assertEq(p.length, 1);
        assertEq(p[0], 9);
        assertEq(Bisection.pinpointPositions(0, 1, 0).length, 0);
    }

    function test_subInterval_ends_succeeds() public pure {
        uint256[] memory p = new uint256[](2);
        p[0] = 3;
        p[1] = 6;
        (uint256 a, uint256 b) = Bisection.subInterval(0, 9, p, 0);
        assertEq(a, 0);
        assertEq(b, 3);
        (a, b) = Bisection.subInterval(0, 9, p, 1);
        assertEq(a, 3);
        assertEq(b, 6);
        (a, b) = Bisection.subInterval(0, 9, p, 2);
        assertEq(a, 6);
        assertEq(b, 9);
    }

    function test_opLeaf_encoding_succeeds() public pure {
        bytes32 r = keccak256("log");
        assertEq(Bisection.opLeaf(r, 7), keccak256(abi.encode(r, uint256(7))));
    }

    function testFuzz_rootOfValues_matchesSpecTree_succeeds(uint256 seed, uint256 n) public pure {
        n = bound(n, 0, 40);
        bytes32[] memory values = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            values[i] = keccak256(abi.encode(seed, i));
        }
        bytes32 expected = MerkleBuilder.root(values);
        bytes32[] memory copy = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            copy[i] = values[i];
        }
        assertEq(Bisection.rootOfValues(copy), expected);
        // And every value opens against it with the contracts' verifier.
        for (uint256 i; i < n; ++i) {
            assertTrue(MerkleLog.verifyValue(expected, values[i], i, n, MerkleBuilder.proof(values, i)));
        }
    }

    function testFuzz_consistency_builderAgreesWithVerifier_succeeds(uint256 seed, uint256 m, uint256 n) public pure {
        n = bound(n, 1, 33);
        m = bound(m, 1, n);
        bytes32[] memory values = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            values[i] = keccak256(abi.encode(seed, i));
        }
        bytes32[] memory path = MerkleBuilder.consistency(values, m, n);
        assertTrue(
            MerkleLog.verifyConsistency(m, n, MerkleBuilder.rootAt(values, m), MerkleBuilder.rootAt(values, n), path)
        );
    }
}
