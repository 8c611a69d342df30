// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title OpDescriptor
/// @notice One op of a training step's op graph, as committed by a task's `opGraphRoot`: the leaf
///         data of the graph tree is the ABI encoding of
///         `(uint256 index, uint256 kind, uint256[] attrs, uint256[] inputs, uint256[] dtypes,
///           uint32[][] shapes, uint32[] outShape, uint256 output,
///           bytes32 programRoot, uint256 programLength, uint256 programRegisters)`
///         (protocol/dispute/graph.py `OpDescriptor.encode`). `index` is the op's position in the
///         step (and in the tree), `kind` its number below, `attrs` its step-invariant attributes in
///         sorted name order (floats as binary32 bits), `inputs` the log entries it reads, `dtypes`
///         their TensorCommit dtype codes, `shapes` their shapes, `output` the entry it writes.
///         A non-zero `programRoot` commits what the verifier does not derive: for the template
///         kinds the root over the template leaves of every element class (`TemplateProgram`),
///         every element's program `programLength` long (padded), using at most
///         `programRegisters` registers, its result in register 0; for adamw and sgd the root of
///         the per-step table of their step-varying immediates (`AdamwProgram`, `SgdProgram`).
library OpDescriptor {
    /// @notice Op kind numbers (protocol/dispute/graph.py `KIND_IDS`); never renumber.
    uint256 internal constant MATMUL = 1;
    uint256 internal constant LINEAR = 2;
    uint256 internal constant LINEAR_NOBIAS = 3;
    uint256 internal constant RELU = 4;
    uint256 internal constant RELU_BACKWARD = 5;
    uint256 internal constant CROSS_ENTROPY = 6;
    uint256 internal constant CROSS_ENTROPY_BACKWARD = 7;
    uint256 internal constant MEAN = 8;
    uint256 internal constant SUM_ROWS = 9;
    uint256 internal constant ADD = 10;

    /// @notice A decoded descriptor.
    struct Op {
        uint256 index;
        uint256 kind;
        uint256[] attrs;
        uint256[] inputs;
        uint256[] dtypes;
        uint32[][] shapes;
        uint32[] outShape;
        uint256 output;
        bytes32 programRoot;
        uint256 programLength;
        uint256 programRegisters;
    }

    /// @notice The descriptor's input lists do not have one entry per input.
    error MalformedDescriptor(uint256 inputs, uint256 dtypes, uint256 shapes);

    /// @notice Decodes an ABI-encoded descriptor; reverts on a malformed encoding.
    function decode(bytes memory data) internal pure returns (Op memory op) {
        (op.index, op.kind, op.attrs, op.inputs, op.dtypes, op.shapes, op.outShape, op.output) =
            abi.decode(data, (uint256, uint256, uint256[], uint256[], uint256[], uint32[][], uint32[], uint256));
        if (op.dtypes.length != op.inputs.length || op.shapes.length != op.inputs.length) {
            revert MalformedDescriptor(op.inputs.length, op.dtypes.length, op.shapes.length);
        }
        // The last three head words are static: read them in place (decoding all eleven fields at
        // once does not fit the stack).
        if (data.length < 11 * 32) revert MalformedDescriptor(op.inputs.length, op.dtypes.length, op.shapes.length);
        bytes32 root;
        uint256 len;
        uint256 regs;
        assembly ("memory-safe") {
            root := mload(add(data, 288)) // head word 8: 32 (length) + 8 * 32
            len := mload(add(data, 320))
            regs := mload(add(data, 352))
        }
        (op.programRoot, op.programLength, op.programRegisters) = (root, len, regs);
        // Instructions address elements with 32-bit indices: every tensor of the op must fit them,
        // which makes the programs' uint32 index casts exact.
        for (uint256 i; i < op.shapes.length; ++i) {
            _requireAddressable(op.shapes[i]);
        }
        _requireAddressable(op.outShape);
    }

    /// @notice A tensor of the op has 2^32 or more elements.
    error TensorTooLarge(uint256 numel);

    function _requireAddressable(uint32[] memory shape) private pure {
        uint256 n = 1;
        for (uint256 i; i < shape.length; ++i) {
            n *= shape[i];
        }
        if (n > type(uint32).max) revert TensorTooLarge(n);
    }

    /// @notice Number of elements of the op's output.
    function outputNumel(Op memory op) internal pure returns (uint256 n) {
        n = 1;
        for (uint256 i; i < op.outShape.length; ++i) {
            n *= op.outShape[i];
        }
    }
}
