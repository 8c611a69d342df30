// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "./Float32.sol";

/// @title RepOpsISA
/// @notice One instruction of the RepOps scalar instruction set, executed on chain. The dispute
///         game narrows a disagreement down to one instruction of one element's canonical scalar
///         program; the one-step verifier proves its operands and calls `execute` to get the only
///         correct result. Opcode numbers and semantics are those of protocol/repops/isa.py
///         (`Opcode`, `execute`), which is the off-chain reference; never renumber.
/// @dev Operands are positional: `x0, x1, x2` are the instruction's first, second and third
///      operands as uint32 bit patterns; operands an opcode does not take are ignored. Float
///      instructions follow the Float32 policy (RNE, gradual underflow, canonical NaN results);
///      integer instructions work on raw 32-bit words modulo 2^32. LOAD (0x30) reads an input
///      tensor element, which is a Merkle-proof matter for the verifier, not an arithmetic one, so
///      `execute` rejects it like any unknown opcode.
// Every narrowing cast below packs a value already known to fit (a sign bit OR-ed with a pattern
// below 2^31, an int32 result below 2^31 in magnitude, or a deliberate two's-complement
// reinterpretation of a 32-bit word), and the shifts of a constant 1 build bit masks on purpose.
// forge-lint: disable-start(unsafe-typecast, incorrect-shift)
library RepOpsISA {
    /// @notice The opcode is not an arithmetic instruction of the RepOps ISA.
    /// @param opcode The rejected opcode.
    error UnknownOpcode(uint8 opcode);

    uint8 internal constant FADD = 0x01; // x0 + x1
    uint8 internal constant FSUB = 0x02; // x0 - x1
    uint8 internal constant FMUL = 0x03; // x0 * x1
    uint8 internal constant FDIV = 0x04; // x0 / x1
    uint8 internal constant FMULADD = 0x05; // x0 + (x1 * x2), two roundings
    uint8 internal constant FNEG = 0x06; // -x0, NaN canonicalised
    uint8 internal constant FABS = 0x07; // |x0|, NaN canonicalised
    uint8 internal constant FMIN = 0x08; // x1 < x0 ? x1 : x0, NaN canonicalised
    uint8 internal constant FMAX = 0x09; // x0 < x1 ? x1 : x0, NaN canonicalised
    uint8 internal constant FLT = 0x10; // 1 if x0 < x1 (IEEE, false on NaN)
    uint8 internal constant FLE = 0x11; // 1 if x0 <= x1
    uint8 internal constant FEQ = 0x12; // 1 if x0 == x1 (-0 == +0, NaN != NaN)
    uint8 internal constant SELECT = 0x13; // x0 != 0 ? x1 : x2, bits unchanged
    uint8 internal constant I2F = 0x18; // int32 x0 -> binary32, RNE
    uint8 internal constant F2I = 0x19; // binary32 x0 -> int32, half to even, saturating, NaN -> 0
    uint8 internal constant IADD = 0x20; // (x0 + x1) mod 2^32
    uint8 internal constant ISUB = 0x21; // (x0 - x1) mod 2^32
    uint8 internal constant IMUL = 0x22; // (x0 * x1) mod 2^32
    uint8 internal constant AND = 0x23;
    uint8 internal constant OR = 0x24;
    uint8 internal constant XOR = 0x25;
    uint8 internal constant SHL = 0x26; // (x0 << (x1 & 31)) mod 2^32
    uint8 internal constant SHR = 0x27; // x0 >> (x1 & 31), logical
    uint8 internal constant SAR = 0x28; // int32(x0) >> (x1 & 31), arithmetic
    uint8 internal constant IEQ = 0x29; // 1 if x0 == x1 (raw bits)
    uint8 internal constant ILT = 0x2A; // 1 if int32(x0) < int32(x1)
    uint8 internal constant LOAD = 0x30; // input element: not executable here

    /// @notice Operand kinds of the 21-byte instruction encoding (`Instr.encode` in isa.py).
    uint8 internal constant KIND_NONE = 0;
    uint8 internal constant KIND_REGISTER = 1; // value = register number
    uint8 internal constant KIND_INPUT = 2; // slot = input tensor number, value = flat index
    uint8 internal constant KIND_IMMEDIATE = 3; // value = the bits

    /// @notice The instruction's operand `index` has a kind its opcode does not allow there.
    /// @param index The operand position (0, 1 or 2).
    /// @param kind The operand's kind byte.
    error MalformedOperand(uint256 index, uint8 kind);

    /// @notice One operand of an encoded instruction.
    struct Operand {
        uint8 kind;
        uint8 slot;
        uint32 value;
    }

    /// @notice A decoded instruction: `regs[dst] = opcode(srcs[0 .. arity))`.
    struct Instr {
        uint8 opcode;
        uint16 dst;
        Operand[3] srcs;
    }

    /// @notice The result bits of instruction `opcode` applied to operand bits `x0, x1, x2`.
    /// @dev Reverts with UnknownOpcode for LOAD and for numbers outside the ISA. The float
    ///      instructions are checked first (they are what disputes end on most of the time).
    /// @param opcode The instruction's opcode (protocol/repops/isa.py `Opcode`).
    /// @param x0 The first operand.
    /// @param x1 The second operand.
    /// @param x2 The third operand.
    /// @return The 32-bit result the instruction writes to its destination register.
    function execute(uint8 opcode, uint32 x0, uint32 x1, uint32 x2) internal pure returns (uint32) {
        if (opcode < 0x10) {
            if (opcode == FADD) return Float32.add(x0, x1);
            if (opcode == FSUB) return Float32.sub(x0, x1);
            if (opcode == FMUL) return Float32.mul(x0, x1);
            if (opcode == FDIV) return Float32.div(x0, x1);
            if (opcode == FMULADD) return Float32.mulAdd(x0, x1, x2);
            if (opcode == FNEG) return Float32.neg(x0);
            if (opcode == FABS) return Float32.abs(x0);
            if (opcode == FMIN) return Float32.min(x0, x1);
            if (opcode == FMAX) return Float32.max(x0, x1);
        } else if (opcode < 0x20) {
            if (opcode == FLT) return _bit(Float32.lt(x0, x1));
            if (opcode == FLE) return _bit(Float32.le(x0, x1));
            if (opcode == FEQ) return _bit(Float32.eq(x0, x1));
            if (opcode == SELECT) return x0 != 0 ? x1 : x2;
            if (opcode == I2F) return Float32.fromInt32(int32(x0));
            if (opcode == F2I) return uint32(Float32.toInt32(x0));
        } else {
            // unchecked: the integer instructions are defined modulo 2^32, which is exactly
            // Solidity's wrapping uint32 arithmetic; shift counts are masked to 0..31.
            unchecked {
                if (opcode == IADD) return x0 + x1;
                if (opcode == ISUB) return x0 - x1;
                if (opcode == IMUL) return x0 * x1;
                if (opcode == AND) return x0 & x1;
                if (opcode == OR) return x0 | x1;
                if (opcode == XOR) return x0 ^ x1;
                if (opcode == SHL) return x0 << (x1 & 31);
                if (opcode == SHR) return x0 >> (x1 & 31);
                if (opcode == SAR) return uint32(int32(x0) >> (x1 & 31));
                if (opcode == IEQ) return _bit(x0 == x1);
                if (opcode == ILT) return _bit(int32(x0) < int32(x1));
            }
        }
        revert UnknownOpcode(opcode);
    }

    /// @notice True for the opcodes `execute` accepts (every RepOps instruction but LOAD).
    function isExecutable(uint8 opcode) internal pure returns (bool) {
        return (opcode >= FADD && opcode <= FMAX) || (opcode >= FLT && opcode <= SELECT) || opcode == I2F
            || opcode == F2I || (opcode >= IADD && opcode <= ILT);
    }

    /// @notice True for every RepOps opcode, LOAD included.
    function isOpcode(uint8 opcode) internal pure returns (bool) {
        return isExecutable(opcode) || opcode == LOAD;
    }

    /// @notice How many operands `opcode` takes; reverts with UnknownOpcode outside the ISA.
    function arity(uint8 opcode) internal pure returns (uint256) {
        if (!isOpcode(opcode)) revert UnknownOpcode(opcode);
        if (opcode == FNEG || opcode == FABS || opcode == I2F || opcode == F2I) return 1;
        if (opcode == FMULADD || opcode == SELECT) return 3;
        return 2;
    }

    /// @notice Decodes and checks the 21-byte big-endian encoding of one instruction: opcode u8,
    ///         dst u16, then three operands of (kind u8, slot u8, value u32).
    /// @dev Well-formed means: a RepOps opcode; its first `arity` operands are registers, inputs or
    ///      immediates and the rest are all-zero "none" operands (exactly what `Instr.encode`
    ///      writes); LOAD's slot operand is an immediate. Anything else reverts, so one instruction
    ///      has exactly one accepted encoding.
    /// @param encoded The encoded instruction.
    /// @return ins The decoded instruction.
    function decode(bytes21 encoded) internal pure returns (Instr memory ins) {
        uint256 w = uint168(encoded);
        ins.opcode = uint8(w >> 160);
        ins.dst = uint16(w >> 144);
        uint256 n = arity(ins.opcode);
        for (uint256 i; i < 3; ++i) {
            // unchecked: i < 3, so the shift 96 - 48 * i stays in [0, 96].
            uint256 field;
            unchecked {
                field = w >> (96 - 48 * i);
            }
            Operand memory o = ins.srcs[i];
            o.kind = uint8(field >> 40);
            o.slot = uint8(field >> 32);
            o.value = uint32(field);
            if (i < n) {
                if (o.kind == KIND_NONE || o.kind > KIND_IMMEDIATE) revert MalformedOperand(i, o.kind);
            } else if (field & 0xFFFFFFFFFFFF != 0) {
                revert MalformedOperand(i, o.kind);
            }
        }
        if (ins.opcode == LOAD && ins.srcs[0].kind != KIND_IMMEDIATE) revert MalformedOperand(0, ins.srcs[0].kind);
    }

    function _bit(bool b) private pure returns (uint32) {
        return b ? 1 : 0;
    }
}
// forge-lint: disable-end(unsafe-typecast, incorrect-shift)
