// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {RepOpsISA} from "./RepOpsISA.sol";

/// @title IFloat32Arbiter
/// @notice The on-chain IEEE-754 binary32 arbiter: each function recomputes one float32 operation
///         on raw bit patterns, exactly as any IEEE-754 machine does without FMA contraction and
///         with the verigrad float policy (round to nearest even, gradual underflow, signed zeros,
///         every NaN result the canonical quiet NaN 0x7FC00000). Anyone can call it to check a
///         result against a reference implementation such as Berkeley SoftFloat.
/// @dev Every function is pure and reverts only on malformed batch input.
interface IFloat32Arbiter {
    /// @notice The batch arrays do not have the same length.
    /// @param expected The length of the first array.
    /// @param actual The length of the mismatching array.
    error BatchLengthMismatch(uint256 expected, uint256 actual);

    /// @notice a + b, rounded to nearest even.
    function add(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice a - b, rounded to nearest even.
    function sub(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice a * b, rounded to nearest even.
    function mul(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice a / b, rounded to nearest even.
    function div(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice acc + a * b with two roundings (the product is rounded before the sum).
    function mulAdd(uint32 acc, uint32 a, uint32 b) external pure returns (uint32);

    /// @notice IEEE quiet a < b (false on NaN).
    function lt(uint32 a, uint32 b) external pure returns (bool);

    /// @notice IEEE quiet a <= b (false on NaN).
    function le(uint32 a, uint32 b) external pure returns (bool);

    /// @notice IEEE quiet a == b (false on NaN, +0 == -0).
    function eq(uint32 a, uint32 b) external pure returns (bool);

    /// @notice The RepOps minimum `b < a ? b : a` (NaN canonicalised).
    function min(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice The RepOps maximum `a < b ? b : a` (NaN canonicalised).
    function max(uint32 a, uint32 b) external pure returns (uint32);

    /// @notice int32 -> binary32, rounded to nearest even.
    function fromInt32(int32 v) external pure returns (uint32);

    /// @notice binary32 -> int32, rounded half to even, saturating; NaN -> 0.
    function toInt32(uint32 x) external pure returns (int32);

    /// @notice One RepOps ISA instruction (protocol/repops/isa.py opcode numbers) on operand bits.
    /// @dev Reverts with RepOpsISA.UnknownOpcode for LOAD and numbers outside the ISA.
    /// @param opcode The instruction's opcode.
    /// @param x0 The first operand (unused operands are ignored).
    /// @param x1 The second operand.
    /// @param x2 The third operand.
    /// @return The result bits the instruction writes.
    function execute(uint8 opcode, uint32 x0, uint32 x1, uint32 x2) external pure returns (uint32);

    /// @notice Decodes and checks one 21-byte encoded RepOps instruction (protocol/repops/isa.py
    ///         `Instr.encode`); reverts with RepOpsISA.UnknownOpcode or RepOpsISA.MalformedOperand.
    function decodeInstr(bytes21 encoded) external pure returns (RepOpsISA.Instr memory);

    /// @notice Element-wise `execute` over four equally long arrays (for differential testing).
    function executeBatch(uint8[] calldata opcodes, uint32[] calldata x0, uint32[] calldata x1, uint32[] calldata x2)
        external
        pure
        returns (uint32[] memory);

    /// @notice Element-wise `add` over two equally long arrays (for differential testing).
    function addBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory);

    /// @notice Element-wise `sub` over two equally long arrays.
    function subBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory);

    /// @notice Element-wise `mul` over two equally long arrays.
    function mulBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory);

    /// @notice Element-wise `div` over two equally long arrays.
    function divBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory);

    /// @notice Element-wise comparisons packed in one word per pair: bit 0 = lt, bit 1 = le, bit 2 = eq.
    function cmpBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint8[] memory);
}
