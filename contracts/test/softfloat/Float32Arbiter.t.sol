// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32Arbiter} from "../../src/Float32Arbiter.sol";
import {IFloat32Arbiter} from "../../src/softfloat/IFloat32Arbiter.sol";
import {Float32} from "../../src/softfloat/Float32.sol";
import {RepOpsISA} from "../../src/softfloat/RepOpsISA.sol";
import {SoftFloatTestBase} from "./SoftFloatTestBase.sol";

/// @notice The deployable arbiter forwards to the library unchanged, one op or a batch at a time.
contract Float32ArbiterTest is SoftFloatTestBase {
    Float32Arbiter internal arbiter = new Float32Arbiter();

    function test_add_forwardsToLibrary_succeeds(uint32 a, uint32 b) public view {
        _eq(arbiter.add(a, b), Float32.add(a, b));
        _eq(arbiter.sub(a, b), Float32.sub(a, b));
        _eq(arbiter.mul(a, b), Float32.mul(a, b));
        _eq(arbiter.div(a, b), Float32.div(a, b));
        _eq(arbiter.lt(a, b), Float32.lt(a, b));
        _eq(arbiter.le(a, b), Float32.le(a, b));
        _eq(arbiter.eq(a, b), Float32.eq(a, b));
        _eq(arbiter.min(a, b), Float32.min(a, b));
        _eq(arbiter.max(a, b), Float32.max(a, b));
        _eq(arbiter.mulAdd(a, b, a), Float32.mulAdd(a, b, a));
        _eq(arbiter.toInt32(a), Float32.toInt32(a));
        _eq(arbiter.fromInt32(int32(uint32(b))), Float32.fromInt32(int32(uint32(b))));
    }

    function test_addBatch_matchesSingleCalls_succeeds(uint32 a0, uint32 a1, uint32 b0, uint32 b1) public view {
        uint32[] memory a = new uint32[](2);
        uint32[] memory b = new uint32[](2);
        (a[0], a[1], b[0], b[1]) = (a0, a1, b0, b1);
        uint32[] memory sums = arbiter.addBatch(a, b);
        uint32[] memory diffs = arbiter.subBatch(a, b);
        uint32[] memory prods = arbiter.mulBatch(a, b);
        uint32[] memory quots = arbiter.divBatch(a, b);
        uint8[] memory cmps = arbiter.cmpBatch(a, b);
        for (uint256 i; i < 2; ++i) {
            _eq(sums[i], arbiter.add(a[i], b[i]));
            _eq(diffs[i], arbiter.sub(a[i], b[i]));
            _eq(prods[i], arbiter.mul(a[i], b[i]));
            _eq(quots[i], arbiter.div(a[i], b[i]));
            _eq(cmps[i] & 1 != 0, arbiter.lt(a[i], b[i]));
            _eq(cmps[i] & 2 != 0, arbiter.le(a[i], b[i]));
            _eq(cmps[i] & 4 != 0, arbiter.eq(a[i], b[i]));
        }
    }

    function test_execute_forwardsToIsa_succeeds(uint8 opcode, uint32 a, uint32 b, uint32 c) public view {
        VM.assume(RepOpsISA.isExecutable(opcode));
        _eq(arbiter.execute(opcode, a, b, c), RepOpsISA.execute(opcode, a, b, c));
        uint8[] memory ops = new uint8[](1);
        uint32[] memory x0 = new uint32[](1);
        uint32[] memory x1 = new uint32[](1);
        uint32[] memory x2 = new uint32[](1);
        (ops[0], x0[0], x1[0], x2[0]) = (opcode, a, b, c);
        _eq(arbiter.executeBatch(ops, x0, x1, x2)[0], RepOpsISA.execute(opcode, a, b, c));
    }

    function test_executeBatch_lengthMismatch_reverts() public {
        uint8[] memory ops = new uint8[](2);
        uint32[] memory two = new uint32[](2);
        uint32[] memory one = new uint32[](1);
        VM.expectRevert(abi.encodeWithSelector(IFloat32Arbiter.BatchLengthMismatch.selector, 2, 1));
        arbiter.executeBatch(ops, two, two, one);
    }

    function test_execute_unknownOpcode_reverts() public {
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.UnknownOpcode.selector, uint8(0xFF)));
        arbiter.execute(0xFF, 0, 0, 0);
    }

    function test_addBatch_lengthMismatch_reverts() public {
        uint32[] memory a = new uint32[](3);
        uint32[] memory b = new uint32[](2);
        VM.expectRevert(abi.encodeWithSelector(IFloat32Arbiter.BatchLengthMismatch.selector, 3, 2));
        arbiter.addBatch(a, b);
    }

    function test_cmpBatch_lengthMismatch_reverts() public {
        uint32[] memory a = new uint32[](1);
        uint32[] memory b = new uint32[](4);
        VM.expectRevert(abi.encodeWithSelector(IFloat32Arbiter.BatchLengthMismatch.selector, 1, 4));
        arbiter.cmpBatch(a, b);
    }
}
