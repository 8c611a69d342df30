// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleLog} from "../../merkle/MerkleLog.sol";
import {RepOpsISA} from "../../softfloat/RepOpsISA.sol";
import {OpDescriptor} from "./OpDescriptor.sol";

/// @title TemplateProgram
/// @notice Programs of the ops whose descriptors commit *template programs* (protocol/dispute/
///         template.py): the transformer ops (softmax family, layer norm, embedding, attention,
///         GELU and their backward passes), cross-entropy and the stand-alone exp, log, sqrt, tanh,
///         erf. For each class of elements the descriptor's `programRoot` commits the program of the
///         class's first element (its base) and how each operand moves with the element:
///
///             value(e) = value(base) + sum_k (coord_k(e) - coord_k(base)) * coef_k    (mod 2^32)
///
///         over the element's coordinates in the op's kernel domain (row-major, the output's order).
///         Register operands, opcodes and destinations never move. The class of an element:
///
///             attn_scores                      0 if key position <= query position (coords 3, 2), else 1
///             attn_dqkv                        coord 2 (q, k or v)
///             softmax, cross_entropy_backward, layernorm_stats,
///             layernorm_backward               the last coordinate (the column)
///             every other kind                 0 (one class)
///
///         Every class's program is padded at the front to `programLength` with `OR r0 = r0, #0`
///         and ends in register 0. Leaf c * programLength + m of the RFC 9162 tree is, packed
///         big-endian: the 21-byte instruction m of class c, uint8 ndim, the domain (ndim x uint32),
///         the class base's coordinates (ndim x uint32), the coefficients (3 x ndim x int32,
///         operand-major). The step proof's `programOpening` is abi.encode(bytes leaf, bytes32[] path).
/// @dev The leaf carries the domain, which the leaf index depends on: only a leaf of the tree
///      verifies, all of them carry the op's domain, so the index computed from a verified leaf's
///      domain is the element's. tests/test_onestep_programs.py checks relocated templates against
///      the tracer (`repops.scalar_program`) for sampled elements of every kind of a real tiny-gpt step.
// Narrowing casts below are exact: a relocated value is taken mod 2^32 on purpose (the Python side
// does the same); coordinates are below a domain size, itself a uint32.
// forge-lint: disable-start(unsafe-typecast)
library TemplateProgram {
    /// @notice The template leaf is not of the packed layout (its length is not 22 + 20 * ndim).
    error BadTemplateLeaf(uint256 length);
    /// @notice The leaf's domain does not have the op's number of output elements.
    error DomainMismatch(uint256 domainNumel, uint256 outputNumel);
    /// @notice The leaf is not template leaf (class of `element`, `m`) of the op's programRoot.
    error TemplateNotCommitted(uint256 element, uint256 m);

    uint256 internal constant CROSS_ENTROPY_BACKWARD = 7;
    uint256 internal constant SOFTMAX = 25;
    uint256 internal constant LAYERNORM_STATS = 29;
    uint256 internal constant LAYERNORM_BACKWARD = 31;
    uint256 internal constant ATTN_SCORES = 35;
    uint256 internal constant ATTN_DQKV = 38;

    /// @notice (class, number of classes) of the element at `coords` of an op of kind `kind`.
    function classOf(uint256 kind, uint256[] memory coords, uint256[] memory domain)
        internal
        pure
        returns (uint256 cls, uint256 classes)
    {
        uint256 n = domain.length;
        if (kind == ATTN_SCORES && n == 4) return (coords[3] > coords[2] ? 1 : 0, 2);
        if (kind == ATTN_DQKV && n == 5) return (coords[2], domain[2]);
        bool byColumn =
            kind == SOFTMAX || kind == CROSS_ENTROPY_BACKWARD || kind == LAYERNORM_STATS || kind == LAYERNORM_BACKWARD;
        if (byColumn && n > 0) return (coords[n - 1], domain[n - 1]);
        return (0, 1);
    }

    /// @notice Instruction `m` of element `element` (the caller has checked that the op has it):
    ///         the template leaf in `opening` is checked against the descriptor's programRoot at
    ///         the element's class, then relocated.
    function instructionAt(OpDescriptor.Op memory op, uint256 element, uint256 m, bytes memory opening)
        internal
        pure
        returns (RepOpsISA.Instr memory ins)
    {
        (bytes memory leaf, bytes32[] memory path) = abi.decode(opening, (bytes, bytes32[]));
        (uint256[] memory domain, uint256[] memory coords) = _coordinates(op, element, leaf);
        (uint256 cls, uint256 classes) = classOf(op.kind, coords, domain);
        uint256 len = op.programLength;
        if (!MerkleLog.verifyInclusion(op.programRoot, MerkleLog.hashLeaf(leaf), cls * len + m, classes * len, path)) {
            revert TemplateNotCommitted(element, m);
        }
        bytes21 word;
        assembly ("memory-safe") {
            word := mload(add(leaf, 32))
        }
        ins = RepOpsISA.decode(word);
        _relocate(ins, leaf, coords);
    }

    /// @dev The leaf's domain (checked against the op's output) and the element's coordinates in it.
    function _coordinates(OpDescriptor.Op memory op, uint256 element, bytes memory leaf)
        private
        pure
        returns (uint256[] memory domain, uint256[] memory coords)
    {
        uint256 n = leaf.length > 21 ? uint8(leaf[21]) : 0;
        if (leaf.length != 22 + 20 * n) revert BadTemplateLeaf(leaf.length);
        domain = new uint256[](n);
        coords = new uint256[](n);
        uint256 numel = 1;
        for (uint256 k; k < n; ++k) {
            domain[k] = _word(leaf, 22 + 4 * k);
            numel *= domain[k];
        }
        uint256 outNumel = OpDescriptor.outputNumel(op);
        if (numel != outNumel) revert DomainMismatch(numel, outNumel);
        uint256 rem = element;
        for (uint256 k = n; k > 0; --k) {
            coords[k - 1] = rem % domain[k - 1];
            rem /= domain[k - 1];
        }
    }

    /// @dev Moves the input and immediate operands of the template instruction to the element.
    function _relocate(RepOpsISA.Instr memory ins, bytes memory leaf, uint256[] memory coords) private pure {
        uint256 n = coords.length;
        for (uint256 i; i < 3; ++i) {
            uint8 kind = ins.srcs[i].kind;
            if (kind != RepOpsISA.KIND_INPUT && kind != RepOpsISA.KIND_IMMEDIATE) continue;
            int256 shift;
            for (uint256 k; k < n; ++k) {
                int256 coef = int32(uint32(_word(leaf, 22 + 8 * n + 4 * (i * n + k))));
                int256 base = int256(_word(leaf, 22 + 4 * n + 4 * k));
                shift += (int256(coords[k]) - base) * coef;
            }
            ins.srcs[i].value = uint32(uint256(int256(uint256(ins.srcs[i].value)) + shift));
        }
    }

    /// @dev The big-endian uint32 at byte `offset` of `data` (in bounds: the caller checked the length).
    function _word(bytes memory data, uint256 offset) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := shr(224, mload(add(add(data, 32), offset)))
        }
    }
}
// forge-lint: disable-end(unsafe-typecast)
