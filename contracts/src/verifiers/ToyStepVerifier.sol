// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IOneStepVerifier} from "../interfaces/IOneStepVerifier.sol";
import {MerkleLog} from "../merkle/MerkleLog.sol";
import {TensorCommit} from "../merkle/TensorCommit.sol";

/// @title ToyStepVerifier
/// @notice A one-step verifier for testing the game apart from the soft-float arithmetic: every op's
///         every output element is the wrapping uint32 sum of the first `length` elements of the
///         int32 tensor at entry 0 of the op's input log.
///
///             state R_m = keccak256(abi.encode(m, acc_m))      acc_0 = 0
///             step m:   acc_{m+1} = (acc_m + x[m]) mod 2^32    x = int32 tensor at log entry 0
///
///         It exercises what the real verifier does around the arithmetic: opening a state
///         commitment, proving an input tensor against the agreed op log and an element against the
///         tensor id (chunk + path), and matching the final state with the output element.
contract ToyStepVerifier is IOneStepVerifier {
    /// @notice The state opened by a proof is not the committed one.
    error StateOpeningMismatch(bytes32 expected, bytes32 computed);
    /// @notice The input tensor is not entry 0 of the agreed op log.
    error InputNotInLog(bytes32 logRoot, bytes32 inputId);

    /// @notice Steps of every program.
    uint256 public immutable length;

    constructor(uint256 length_) {
        length = length_;
    }

    /// @notice The commitment to step `m` with accumulator `acc`.
    function stateOf(uint256 m, uint256 acc) public pure returns (bytes32) {
        return keccak256(abi.encode(m, acc));
    }

    /// @inheritdoc IOneStepVerifier
    function programLength(StepContext calldata) external view returns (uint256) {
        return length;
    }

    /// @inheritdoc IOneStepVerifier
    function initialState(StepContext calldata) external pure returns (bytes32) {
        return stateOf(0, 0);
    }

    /// @inheritdoc IOneStepVerifier
    /// @dev proof = abi.encode(acc, inputId, logProof, abi.encode(shape, chunk, chunkProof)).
    function step(StepContext calldata ctx, bytes32 preState, bytes calldata proof)
        external
        pure
        returns (bytes32 postState)
    {
        (uint256 acc, bytes32 inputId, bytes32[] memory logProof, bytes memory opening) =
            abi.decode(proof, (uint256, bytes32, bytes32[], bytes));
        bytes32 opened = stateOf(ctx.step, acc);
        if (opened != preState) revert StateOpeningMismatch(preState, opened);
        if (!MerkleLog.verifyValue(ctx.logRoot, inputId, 0, ctx.logSize, logProof)) {
            revert InputNotInLog(ctx.logRoot, inputId);
        }
        uint256 x = _element(inputId, ctx.step, opening);
        postState = stateOf(ctx.step + 1, (acc + x) & 0xffffffff);
    }

    /// @inheritdoc IOneStepVerifier
    /// @dev proof = abi.encode(acc, abi.encode(shape, chunk, chunkProof)).
    function outputMatches(StepContext calldata ctx, bytes32 finalState, bytes32 outputTensorId, bytes calldata proof)
        external
        view
        returns (bool)
    {
        (uint256 acc, bytes memory opening) = abi.decode(proof, (uint256, bytes));
        bytes32 opened = stateOf(length, acc);
        if (opened != finalState) revert StateOpeningMismatch(finalState, opened);
        uint256 value = _element(outputTensorId, ctx.flatIndex, opening);
        return value == acc;
    }

    /// @dev Element `flatIndex` of int32 tensor `id`, opened by abi.encode(shape, chunk, chunkProof).
    function _element(bytes32 id, uint256 flatIndex, bytes memory opening) internal pure returns (uint256) {
        (uint32[] memory shape, bytes memory chunk, bytes32[] memory chunkProof) =
            abi.decode(opening, (uint32[], bytes, bytes32[]));
        return TensorCommit.verifyElement(id, TensorCommit.DTYPE_INT32, shape, flatIndex, chunk, chunkProof);
    }
}
