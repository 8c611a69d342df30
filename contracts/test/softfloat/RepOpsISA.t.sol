// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RepOpsISA} from "../../src/softfloat/RepOpsISA.sol";
import {Float32} from "../../src/softfloat/Float32.sol";
import {SoftFloatTestBase} from "./SoftFloatTestBase.sol";

/// @notice Calls RepOpsISA.execute externally so that its reverts can be expected.
contract RepOpsISAHarness {
    function execute(uint8 opcode, uint32 x0, uint32 x1, uint32 x2) external pure returns (uint32) {
        return RepOpsISA.execute(opcode, x0, x1, x2);
    }

    function decode(bytes21 encoded) external pure returns (RepOpsISA.Instr memory) {
        return RepOpsISA.decode(encoded);
    }
}

/// @notice The instruction dispatcher: opcode numbers map to the right operation with the operands
///         in the ISA's order, integer instructions wrap modulo 2^32, and LOAD / unknown opcodes
///         revert. (The differential pytest suite checks it against protocol/repops/isa.py.)
contract RepOpsISATest is SoftFloatTestBase {
    RepOpsISAHarness internal harness = new RepOpsISAHarness();

    function test_execute_floatOpcodes_succeeds(uint32 a, uint32 b, uint32 c) public pure {
        _eq(RepOpsISA.execute(0x01, a, b, c), Float32.add(a, b));
        _eq(RepOpsISA.execute(0x02, a, b, c), Float32.sub(a, b));
        _eq(RepOpsISA.execute(0x03, a, b, c), Float32.mul(a, b));
        _eq(RepOpsISA.execute(0x04, a, b, c), Float32.div(a, b));
        _eq(RepOpsISA.execute(0x05, a, b, c), Float32.add(a, Float32.mul(b, c)));
        _eq(RepOpsISA.execute(0x06, a, b, c), Float32.neg(a));
        _eq(RepOpsISA.execute(0x07, a, b, c), Float32.abs(a));
        _eq(RepOpsISA.execute(0x08, a, b, c), Float32.min(a, b));
        _eq(RepOpsISA.execute(0x09, a, b, c), Float32.max(a, b));
        _eq(RepOpsISA.execute(0x10, a, b, c), Float32.lt(a, b) ? 1 : 0);
        _eq(RepOpsISA.execute(0x11, a, b, c), Float32.le(a, b) ? 1 : 0);
        _eq(RepOpsISA.execute(0x12, a, b, c), Float32.eq(a, b) ? 1 : 0);
        _eq(RepOpsISA.execute(0x13, a, b, c), a != 0 ? b : c);
        _eq(RepOpsISA.execute(0x18, a, b, c), Float32.fromInt32(int32(a)));
        _eq(RepOpsISA.execute(0x19, a, b, c), uint32(Float32.toInt32(a)));
    }

    function test_execute_integerOpcodes_succeeds() public pure {
        _eq(RepOpsISA.execute(0x20, 0xFFFFFFFF, 2, 0), 1); // wraps
        _eq(RepOpsISA.execute(0x21, 1, 2, 0), 0xFFFFFFFF);
        _eq(RepOpsISA.execute(0x22, 0x10000, 0x10001, 0), 0x10000);
        _eq(RepOpsISA.execute(0x23, 0xF0F0, 0xFF00, 0), 0xF000);
        _eq(RepOpsISA.execute(0x24, 0xF0F0, 0xFF00, 0), 0xFFF0);
        _eq(RepOpsISA.execute(0x25, 0xF0F0, 0xFF00, 0), 0x0FF0);
        _eq(RepOpsISA.execute(0x26, 0x80000001, 33, 0), 2); // shift count masked to 1
        _eq(RepOpsISA.execute(0x27, 0x80000000, 31, 0), 1);
        _eq(RepOpsISA.execute(0x28, 0x80000000, 31, 0), 0xFFFFFFFF); // arithmetic
        _eq(RepOpsISA.execute(0x28, 0x40000000, 30, 0), 1);
        _eq(RepOpsISA.execute(0x29, 7, 7, 0), 1);
        _eq(RepOpsISA.execute(0x2A, 0xFFFFFFFF, 0, 0), 1); // -1 < 0 signed
        _eq(RepOpsISA.execute(0x2A, 0, 0xFFFFFFFF, 0), 0);
    }

    function test_execute_conversions_succeeds() public pure {
        _eq(RepOpsISA.execute(0x18, 0xFFFFFFFF, 0, 0), 0xBF800000); // int32 -1 -> -1.0
        _eq(RepOpsISA.execute(0x19, 0xC0600000, 0, 0), 0xFFFFFFFC); // -3.5 -> -4
        _eq(RepOpsISA.execute(0x19, 0x7FC00000, 0, 0), 0); // NaN -> 0
    }

    function test_execute_load_reverts() public {
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.UnknownOpcode.selector, uint8(0x30)));
        harness.execute(0x30, 0, 0, 0);
    }

    function test_execute_unknownOpcode_reverts(uint8 opcode) public {
        VM.assume(!RepOpsISA.isExecutable(opcode));
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.UnknownOpcode.selector, opcode));
        harness.execute(opcode, 1, 2, 3);
    }

    function test_isExecutable_listsTheIsa_succeeds() public pure {
        uint256 count;
        for (uint256 op; op < 256; ++op) {
            if (RepOpsISA.isExecutable(uint8(op))) ++count;
        }
        _eq(count == 26, true); // 27 RepOps opcodes, LOAD excluded
    }

    // ------------------------------------------------------------------------------------- decode

    /// @dev The 21-byte encoding of isa.py's `Instr.encode`, built field by field.
    function _enc(uint8 op, uint16 dst, uint8[3] memory kinds, uint8[3] memory slots, uint32[3] memory values)
        internal
        pure
        returns (bytes21)
    {
        return bytes21(
            abi.encodePacked(
                op, dst, kinds[0], slots[0], values[0], kinds[1], slots[1], values[1], kinds[2], slots[2], values[2]
            )
        );
    }

    function test_decode_fmuladd_succeeds() public pure {
        // r7 = FMULADD r3, in1[1234], #3f800000
        bytes21 enc = _enc(0x05, 7, [uint8(1), 2, 3], [uint8(0), 1, 0], [uint32(3), 1234, 0x3F800000]);
        RepOpsISA.Instr memory ins = RepOpsISA.decode(enc);
        _eq(ins.opcode == 0x05 && ins.dst == 7, true);
        _eq(ins.srcs[0].kind == 1 && ins.srcs[0].value == 3, true);
        _eq(ins.srcs[1].kind == 2 && ins.srcs[1].slot == 1 && ins.srcs[1].value == 1234, true);
        _eq(ins.srcs[2].kind == 3 && ins.srcs[2].value == 0x3F800000, true);
    }

    function test_decode_unaryLeavesNoneOperands_succeeds() public pure {
        bytes21 enc = _enc(0x06, 0xFFFF, [uint8(1), 0, 0], [uint8(0), 0, 0], [uint32(9), 0, 0]);
        RepOpsISA.Instr memory ins = RepOpsISA.decode(enc);
        _eq(ins.dst == 0xFFFF && ins.srcs[0].value == 9 && ins.srcs[1].kind == 0 && ins.srcs[2].kind == 0, true);
    }

    function test_decode_extraOperand_reverts() public {
        // FNEG takes one operand; a second one is not the canonical encoding.
        bytes21 enc = _enc(0x06, 0, [uint8(1), 3, 0], [uint8(0), 0, 0], [uint32(1), 5, 0]);
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.MalformedOperand.selector, 1, uint8(3)));
        harness.decode(enc);
    }

    function test_decode_missingOperand_reverts() public {
        bytes21 enc = _enc(0x01, 0, [uint8(1), 0, 0], [uint8(0), 0, 0], [uint32(1), 0, 0]);
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.MalformedOperand.selector, 1, uint8(0)));
        harness.decode(enc);
    }

    function test_decode_badKind_reverts() public {
        bytes21 enc = _enc(0x01, 0, [uint8(4), 1, 0], [uint8(0), 0, 0], [uint32(1), 0, 0]);
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.MalformedOperand.selector, 0, uint8(4)));
        harness.decode(enc);
    }

    function test_decode_loadSlotNotImmediate_reverts() public {
        bytes21 enc = _enc(0x30, 0, [uint8(1), 1, 0], [uint8(0), 0, 0], [uint32(0), 0, 0]);
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.MalformedOperand.selector, 0, uint8(1)));
        harness.decode(enc);
    }

    function test_decode_unknownOpcode_reverts() public {
        bytes21 enc = _enc(0x0A, 0, [uint8(1), 1, 0], [uint8(0), 0, 0], [uint32(0), 0, 0]);
        VM.expectRevert(abi.encodeWithSelector(RepOpsISA.UnknownOpcode.selector, uint8(0x0A)));
        harness.decode(enc);
    }

    function test_arity_matchesIsa_succeeds() public pure {
        _eq(RepOpsISA.arity(0x05) == 3 && RepOpsISA.arity(0x13) == 3, true);
        _eq(RepOpsISA.arity(0x06) == 1 && RepOpsISA.arity(0x07) == 1, true);
        _eq(RepOpsISA.arity(0x18) == 1 && RepOpsISA.arity(0x19) == 1, true);
        _eq(RepOpsISA.arity(0x30) == 2 && RepOpsISA.arity(0x01) == 2 && RepOpsISA.arity(0x2A) == 2, true);
    }
}
