// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IFloat32Arbiter} from "./softfloat/IFloat32Arbiter.sol";
import {Float32} from "./softfloat/Float32.sol";
import {RepOpsISA} from "./softfloat/RepOpsISA.sol";

/// @title Float32Arbiter
/// @notice Deployable, stateless front end of the `Float32` soft-float library and the RepOps
///         instruction dispatcher: the basic binary32 operations as external pure functions, one
///         `execute(opcode, x0, x1, x2)` for any RepOps ISA instruction, plus batched variants that
///         let a differential test check thousands of vectors in one eth_call. See
///         IFloat32Arbiter for the NatSpec.
contract Float32Arbiter is IFloat32Arbiter {
    // =============================================================================================
    //                                       SINGLE OPERATIONS
    // =============================================================================================

    /// @inheritdoc IFloat32Arbiter
    function add(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.add(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function sub(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.sub(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function mul(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.mul(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function div(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.div(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function mulAdd(uint32 acc, uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.mulAdd(acc, a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function lt(uint32 a, uint32 b) external pure returns (bool) {
        return Float32.lt(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function le(uint32 a, uint32 b) external pure returns (bool) {
        return Float32.le(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function eq(uint32 a, uint32 b) external pure returns (bool) {
        return Float32.eq(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function min(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.min(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function max(uint32 a, uint32 b) external pure returns (uint32) {
        return Float32.max(a, b);
    }

    /// @inheritdoc IFloat32Arbiter
    function fromInt32(int32 v) external pure returns (uint32) {
        return Float32.fromInt32(v);
    }

    /// @inheritdoc IFloat32Arbiter
    function toInt32(uint32 x) external pure returns (int32) {
        return Float32.toInt32(x);
    }

    /// @inheritdoc IFloat32Arbiter
    function execute(uint8 opcode, uint32 x0, uint32 x1, uint32 x2) external pure returns (uint32) {
        return RepOpsISA.execute(opcode, x0, x1, x2);
    }

    /// @inheritdoc IFloat32Arbiter
    function decodeInstr(bytes21 encoded) external pure returns (RepOpsISA.Instr memory) {
        return RepOpsISA.decode(encoded);
    }

    // =============================================================================================
    //                                          BATCHES
    // =============================================================================================

    /// @inheritdoc IFloat32Arbiter
    function executeBatch(uint8[] calldata opcodes, uint32[] calldata x0, uint32[] calldata x1, uint32[] calldata x2)
        external
        pure
        returns (uint32[] memory r)
    {
        uint256 n = opcodes.length;
        if (x0.length != n) revert BatchLengthMismatch(n, x0.length);
        if (x1.length != n) revert BatchLengthMismatch(n, x1.length);
        if (x2.length != n) revert BatchLengthMismatch(n, x2.length);
        r = new uint32[](n);
        for (uint256 i; i < n; ++i) {
            r[i] = RepOpsISA.execute(opcodes[i], x0[i], x1[i], x2[i]);
        }
    }

    /// @inheritdoc IFloat32Arbiter
    function addBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory r) {
        r = _alloc(a.length, b.length);
        for (uint256 i; i < r.length; ++i) {
            r[i] = Float32.add(a[i], b[i]);
        }
    }

    /// @inheritdoc IFloat32Arbiter
    function subBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory r) {
        r = _alloc(a.length, b.length);
        for (uint256 i; i < r.length; ++i) {
            r[i] = Float32.sub(a[i], b[i]);
        }
    }

    /// @inheritdoc IFloat32Arbiter
    function mulBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory r) {
        r = _alloc(a.length, b.length);
        for (uint256 i; i < r.length; ++i) {
            r[i] = Float32.mul(a[i], b[i]);
        }
    }

    /// @inheritdoc IFloat32Arbiter
    function divBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint32[] memory r) {
        r = _alloc(a.length, b.length);
        for (uint256 i; i < r.length; ++i) {
            r[i] = Float32.div(a[i], b[i]);
        }
    }

    /// @inheritdoc IFloat32Arbiter
    function cmpBatch(uint32[] calldata a, uint32[] calldata b) external pure returns (uint8[] memory r) {
        if (a.length != b.length) revert BatchLengthMismatch(a.length, b.length);
        r = new uint8[](a.length);
        for (uint256 i; i < r.length; ++i) {
            uint32 x = a[i];
            uint32 y = b[i];
            r[i] = (Float32.lt(x, y) ? 1 : 0) | (Float32.le(x, y) ? 2 : 0) | (Float32.eq(x, y) ? 4 : 0);
        }
    }

    /// @dev A result array for two operand arrays that must be equally long.
    function _alloc(uint256 lenA, uint256 lenB) private pure returns (uint32[] memory) {
        if (lenA != lenB) revert BatchLengthMismatch(lenA, lenB);
        return new uint32[](lenA);
    }
}
