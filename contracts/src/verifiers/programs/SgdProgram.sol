// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RepOpsISA} from "../../softfloat/RepOpsISA.sol";
import {OpDescriptor} from "./OpDescriptor.sol";

/// @title SgdProgram
/// @notice The canonical scalar program of one element of `sgd` (protocol/repops/optim.py
///         `_sgd_kernel` on the tracing backend), p' = p - lr * g:
///
///             r0 = FMUL #lr, g[e];  r0 = FSUB p[e], r0
///
///         lr changes by step (the schedule), so it is never a descriptor attribute: it comes from
///         the op's per-step table, committed in the descriptor's `programRoot` (leaf t:
///         `abi.encode(uint256 t, uint32 lr)`), opened in the step proof at the game's training step.
// Narrowing casts below are exact: element indices are below the element count of a tensor, which
// OpDescriptor.decode bounds to 2^32.
// forge-lint: disable-start(unsafe-typecast)
library SgdProgram {
    /// @notice The descriptor's shapes or attributes do not fit sgd.
    error BadSgdShapes();
    /// @notice The element is not an element of the op's output.
    error ElementOutOfRange(uint256 element, uint256 numel);
    /// @notice The program has no instruction `m`.
    error InstructionOutOfRange(uint256 m, uint256 length);

    uint256 internal constant KIND = 14;
    uint256 internal constant LENGTH = 2;
    uint256 internal constant REGISTERS = 1;

    /// @notice Checks the descriptor (two inputs of one shape, no step-invariant attribute) and the element.
    function check(OpDescriptor.Op memory op, uint256 element) internal pure {
        if (op.shapes.length != 2 || op.attrs.length != 0) revert BadSgdShapes();
        uint32[] memory a = op.shapes[0];
        uint32[] memory b = op.shapes[1];
        if (a.length != b.length) revert BadSgdShapes();
        for (uint256 d; d < a.length; ++d) {
            if (a[d] != b[d]) revert BadSgdShapes();
        }
        uint256 numel = OpDescriptor.outputNumel(op);
        if (element >= numel) revert ElementOutOfRange(element, numel);
    }

    /// @notice Instruction `m` of element `element` at a step with learning rate bits `lr` (the
    ///         caller has checked the descriptor and the element with `check`).
    function instructionAt(uint256 element, uint256 m, uint32 lr) internal pure returns (RepOpsISA.Instr memory ins) {
        if (m >= LENGTH) revert InstructionOutOfRange(m, LENGTH);
        if (m == 0) {
            ins.opcode = RepOpsISA.FMUL;
            ins.srcs[0] = RepOpsISA.Operand(RepOpsISA.KIND_IMMEDIATE, 0, lr);
            ins.srcs[1] = RepOpsISA.Operand(RepOpsISA.KIND_INPUT, 1, uint32(element));
        } else {
            ins.opcode = RepOpsISA.FSUB;
            ins.srcs[0] = RepOpsISA.Operand(RepOpsISA.KIND_INPUT, 0, uint32(element));
            ins.srcs[1] = RepOpsISA.Operand(RepOpsISA.KIND_REGISTER, 0, 0);
        }
    }
}
// forge-lint: disable-end(unsafe-typecast)
