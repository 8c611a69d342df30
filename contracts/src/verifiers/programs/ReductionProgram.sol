// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Float32} from "../../softfloat/Float32.sol";
import {RepOpsISA} from "../../softfloat/RepOpsISA.sol";
import {OpDescriptor} from "./OpDescriptor.sol";

/// @title ReductionProgram
/// @notice The canonical scalar program of one output element of the ops whose element is one
///         fixed-order reduction: `matmul` (attributes ta, tb), `linear`, `linear_nobias` (dot
///         products), `sum_rows` and `mean` (sums), derived from the op's descriptor exactly as the
///         RepOps tracing backend generates it (protocol/repops/reduce.py `fixed_sum`, `chunking`;
///         protocol/repops/backend.py `TraceBackend.program`).
/// @dev A dot product's terms are FMULADD r, A[i, t], B[t, j'], a sum's FADD r, x[t]; below, the
///      dot product case. The element is the dot product of a row of A and a column of B over n = K terms, summed in
///      the shape-fixed chunked order: c chunks of L = ceil(n / c) consecutive terms (c from
///      `chunking`), each chunk summed from +0 with FMULADD, the chunk sums then added left to right.
///      The tracer's program is a post-order walk from the result (register operands
///      latest-recorded first) with the lowest free register at each definition, which gives:
///
///          chain(f), chain(s)     f, s = 1, 0 when chunk 1 is full (L terms), else 0, 1
///          FADD r0 = acc_0, acc_1
///          for p = 2 .. c-1:  chain(p), FADD r0 = r0, r1
///          FADD r0 = r0, bias[j']                           (linear only)
///          FDIV r0 = r0, #float(n)                          (mean only)
///
///      where chain(p) is FMULADD r = (first ? #0 : r), A[i, t], B[t, j'] for the terms t of chunk
///      p in order, in register 0 for the first chain walked and register 1 for every other. With
///      one chunk the program is chain(0) in register 0.
// Narrowing casts below are exact: register numbers are below 16, and element and flat indices are
// below the element count of a tensor, which OpDescriptor.decode bounds to 2^32.
// forge-lint: disable-start(unsafe-typecast)
library ReductionProgram {
    /// @notice The descriptor's shapes do not fit the op kind.
    error BadReductionShapes(uint256 kind);
    /// @notice The element is not an element of the op's output.
    error ElementOutOfRange(uint256 element, uint256 numel);
    /// @notice The program has no instruction `m`.
    error InstructionOutOfRange(uint256 m, uint256 length);

    /// @notice Reductions of ops with at least this many output elements use 64-term chunks.
    uint256 internal constant WIDE = 16384;
    uint256 internal constant CHUNK = 64;

    /// @notice The geometry of one element's dot product.
    struct Dot {
        uint256 n; // terms (K)
        uint256 c; // chunks
        uint256 len; // terms per chunk (the last may have fewer)
        uint256 lastLen; // terms of the last chunk
        uint256 aBase; // flat index of A's first term, and the stride between terms
        uint256 aStride;
        uint256 bBase;
        uint256 bStride;
        uint256 bias; // flat index of the bias element (linear)
        bool hasBias;
        bool isSum; // terms are x[t] (FADD) rather than products (FMULADD)
        bool isMean; // the sum is divided by n (FDIV by float(n))
    }

    /// @notice (c, L) of a reduction of n terms in an op of m output elements (ops.py `chunking`).
    function chunking(uint256 n, uint256 m) internal pure returns (uint256 c, uint256 len) {
        if (n <= 1) return (1, n == 0 ? 1 : n);
        c = m >= WIDE ? (n + CHUNK - 1) / CHUNK : _isqrt(n - 1) + 1;
        len = (n + c - 1) / c;
    }

    /// @notice The dot product computed by element `element` of op `op` (matmul or linear kinds).
    function dot(OpDescriptor.Op memory op, uint256 element) internal pure returns (Dot memory d) {
        uint256 numel;
        if (op.kind == OpDescriptor.MATMUL) {
            numel = _matmulDot(op, element, d);
        } else if (op.kind == OpDescriptor.SUM_ROWS || op.kind == OpDescriptor.MEAN) {
            numel = _sumDot(op, element, d);
        } else {
            numel = _linearDot(op, element, d);
        }
        (d.c, d.len) = chunking(d.n, numel);
        // INVARIANT (of `chunking` for every n, checked here rather than assumed): the first c - 1
        // chunks are full and the last one is not empty.
        if ((d.c - 1) * d.len >= d.n) revert BadReductionShapes(op.kind);
        d.lastLen = d.n - (d.c - 1) * d.len;
    }

    /// @notice Number of instructions of the element's program.
    function length(Dot memory d) internal pure returns (uint256) {
        return d.n + d.c - 1 + (d.hasBias || d.isMean ? 1 : 0);
    }

    /// @notice Registers the program uses: the running sum, and a second chunk's while it is summed.
    function registers(Dot memory d) internal pure returns (uint256) {
        return d.c == 1 ? 1 : 2;
    }

    /// @notice Instruction `m` of the element's program.
    function instructionAt(Dot memory d, uint256 m) internal pure returns (RepOpsISA.Instr memory ins) {
        uint256 total = length(d);
        if (m >= total) revert InstructionOutOfRange(m, total);
        if (d.hasBias && m == total - 1) {
            ins.opcode = RepOpsISA.FADD;
            ins.srcs[0] = _reg(0);
            ins.srcs[1] = _input(2, d.bias);
            return ins;
        }
        if (d.isMean && m == total - 1) {
            ins.opcode = RepOpsISA.FDIV;
            ins.srcs[0] = _reg(0);
            // n < 2^32 (a tensor's element count); float(n) is int -> binary32 with RNE, as f32_bits.
            ins.srcs[1] = _imm(Float32.fromInt32(int32(uint32(d.n))));
            return ins;
        }
        if (d.c == 1) return _term(d, 0, m, 0);
        // Chunks 0 and 1 come first, the full one first (chunk 1 is shorter only when c = 2).
        uint256 len1 = d.c == 2 ? d.lastLen : d.len;
        (uint256 first, uint256 firstLen) = len1 == d.len ? (1, len1) : (0, d.len);
        uint256 pair = d.len + len1; // terms of chunks 0 and 1
        if (m < firstLen) return _term(d, first, m, 0);
        if (m < pair) return _term(d, 1 - first, m - firstLen, 1);
        ins.opcode = RepOpsISA.FADD;
        if (m == pair) {
            // acc_0 + acc_1, operands in chunk order: acc_0 is in register `first` (0 or 1).
            ins.srcs[0] = _reg(first);
            ins.srcs[1] = _reg(1 - first);
            return ins;
        }
        // Blocks of chunk p >= 2: its L terms (fewer for the last chunk) in r1, then r0 += r1.
        uint256 q = m - pair - 1;
        uint256 p = 2 + q / (d.len + 1);
        uint256 j = q % (d.len + 1);
        uint256 lenP = p == d.c - 1 ? d.lastLen : d.len;
        if (j < lenP) return _term(d, p, j, 1);
        ins.srcs[0] = _reg(0);
        ins.srcs[1] = _reg(1);
    }

    /// @dev Term j of chunk p added into register `r` (from +0 for the chunk's first term):
    ///      FMULADD r, a_t, b_t for a dot product, FADD r, x_t for a sum.
    function _term(Dot memory d, uint256 p, uint256 j, uint256 r) private pure returns (RepOpsISA.Instr memory ins) {
        uint256 t = p * d.len + j;
        ins.dst = uint16(r);
        ins.srcs[0] = j == 0 ? _imm(0) : _reg(r);
        ins.srcs[1] = _input(0, d.aBase + t * d.aStride);
        if (d.isSum) {
            ins.opcode = RepOpsISA.FADD;
        } else {
            ins.opcode = RepOpsISA.FMULADD;
            ins.srcs[2] = _input(1, d.bBase + t * d.bStride);
        }
    }

    /// @dev sum_rows: element j sums column j of x (R, C) over its R rows; mean: the sum of all of
    ///      x's elements in flat order (then divided by their number).
    function _sumDot(OpDescriptor.Op memory op, uint256 element, Dot memory d) private pure returns (uint256 numel) {
        if (op.shapes.length != 1) revert BadReductionShapes(op.kind);
        uint32[] memory x = op.shapes[0];
        d.isSum = true;
        if (op.kind == OpDescriptor.MEAN) {
            d.isMean = true;
            numel = 1;
            if (element != 0) revert ElementOutOfRange(element, 1);
            uint256 count = 1;
            for (uint256 i; i < x.length; ++i) {
                count *= x[i];
            }
            if (count == 0 || count > type(uint32).max) revert BadReductionShapes(op.kind);
            (d.n, d.aBase, d.aStride) = (count, 0, 1);
        } else {
            if (x.length != 2 || x[0] == 0) revert BadReductionShapes(op.kind);
            numel = x[1];
            if (element >= numel) revert ElementOutOfRange(element, numel);
            (d.n, d.aBase, d.aStride) = (x[0], element, x[1]); // x[t, element]
        }
    }

    function _matmulDot(OpDescriptor.Op memory op, uint256 element, Dot memory d) private pure returns (uint256) {
        (uint256 rows, uint256 k, uint256 cols, uint256 numel) = _matmulDims(op);
        if (element >= numel) revert ElementOutOfRange(element, numel);
        bool ta = op.attrs[0] != 0; // attrs in sorted name order: ta, tb
        uint256 col = element % cols;
        uint256 row = (element / cols) % rows;
        uint256 lead = element / (rows * cols);
        d.n = k;
        // Term t of the row: A[lead, row, t] (A[lead, t, row] when A is read transposed).
        (d.aBase, d.aStride) = ta ? (lead * rows * k + row, rows) : (lead * rows * k + row * k, 1);
        // Term t of the column: B[lead, t, col] (B[lead, col, t] when B is read transposed).
        (d.bBase, d.bStride) = op.attrs[1] != 0 ? (lead * k * cols + col * k, 1) : (lead * k * cols + col, cols);
        return numel;
    }

    /// @dev (rows, K, cols, output elements) of a matmul after its transposes; checks the shapes.
    function _matmulDims(OpDescriptor.Op memory op)
        private
        pure
        returns (uint256 rows, uint256 k, uint256 cols, uint256 numel)
    {
        if (op.shapes.length != 2 || op.attrs.length != 2) revert BadReductionShapes(op.kind);
        uint32[] memory a = op.shapes[0];
        uint32[] memory b = op.shapes[1];
        uint256 r = a.length;
        if (r < 2 || b.length != r) revert BadReductionShapes(op.kind);
        (rows, k) = op.attrs[0] != 0 ? (a[r - 1], a[r - 2]) : (a[r - 2], a[r - 1]);
        uint256 kb;
        (kb, cols) = op.attrs[1] != 0 ? (b[r - 1], b[r - 2]) : (b[r - 2], b[r - 1]);
        if (k != kb || k == 0) revert BadReductionShapes(op.kind);
        numel = rows * cols;
        for (uint256 x; x + 2 < r; ++x) {
            if (a[x] != b[x]) revert BadReductionShapes(op.kind);
            numel *= a[x];
        }
    }

    function _linearDot(OpDescriptor.Op memory op, uint256 element, Dot memory d) private pure returns (uint256) {
        d.hasBias = op.kind == OpDescriptor.LINEAR;
        if (op.shapes.length != (d.hasBias ? 3 : 2)) revert BadReductionShapes(op.kind);
        uint32[] memory x = op.shapes[0]; // (R, K)
        uint32[] memory w = op.shapes[1]; // (N, K)
        if (x.length != 2 || w.length != 2 || x[1] != w[1] || x[1] == 0) revert BadReductionShapes(op.kind);
        uint256 k = x[1];
        uint256 cols = w[0];
        if (d.hasBias && (op.shapes[2].length != 1 || op.shapes[2][0] != cols)) revert BadReductionShapes(op.kind);
        uint256 numel = uint256(x[0]) * cols;
        if (element >= numel) revert ElementOutOfRange(element, numel);
        uint256 col = element % cols;
        uint256 row = element / cols;
        d.n = k;
        (d.aBase, d.aStride) = (row * k, 1); // x[row, t]
        (d.bBase, d.bStride) = (col * k, 1); // w[col, t]: the weight is read transposed
        d.bias = col;
        return numel;
    }

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

    /// @dev floor(sqrt(x)) by Newton's iteration from above (x is a reduction length, small).
    function _isqrt(uint256 x) private pure returns (uint256 y) {
        if (x == 0) return 0;
        y = x;
        uint256 z = (x + 1) / 2;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }
}
// forge-lint: disable-end(unsafe-typecast)
