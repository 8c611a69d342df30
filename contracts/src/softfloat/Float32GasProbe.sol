// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "./Float32.sol";
import {RepOpsISA} from "./RepOpsISA.sol";

/// @title Float32GasProbe
/// @notice Measures what one Float32 operation costs a contract that links the library (the way the
///         one-step verifier uses it): gasleft() is read right before and right after each internal
///         call, so ABI decoding, dispatch and calldata are excluded. Used by
///         benchmarks/softfloat_gas.py; never needed on a production chain.
/// @dev The two GAS reads and the stack shuffling around them add a constant few gas to every
///      figure (measured by op 255, the empty bracket) that the benchmark reports alongside.
contract Float32GasProbe {
    /// @notice The op code is not one the probe knows.
    /// @param op The unknown op code.
    error UnknownOp(uint8 op);

    /// @notice The operand arrays do not have the same length.
    /// @param expected The length of `a`.
    /// @param actual The length of `b`.
    error ProbeLengthMismatch(uint256 expected, uint256 actual);

    /// @notice Op codes: 0 add, 1 sub, 2 mul, 3 div, 4 lt, 5 eq, 255 the empty bracket.
    /// @param op Which operation to measure.
    /// @param a First operands.
    /// @param b Second operands (same length as `a`).
    /// @return results The operation's result for each pair (comparisons as 0/1).
    /// @return used The gas between the two gasleft() reads for each pair.
    function measure(uint8 op, uint32[] calldata a, uint32[] calldata b)
        external
        view
        returns (uint32[] memory results, uint256[] memory used)
    {
        if (a.length != b.length) revert ProbeLengthMismatch(a.length, b.length);
        if (op > 5 && op != 255) revert UnknownOp(op);
        results = new uint32[](a.length);
        used = new uint256[](a.length);
        for (uint256 i; i < a.length; ++i) {
            (results[i], used[i]) = _one(op, a[i], b[i]);
        }
    }

    /// @notice Gas of `RepOpsISA.execute` (opcode dispatch included) for each instruction row.
    /// @param opcodes RepOps opcodes (LOAD and unknown numbers revert).
    /// @param x0 First operands.
    /// @param x1 Second operands.
    /// @param x2 Third operands.
    /// @return results The instruction results.
    /// @return used The gas between the two gasleft() reads for each row.
    function measureExecute(uint8[] calldata opcodes, uint32[] calldata x0, uint32[] calldata x1, uint32[] calldata x2)
        external
        view
        returns (uint32[] memory results, uint256[] memory used)
    {
        uint256 n = opcodes.length;
        if (x0.length != n) revert ProbeLengthMismatch(n, x0.length);
        if (x1.length != n) revert ProbeLengthMismatch(n, x1.length);
        if (x2.length != n) revert ProbeLengthMismatch(n, x2.length);
        results = new uint32[](n);
        used = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            (results[i], used[i]) = _exec(opcodes[i], x0[i], x1[i], x2[i]);
        }
    }

    function _exec(uint8 op, uint32 a, uint32 b, uint32 c) private view returns (uint32 r, uint256 used) {
        uint256 g = gasleft();
        r = RepOpsISA.execute(op, a, b, c);
        used = g - gasleft();
    }

    function _one(uint8 op, uint32 x, uint32 y) private view returns (uint32 r, uint256 used) {
        uint256 g;
        if (op == 0) {
            g = gasleft();
            r = Float32.add(x, y);
            used = g - gasleft();
        } else if (op == 1) {
            g = gasleft();
            r = Float32.sub(x, y);
            used = g - gasleft();
        } else if (op == 2) {
            g = gasleft();
            r = Float32.mul(x, y);
            used = g - gasleft();
        } else if (op == 3) {
            g = gasleft();
            r = Float32.div(x, y);
            used = g - gasleft();
        } else if (op == 4) {
            g = gasleft();
            bool c = Float32.lt(x, y);
            used = g - gasleft();
            r = c ? 1 : 0;
        } else if (op == 5) {
            g = gasleft();
            bool c = Float32.eq(x, y);
            used = g - gasleft();
            r = c ? 1 : 0;
        } else {
            g = gasleft();
            r = x;
            used = g - gasleft();
        }
    }
}
