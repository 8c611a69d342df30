// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice The few forge cheatcodes the soft-float tests use (no forge-std here).
interface ISoftFloatVm {
    function expectRevert(bytes calldata revertData) external;
    function assume(bool condition) external pure;
}

/// @notice Assertions for bit patterns: each failure reverts with the values that disagreed.
abstract contract SoftFloatTestBase {
    /// @dev forge's cheatcode address: uint160(uint256(keccak256("hevm cheat code"))).
    ISoftFloatVm internal constant VM = ISoftFloatVm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @notice Two binary32 bit patterns differ.
    error BitsMismatch(uint32 actual, uint32 expected);
    /// @notice Two booleans differ.
    error BoolMismatch(bool actual, bool expected);
    /// @notice Two int32 values differ.
    error IntMismatch(int32 actual, int32 expected);

    function _eq(uint32 actual, uint32 expected) internal pure {
        if (actual != expected) revert BitsMismatch(actual, expected);
    }

    function _eq(bool actual, bool expected) internal pure {
        if (actual != expected) revert BoolMismatch(actual, expected);
    }

    function _eq(int32 actual, int32 expected) internal pure {
        if (actual != expected) revert IntMismatch(actual, expected);
    }

    function _isNaN(uint32 x) internal pure returns (bool) {
        return x & 0x7FFFFFFF > 0x7F800000;
    }
}
