// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "../../softfloat/Float32.sol";
import {RepOpsISA} from "../../softfloat/RepOpsISA.sol";
import {OpDescriptor} from "./OpDescriptor.sol";

/// @title ElementwiseProgram
/// @notice The canonical scalar programs of the elementwise ops (each output element reads the
///         same position of its inputs), derived from the op's descriptor exactly as the RepOps
///         tracing backend generates them (protocol/repops/linalg.py, optim.py kernels run by
///         `TraceBackend`, post-order schedule):
///
///             relu            r0 = FMAX x, #0
///             relu_backward   r0 = FLT #0, x;  r0 = SELECT r0, g, #0
///             add / sub / mul r0 = FADD / FSUB / FMUL x, y      (y broadcast from the right)
///             scale           r0 = FMUL x, #c
///             adam_m          r0 = FMUL #(1-b1), g;  r1 = FMUL #b1, m;  r0 = FADD r1, r0
///             adam_v          r0 = FMUL g, g;  r0 = FMUL #(1-b2), r0;  r1 = FMUL #b2, v;  r0 = FADD r1, r0
///
///         Attribute words are the descriptor's (sorted names; lr and step, which vary by step, are
///         never in a descriptor and none of these programs reads them): scale [c]; adam_m and
///         adam_v [beta1, beta2, eps, weight_decay]. 1 - b is the binary32 subtraction the kernel does.
// Narrowing casts below are exact: register numbers are below 16, and element and flat indices are
// below the element count of a tensor, which OpDescriptor.decode bounds to 2^32.
// forge-lint: disable-start(unsafe-typecast)
library ElementwiseProgram {
    /// @notice The descriptor's shapes or attributes do not fit the op kind.
    error BadElementwiseShapes(uint256 kind);
    /// @notice The element is not an element of the op's output.
    error ElementOutOfRange(uint256 element, uint256 numel);
    /// @notice The program has no instruction `m`.
    error InstructionOutOfRange(uint256 m, uint256 length);

    uint256 internal constant SUB = 15;
    uint256 internal constant MUL = 16;
    uint256 internal constant SCALE = 17;
    uint256 internal constant ADAM_M = 11;
    uint256 internal constant ADAM_V = 12;
    uint32 private constant ONE = 0x3F800000;

    /// @notice Whether `kind` is one of this library's ops.
    function covers(uint256 kind) internal pure returns (bool) {
        return kind == OpDescriptor.RELU || kind == OpDescriptor.RELU_BACKWARD || kind == OpDescriptor.ADD
            || kind == SUB || kind == MUL || kind == SCALE || kind == ADAM_M || kind == ADAM_V;
    }

    /// @notice (instructions, registers) of every element's program.
    function shape(uint256 kind) internal pure returns (uint256 len, uint256 regs) {
        if (kind == OpDescriptor.RELU_BACKWARD) return (2, 1);
        if (kind == ADAM_M) return (3, 2);
        if (kind == ADAM_V) return (4, 2);
        return (1, 1);
    }

    /// @notice Instruction `m` of element `element`'s program.
    function instructionAt(OpDescriptor.Op memory op, uint256 element, uint256 m)
        internal
        pure
        returns (RepOpsISA.Instr memory ins)
    {
        (uint256 len,) = shape(op.kind);
        if (m >= len) revert InstructionOutOfRange(m, len);
        uint256 numel = _checkShapes(op);
        if (element >= numel) revert ElementOutOfRange(element, numel);
        uint256 kind = op.kind;
        if (kind == OpDescriptor.RELU) {
            return _ins(RepOpsISA.FMAX, 0, _input(0, element), _imm(0), _none());
        }
        if (kind == OpDescriptor.RELU_BACKWARD) {
            if (m == 0) return _ins(RepOpsISA.FLT, 0, _imm(0), _input(0, element), _none());
            return _ins(RepOpsISA.SELECT, 0, _reg(0), _input(1, element), _imm(0));
        }
        if (kind == SCALE) {
            return _ins(RepOpsISA.FMUL, 0, _input(0, element), _imm(_attr(op, 0)), _none());
        }
        if (kind == ADAM_M) {
            uint32 b1 = _attr(op, 0);
            if (m == 0) return _ins(RepOpsISA.FMUL, 0, _imm(Float32.sub(ONE, b1)), _input(1, element), _none());
            if (m == 1) return _ins(RepOpsISA.FMUL, 1, _imm(b1), _input(0, element), _none());
            return _ins(RepOpsISA.FADD, 0, _reg(1), _reg(0), _none());
        }
        if (kind == ADAM_V) {
            uint32 b2 = _attr(op, 1);
            if (m == 0) return _ins(RepOpsISA.FMUL, 0, _input(1, element), _input(1, element), _none());
            if (m == 1) return _ins(RepOpsISA.FMUL, 0, _imm(Float32.sub(ONE, b2)), _reg(0), _none());
            if (m == 2) return _ins(RepOpsISA.FMUL, 1, _imm(b2), _input(0, element), _none());
            return _ins(RepOpsISA.FADD, 0, _reg(1), _reg(0), _none());
        }
        uint8 opcode = kind == OpDescriptor.ADD ? RepOpsISA.FADD : kind == SUB ? RepOpsISA.FSUB : RepOpsISA.FMUL;
        return _ins(opcode, 0, _input(0, element), _input(1, _broadcast(op.shapes[0], op.shapes[1], element)), _none());
    }

    /// @dev Output elements; checks the inputs' shapes (all equal, or the second broadcast for add,
    ///      sub and mul) and the attribute count.
    function _checkShapes(OpDescriptor.Op memory op) private pure returns (uint256 numel) {
        uint256 kind = op.kind;
        uint256 inputs = kind == OpDescriptor.RELU || kind == SCALE ? 1 : 2;
        if (kind == OpDescriptor.ADD || kind == SUB || kind == MUL) inputs = 2;
        uint256 attrs = kind == SCALE ? 1 : (kind == ADAM_M || kind == ADAM_V) ? 4 : 0;
        if (op.shapes.length != inputs || op.attrs.length != attrs) revert BadElementwiseShapes(kind);
        uint32[] memory a = op.shapes[0];
        numel = 1;
        for (uint256 i; i < a.length; ++i) {
            numel *= a[i];
        }
        if (inputs == 2) {
            uint32[] memory b = op.shapes[1];
            bool broadcasts = kind == OpDescriptor.ADD || kind == SUB || kind == MUL;
            if (b.length > a.length || (!broadcasts && b.length != a.length)) revert BadElementwiseShapes(kind);
            uint256 off = a.length - b.length;
            for (uint256 i; i < b.length; ++i) {
                if (b[i] != a[off + i] && !(broadcasts && b[i] == 1)) revert BadElementwiseShapes(kind);
            }
        }
    }

    /// @dev Flat index in `b` (aligned right, size-1 dims broadcast) of element `element` of `a`.
    function _broadcast(uint32[] memory a, uint32[] memory b, uint256 element) private pure returns (uint256 flat) {
        uint256 off = a.length - b.length;
        uint256 stride = 1;
        uint256 rem = element;
        for (uint256 i = a.length; i > 0; --i) {
            uint256 d = i - 1;
            uint256 coord = rem % a[d];
            rem /= a[d];
            if (d >= off) {
                uint256 size = b[d - off];
                if (size != 1) flat += coord * stride;
                stride *= size;
            }
        }
    }

    function _attr(OpDescriptor.Op memory op, uint256 i) private pure returns (uint32) {
        if (op.attrs[i] > type(uint32).max) revert BadElementwiseShapes(op.kind);
        return uint32(op.attrs[i]);
    }

    function _ins(
        uint8 opcode,
        uint16 dst,
        RepOpsISA.Operand memory x0,
        RepOpsISA.Operand memory x1,
        RepOpsISA.Operand memory x2
    ) private pure returns (RepOpsISA.Instr memory ins) {
        ins.opcode = opcode;
        ins.dst = dst;
        ins.srcs[0] = x0;
        ins.srcs[1] = x1;
        ins.srcs[2] = x2;
    }

    function _none() private pure returns (RepOpsISA.Operand memory o) {}

    function _reg(uint256 n) private pure returns (RepOpsISA.Operand memory o) {
        o.kind = RepOpsISA.KIND_REGISTER;
        o.value = uint32(n);
    }

    function _imm(uint32 bits) private pure returns (RepOpsISA.Operand memory o) {
        o.kind = RepOpsISA.KIND_IMMEDIATE;
        o.value = bits;
    }

    function _input(uint8 slot, uint256 flat) private pure returns (RepOpsISA.Operand memory o) {
        o.kind = RepOpsISA.KIND_INPUT;
        o.slot = slot;
        o.value = uint32(flat);
    }
}
// forge-lint: disable-end(unsafe-typecast)
