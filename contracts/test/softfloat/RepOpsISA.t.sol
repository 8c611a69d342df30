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
}
