// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RepOpsISA} from "../../softfloat/RepOpsISA.sol";
import {OpDescriptor} from "./OpDescriptor.sol";

/// @title AdamwProgram
/// @notice The canonical scalar program of one element of `adamw` (protocol/repops/optim.py
///         `_adamw_kernel` on the tracing backend): p' = (p - lrwd * p) - lr * ((m / bc1) /
///         (sqrt(v / bc2) + eps)), the square root as fmath.sqrt's 37 straight-line instructions.
///         The program is the same for every element but for its input indices (every input is
///         read at the element itself) and the same for every step but for four immediates that
///         the training step fixes: lr, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t and lrwd = lr * wd
///         (binary32, t = step + 1). Those come from the op's per-step table, committed in the
///         descriptor's `programRoot` (leaf t: `abi.encode(t, lr, bc1, bc2, lrwd)`), opened in the
///         step proof at the game's training step; eps is the descriptor's attribute word 2
///         (attributes beta1, beta2, eps, weight_decay).
/// @dev TEMPLATE is the tracer's program of element 0 with those five immediates zeroed, 44
///      instructions of 21 bytes (`Instr.encode`); tests/test_onestep_programs.py proves the patched
///      program equal to the tracer's for other elements, steps and attributes.
// Narrowing casts below are exact: register numbers are below 16, and element and flat indices are
// below the element count of a tensor, which OpDescriptor.decode bounds to 2^32.
// forge-lint: disable-start(unsafe-typecast)
library AdamwProgram {
    /// @notice The descriptor's shapes or attributes do not fit adamw.
    error BadAdamwShapes();
    /// @notice The element is not an element of the op's output.
    error ElementOutOfRange(uint256 element, uint256 numel);
    /// @notice The program has no instruction `m`.
    error InstructionOutOfRange(uint256 m, uint256 length);

    uint256 internal constant KIND = 13;
    uint256 internal constant LENGTH = 44;
    uint256 internal constant REGISTERS = 10;

    /// @notice The step's immediates, as in the per-step table.
    struct StepConstants {
        uint32 lr;
        uint32 bc1;
        uint32 bc2;
        uint32 lrwd;
    }

    bytes internal constant TEMPLATE = bytes.concat(
        hex"040000020200000000030000000000000000000000120001010000000000010000000000000000000000100002010000000000030000000000000000000000120003010000000000030000000000000000000000",
        hex"12000401000000000003007f80000000000000000003000501000000000003004b800000000000000000100006010000000000030000800000000000000000130005010000000006010000000005010000000000",
        hex"2700070100000000050300000000170000000000002300070100000000070300000000ff00000000000021000701000000000703000000007f000000000000280008010000000007030000000001000000000000",
        hex"20000901000000000803000000007f000000000000260009010000000009030000000017000000000000260008010000000008030000000001000000000000210007010000000007010000000008000000000000",
        hex"20000701000000000703000000007f0000000000002600070100000000070300000000170000000000002300050100000000050300007fffff000000000000240005010000000005010000000007000000000000",
        hex"05000703003f2aaaab03003eaaaaab01000000000504000801000000000501000000000700000000000001000701000000000701000000000800000000000003000703003f000000010000000007000000000000",
        hex"04000801000000000501000000000700000000000001000701000000000701000000000800000000000003000703003f000000010000000007000000000000040005010000000005010000000007000000000000",
        hex"01000501000000000701000000000500000000000003000503003f000000010000000005000000000000030005010000000005010000000009000000000000030007010000000005030039800000000000000000",
        hex"13000501000000000601000000000701000000000513000401000000000401000000000001000000000513000001000000000301000000000001000000000413000001000000000203007fc00000010000000000",
        hex"13000001000000000101000000000003007fc00000010000010000000000030000000000000000000000040001020100000000030000000000000000000000040000010000000001010000000000000000000000",
        hex"030000030000000000010000000000000000000000030001030000000000020000000000000000000000020001020000000000010000000001000000000000020000010000000001010000000000000000000000"
    );

    /// @notice Checks the descriptor (three inputs of one shape, four attribute words) and the element.
    function check(OpDescriptor.Op memory op, uint256 element) internal pure {
        if (op.shapes.length != 3 || op.attrs.length != 4 || op.attrs[2] > type(uint32).max) revert BadAdamwShapes();
        uint32[] memory s = op.shapes[0];
        for (uint256 i = 1; i < 3; ++i) {
            uint32[] memory o = op.shapes[i];
            if (o.length != s.length) revert BadAdamwShapes();
            for (uint256 d; d < s.length; ++d) {
                if (o[d] != s[d]) revert BadAdamwShapes();
            }
        }
        uint256 numel = OpDescriptor.outputNumel(op);
        if (element >= numel) revert ElementOutOfRange(element, numel);
    }

    /// @notice Instruction `m` of element `element` at a step with immediates `c` (the caller has
    ///         checked the descriptor and the element with `check`).
    function instructionAt(OpDescriptor.Op memory op, uint256 element, uint256 m, StepConstants memory c)
        internal
        pure
        returns (RepOpsISA.Instr memory ins)
    {
        if (m >= LENGTH) revert InstructionOutOfRange(m, LENGTH);
        bytes memory t = TEMPLATE;
        bytes21 word;
        assembly ("memory-safe") {
            word := mload(add(add(t, 32), mul(m, 21)))
        }
        ins = RepOpsISA.decode(word);
        for (uint256 i; i < 3; ++i) {
            if (ins.srcs[i].kind == RepOpsISA.KIND_INPUT) ins.srcs[i].value = uint32(element);
        }
        if (m == 0) ins.srcs[1].value = c.bc2;
        else if (m == 37) ins.srcs[1].value = uint32(op.attrs[2]); // eps
        else if (m == 38) ins.srcs[1].value = c.bc1;
        else if (m == 40) ins.srcs[0].value = c.lr;
        else if (m == 41) ins.srcs[0].value = c.lrwd;
    }
}
// forge-lint: disable-end(unsafe-typecast)
