// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IOneStepVerifier
/// @notice The bottom of the dispute game: one step of the scalar program that computes one element
///         of one op's output. The game knows nothing about floats, registers or programs; it hands
///         the verifier the agreed context and opaque 32-byte state commitments (the leaves of level
///         4) and compares what comes back with the solver's leaves.
/// @dev A verifier must be a function of its arguments and of the data the context commits to: for
///      one (ctx, preState) no two proofs may yield different post states, or a dishonest party could
///      pick the proof that makes the comparison come out its way. Inputs a step reads (tensor
///      elements) are opened by the verifier itself against `ctx.logRoot`, the op log both parties
///      agree on. The program's length is the verifier's to say, never the solver's: a solver free
///      to choose it could stop a correct program early at a value that suits its lie.
interface IOneStepVerifier {
    /// @notice What the game has established when level 4 starts.
    struct StepContext {
        bytes32 specHash; // the task spec (fixes the op graph and every op's program)
        bytes32 opGraphRoot; // the task's root over the step's op descriptors (see ScalarStepVerifier)
        uint256 trainingStep; // the disputed training step t (S_t -> S_t+1), as level 2 established it
        bytes32 logRoot; // root of the op log after op `op - 1`: agreed by both parties
        uint256 logSize; // its number of entries
        uint256 op; // the disputed op: level 3 leaf `op - 1` is agreed, leaf `op` is not
        uint256 outputEntry; // log entry (in the log after op `op`) of the output tensor the challenger named
        uint256 flatIndex; // row-major index of the named element in that tensor
        uint256 step; // for `step`: index m of the agreed leaf; the step computes leaf m + 1
    }

    /// @notice Number of steps of the program of element `ctx.flatIndex` of op `ctx.op`'s output
    ///         (level 4 then has that many plus one leaves). Must be at least 1.
    function programLength(StepContext calldata ctx) external view returns (uint256);

    /// @notice The commitment to the program's state before its first step: level 4's leaf 0.
    function initialState(StepContext calldata ctx) external view returns (bytes32);

    /// @notice Executes step `ctx.step` from `preState` (level 4 leaf `ctx.step`) with the operands
    ///         and openings in `proof`; reverts if the proof does not open what the step needs.
    /// @return postState what leaf `ctx.step + 1` must equal for the solver to be right.
    function step(StepContext calldata ctx, bytes32 preState, bytes calldata proof)
        external
        view
        returns (bytes32 postState);

    /// @notice Whether the final state `finalState` (level 4's last leaf) holds the value of element
    ///         `ctx.flatIndex` of tensor `outputTensorId` (which the game has proven to be log entry
    ///         `ctx.outputEntry`). `proof` opens the state and the element; reverts if it opens neither.
    function outputMatches(StepContext calldata ctx, bytes32 finalState, bytes32 outputTensorId, bytes calldata proof)
        external
        view
        returns (bool);
}
