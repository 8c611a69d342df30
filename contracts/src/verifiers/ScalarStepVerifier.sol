// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IOneStepVerifier} from "../interfaces/IOneStepVerifier.sol";
import {MerkleLog} from "../merkle/MerkleLog.sol";
import {TensorCommit} from "../merkle/TensorCommit.sol";
import {RepOpsISA} from "../softfloat/RepOpsISA.sol";
import {AdamwProgram} from "./programs/AdamwProgram.sol";
import {ElementwiseProgram} from "./programs/ElementwiseProgram.sol";
import {OpDescriptor} from "./programs/OpDescriptor.sol";
import {ReductionProgram} from "./programs/ReductionProgram.sol";
import {SgdProgram} from "./programs/SgdProgram.sol";
import {TemplateProgram} from "./programs/TemplateProgram.sol";

/// @title ScalarStepVerifier
/// @notice The soft-float one-step verifier: executes one instruction of the canonical scalar
///         program of one output element of one op of a training step, on chain, bit-exactly.
///
///         Nothing about the program is taken from a party: the disputed op's descriptor is proven
///         against the task's `opGraphRoot` (one root for every step of the task), the instruction
///         is derived from the descriptor (`programs/`), every input element it reads is proven
///         against the agreed op log (`ctx.logRoot`) and its tensor id, and the arithmetic is
///         `RepOpsISA.execute` (Float32 soft-float).
///
///             state R_m = keccak256(abi.encode(m, regs))     regs: uint32[] of the program's registers
///             R_0 = all registers zero;  step m: regs[dst] = op(operands);  R_M holds the element
///
///         `programLength` and `initialState` get only the game's context, so the op must first be
///         registered (`registerOp`, permissionless: the descriptor is proven against the graph
///         root). A registration serves every game of every task with that op graph.
/// @dev Op kinds covered (every kind of protocol/dispute/graph.py KIND_IDS): matmul (ta, tb), linear,
///      linear_nobias, sum_rows, mean (ReductionProgram); relu, relu_backward, add, sub, mul, scale,
///      adam_m, adam_v (ElementwiseProgram); adamw (AdamwProgram) and sgd (SgdProgram), step
///      constants from the descriptor's step table; every op whose descriptor commits template
///      programs (TemplateProgram: cross_entropy and its backward, exp, log, sqrt, tanh, erf, gelu,
///      gelu_backward, the softmax and log-softmax families, the four layer-norm kinds, embedding
///      and its backward, attn_scores, attn_apply, attn_dprobs, attn_dqkv: graph.py TEMPLATE_KINDS).
///      A descriptor of another kind, or of a template kind without its template root, reverts
///      UnsupportedOp.
contract ScalarStepVerifier is IOneStepVerifier {
    /// @notice An input element opened for an operand: the tensor id at the descriptor's log entry
    ///         (proven against the agreed log) and the element's chunk with its path.
    struct Opening {
        bytes32 tensorId;
        bytes32[] logProof;
        bytes chunk;
        bytes32[] chunkProof;
    }

    /// @notice A step proof, decoded once (layout: see `step`).
    struct StepProof {
        uint32[] regs;
        bytes descriptor;
        uint256 graphSize;
        bytes32[] graphProof;
        Opening[] openings;
        bytes programOpening;
    }

    /// @notice The op kind has no on-chain program yet.
    error UnsupportedOp(uint256 kind);
    /// @notice The disputed op was not registered for this op graph (see `registerOp`).
    error OpNotRegistered(bytes32 opGraphRoot, uint256 opIndex);
    /// @notice The descriptor is not leaf `index` of the op graph.
    error DescriptorNotInGraph(bytes32 opGraphRoot, uint256 index);
    /// @notice The descriptor is for another op than the disputed one.
    error WrongOp(uint256 expected, uint256 actual);
    /// @notice The agreed log or the named entry does not fit the op (it writes entry `output`).
    error LogMismatch(uint256 output, uint256 logSize, uint256 outputEntry);
    /// @notice The register file opened by a proof is not the committed state.
    error StateOpeningMismatch(bytes32 expected, bytes32 computed);
    /// @notice The opened register file has the wrong number of registers.
    error RegisterCountMismatch(uint256 expected, uint256 actual);
    /// @notice The program has no step `step`.
    error StepOutOfRange(uint256 step, uint256 length);
    /// @notice The input tensor is not the descriptor's entry of the agreed log.
    error InputNotInLog(uint256 entry, bytes32 tensorId);
    /// @notice The proof has a different number of input openings than the instruction reads.
    error OpeningCountMismatch(uint256 expected, uint256 actual);
    /// @notice An operand names a register or input slot the program does not have.
    error OperandOutOfRange(uint8 kind, uint256 value);
    /// @notice The op's programs are read from proofs (template programs, a step table), not derived.
    error ProgramCommitted(uint256 kind);
    /// @notice The element is not an element of the op's output.
    error ElementOutOfRange(uint256 element, uint256 numel);
    /// @notice The step constants are not leaf `trainingStep` of the op's step table.
    error StepConstantsNotCommitted(uint256 trainingStep);

    /// @notice Op `opIndex` of the graph `opGraphRoot` can now be disputed down to one step.
    event OpRegistered(
        bytes32 indexed opGraphRoot, uint256 indexed opIndex, uint256 kind, uint256 programLength, uint256 registers
    );

    uint256 private constant _REGISTERED = 1 << 255;

    /// @dev keccak256(abi.encode(opGraphRoot, opIndex)) => _REGISTERED | kind << 128 | result << 96
    ///      | registers << 64 | length.
    mapping(bytes32 => uint256) private _headers;

    // ─────────────────────────────────────────────────────────────── registration

    /// @notice Records op `descriptor.index` of the graph `opGraphRoot` (program length, registers,
    ///         result register), so that games on it can start level 4. Anyone may call it; the
    ///         descriptor is proven against the root, so only the committed op can be registered.
    /// @param opGraphRoot A task's op graph root.
    /// @param descriptor The op's ABI-encoded descriptor (see `OpDescriptor`).
    /// @param graphSize Number of ops of the graph (the proof's tree size).
    /// @param proof RFC 9162 audit path of the descriptor, bottom-up.
    function registerOp(bytes32 opGraphRoot, bytes calldata descriptor, uint256 graphSize, bytes32[] calldata proof)
        external
    {
        OpDescriptor.Op memory op = _provenOp(opGraphRoot, descriptor, graphSize, proof);
        (uint256 len, uint256 regs, uint256 result) = _programShape(op, 0);
        if (len > type(uint64).max || regs > type(uint32).max || result > type(uint32).max || op.kind > 255) {
            revert UnsupportedOp(op.kind);
        }
        _headers[_key(opGraphRoot, op.index)] = _REGISTERED | (op.kind << 128) | (result << 96) | (regs << 64) | len;
        emit OpRegistered(opGraphRoot, op.index, op.kind, len, regs);
    }

    /// @notice Whether op `opIndex` of graph `opGraphRoot` is registered.
    function isRegistered(bytes32 opGraphRoot, uint256 opIndex) external view returns (bool) {
        return _headers[_key(opGraphRoot, opIndex)] != 0;
    }

    // ─────────────────────────────────────────────────────────────── IOneStepVerifier

    /// @inheritdoc IOneStepVerifier
    function programLength(StepContext calldata ctx) external view returns (uint256) {
        (uint256 len,,) = _header(ctx);
        return len;
    }

    /// @inheritdoc IOneStepVerifier
    function initialState(StepContext calldata ctx) external view returns (bytes32) {
        (, uint256 regs,) = _header(ctx);
        return stateOf(0, new uint32[](regs));
    }

    /// @inheritdoc IOneStepVerifier
    /// @dev proof = abi.encode(uint32[] regs, bytes descriptor, uint256 graphSize, bytes32[] graphProof,
    ///      Opening[] openings, bytes programOpening): the pre-state's registers, the disputed op's
    ///      descriptor with its proof against ctx.opGraphRoot, one opening per input operand of the
    ///      instruction, in operand order (a LOAD's element last), and what the program is read from
    ///      besides the descriptor: for template programs abi.encode(bytes leaf, bytes32[] path) (see
    ///      TemplateProgram), for adamw abi.encode(uint32 lr, uint32 bc1, uint32 bc2, uint32 lrwd,
    ///      uint256 tableSize, bytes32[] path) and for sgd abi.encode(uint32 lr, uint256 tableSize,
    ///      bytes32[] path) (the step table's leaf ctx.trainingStep), else empty.
    function step(StepContext calldata ctx, bytes32 preState, bytes calldata proof)
        external
        pure
        returns (bytes32 postState)
    {
        StepProof memory p = _decodeProof(proof);
        OpDescriptor.Op memory op = _openStep(ctx, preState, p);
        RepOpsISA.Instr memory ins = _instruction(op, ctx.flatIndex, ctx.step, ctx.trainingStep, p.programOpening);
        p.regs[ins.dst] = _execute(ctx, op, ins, p.regs, p.openings);
        postState = stateOf(ctx.step + 1, p.regs);
    }

    function _decodeProof(bytes calldata proof) private pure returns (StepProof memory p) {
        (p.regs, p.descriptor, p.graphSize, p.graphProof, p.openings, p.programOpening) =
            abi.decode(proof, (uint32[], bytes, uint256, bytes32[], Opening[], bytes));
    }

    /// @dev The disputed op (proven against the graph, checked against the context); checks the
    ///      proof's registers against the pre-state.
    function _openStep(StepContext calldata ctx, bytes32 preState, StepProof memory p)
        private
        pure
        returns (OpDescriptor.Op memory op)
    {
        op = _provenOp(ctx.opGraphRoot, p.descriptor, p.graphSize, p.graphProof);
        _checkOp(ctx, op);
        (uint256 len, uint256 nregs,) = _programShape(op, ctx.flatIndex);
        if (ctx.step >= len) revert StepOutOfRange(ctx.step, len);
        _checkState(preState, ctx.step, p.regs, nregs);
    }

    /// @inheritdoc IOneStepVerifier
    /// @dev proof = abi.encode(uint32[] regs, uint32[] shape, bytes chunk, bytes32[] chunkProof): the
    ///      final registers and the float32 output tensor's shape with the element's chunk and path.
    function outputMatches(StepContext calldata ctx, bytes32 finalState, bytes32 outputTensorId, bytes calldata proof)
        external
        view
        returns (bool)
    {
        (uint256 len, uint256 nregs, uint256 result) = _header(ctx);
        (uint32[] memory regs) = abi.decode(proof, (uint32[]));
        _checkState(finalState, len, regs, nregs);
        return _outputElement(ctx.flatIndex, outputTensorId, proof) == regs[result];
    }

    // ─────────────────────────────────────────────────────────────── views for parties and tests

    /// @notice The commitment to the register file `regs` after `m` steps (level 4's leaf m).
    function stateOf(uint256 m, uint32[] memory regs) public pure returns (bytes32) {
        return keccak256(abi.encode(m, regs));
    }

    /// @notice Length, register count and result register of element `element`'s program.
    function programShape(bytes calldata descriptor, uint256 element)
        external
        pure
        returns (uint256 length, uint256 registers, uint256 result)
    {
        return _programShape(OpDescriptor.decode(descriptor), element);
    }

    /// @notice Instruction `m` of element `element`'s program, in the 21-byte encoding of
    ///         protocol/repops/isa.py `Instr.encode` (what the off-chain tracer must produce).
    ///         Programs read from a proof take the step proof's `programOpening` (and, for adamw and
    ///         sgd, the training step); derived programs take an empty one.
    function instructionWith(
        bytes calldata descriptor,
        uint256 element,
        uint256 m,
        uint256 trainingStep,
        bytes calldata programOpening
    ) external pure returns (bytes21) {
        OpDescriptor.Op memory op = OpDescriptor.decode(descriptor);
        (uint256 len,,) = _programShape(op, element);
        if (m >= len) revert StepOutOfRange(m, len);
        return _encode(_instruction(op, element, m, trainingStep, programOpening));
    }

    /// @notice The whole program of element `element`, each instruction encoded as by `instructionAt`.
    function programOf(bytes calldata descriptor, uint256 element) external pure returns (bytes21[] memory out) {
        OpDescriptor.Op memory op = OpDescriptor.decode(descriptor);
        (uint256 len,,) = _programShape(op, element);
        out = new bytes21[](len);
        for (uint256 m; m < len; ++m) {
            out[m] = _encode(_instructionAt(op, element, m));
        }
    }

    // ─────────────────────────────────────────────────────────────── internal: programs

    function _isReduction(uint256 kind) private pure returns (bool) {
        return kind == OpDescriptor.MATMUL || kind == OpDescriptor.LINEAR || kind == OpDescriptor.LINEAR_NOBIAS
            || kind == OpDescriptor.SUM_ROWS || kind == OpDescriptor.MEAN;
    }

    function _programShape(OpDescriptor.Op memory op, uint256 element)
        private
        pure
        returns (uint256 len, uint256 regs, uint256 result)
    {
        if (op.kind == AdamwProgram.KIND) {
            if (op.programRoot == bytes32(0)) revert UnsupportedOp(op.kind); // no step table
            AdamwProgram.check(op, element);
            return (AdamwProgram.LENGTH, AdamwProgram.REGISTERS, 0);
        }
        if (op.kind == SgdProgram.KIND) {
            if (op.programRoot == bytes32(0)) revert UnsupportedOp(op.kind); // no step table
            SgdProgram.check(op, element);
            return (SgdProgram.LENGTH, SgdProgram.REGISTERS, 0);
        }
        if (op.programRoot != bytes32(0)) {
            uint256 numel = OpDescriptor.outputNumel(op);
            if (element >= numel) revert ElementOutOfRange(element, numel);
            if (op.programLength == 0) revert UnsupportedOp(op.kind);
            return (op.programLength, op.programRegisters, 0); // template programs end in register 0
        }
        if (_isReduction(op.kind)) {
            ReductionProgram.Dot memory d = ReductionProgram.dot(op, element);
            (len, regs) = (ReductionProgram.length(d), ReductionProgram.registers(d));
        } else if (ElementwiseProgram.covers(op.kind)) {
            (len, regs) = ElementwiseProgram.shape(op.kind);
        } else {
            revert UnsupportedOp(op.kind);
        }
        // The element's value is what the last instruction writes (this also checks the element).
        result = _instructionAt(op, element, len - 1).dst;
    }

    function _instructionAt(OpDescriptor.Op memory op, uint256 element, uint256 m)
        private
        pure
        returns (RepOpsISA.Instr memory)
    {
        if (op.programRoot != bytes32(0) || op.kind == AdamwProgram.KIND || op.kind == SgdProgram.KIND) {
            revert ProgramCommitted(op.kind);
        }
        if (_isReduction(op.kind)) return ReductionProgram.instructionAt(ReductionProgram.dot(op, element), m);
        if (ElementwiseProgram.covers(op.kind)) return ElementwiseProgram.instructionAt(op, element, m);
        revert UnsupportedOp(op.kind);
    }

    /// @dev Instruction m of `element`: derived from the descriptor, or read from `opening` (a
    ///      template leaf, or an optimizer's step constants) against its programRoot.
    function _instruction(
        OpDescriptor.Op memory op,
        uint256 element,
        uint256 m,
        uint256 trainingStep,
        bytes memory opening
    ) private pure returns (RepOpsISA.Instr memory) {
        if (op.kind == AdamwProgram.KIND) {
            return AdamwProgram.instructionAt(op, element, m, _stepConstants(op.programRoot, trainingStep, opening));
        }
        if (op.kind == SgdProgram.KIND) {
            return SgdProgram.instructionAt(element, m, _learningRate(op.programRoot, trainingStep, opening));
        }
        if (op.programRoot == bytes32(0)) return _instructionAt(op, element, m);
        return TemplateProgram.instructionAt(op, element, m, opening);
    }

    /// @dev sgd's learning rate at `trainingStep`: leaf `abi.encode(trainingStep, lr)` of its step table.
    function _learningRate(bytes32 root, uint256 trainingStep, bytes memory opening) private pure returns (uint32 lr) {
        uint256 size;
        bytes32[] memory path;
        (lr, size, path) = abi.decode(opening, (uint32, uint256, bytes32[]));
        if (!MerkleLog.verifyInclusion(
                root, MerkleLog.hashLeaf(abi.encode(trainingStep, lr)), trainingStep, size, path
            )) {
            revert StepConstantsNotCommitted(trainingStep);
        }
    }

    /// @dev Leaf `trainingStep` of the op's step table, opened by `opening`; the step inside the
    ///      leaf binds it to its position, so the tree size is the prover's to give.
    function _stepConstants(bytes32 root, uint256 trainingStep, bytes memory opening)
        private
        pure
        returns (AdamwProgram.StepConstants memory c)
    {
        uint256 size;
        bytes32[] memory path;
        (c.lr, c.bc1, c.bc2, c.lrwd, size, path) =
            abi.decode(opening, (uint32, uint32, uint32, uint32, uint256, bytes32[]));
        bytes32 leaf = MerkleLog.hashLeaf(abi.encode(trainingStep, c.lr, c.bc1, c.bc2, c.lrwd));
        if (!MerkleLog.verifyInclusion(root, leaf, trainingStep, size, path)) {
            revert StepConstantsNotCommitted(trainingStep);
        }
    }

    // ─────────────────────────────────────────────────────────────── internal: checks

    function _key(bytes32 opGraphRoot, uint256 opIndex) private pure returns (bytes32) {
        return keccak256(abi.encode(opGraphRoot, opIndex));
    }

    /// @dev (length, registers, result register) of the disputed op; game op k is graph op k - 1
    ///      (level 3's leaf k is the log after the op of index k - 1).
    function _header(StepContext calldata ctx) private view returns (uint256 len, uint256 regs, uint256 result) {
        uint256 index = ctx.op == 0 ? type(uint256).max : ctx.op - 1;
        uint256 h = _headers[_key(ctx.opGraphRoot, index)];
        if (h == 0) revert OpNotRegistered(ctx.opGraphRoot, index);
        // The fields were packed from values registerOp checked to fit these widths.
        // forge-lint: disable-next-line(unsafe-typecast)
        len = uint64(h);
        // forge-lint: disable-next-line(unsafe-typecast)
        regs = uint32(h >> 64);
        // forge-lint: disable-next-line(unsafe-typecast)
        result = uint32(h >> 96);
    }

    function _provenOp(bytes32 root, bytes memory descriptor, uint256 size, bytes32[] memory proof)
        private
        pure
        returns (OpDescriptor.Op memory op)
    {
        op = OpDescriptor.decode(descriptor);
        // The index inside the leaf binds it to its position: a proof that walks a wrong size can
        // still only reach leaves of this tree, and only leaf `index` says `index`.
        if (!MerkleLog.verifyInclusion(root, MerkleLog.hashLeaf(descriptor), op.index, size, proof)) {
            revert DescriptorNotInGraph(root, op.index);
        }
    }

    function _checkOp(StepContext calldata ctx, OpDescriptor.Op memory op) private pure {
        if (ctx.op == 0 || op.index != ctx.op - 1) {
            revert WrongOp(ctx.op == 0 ? type(uint256).max : ctx.op - 1, op.index);
        }
        // INVARIANT: the agreed log is the log the op reads (it ends right before the op's output)
        // and the named entry is the op's output.
        if (op.output != ctx.logSize || ctx.outputEntry != op.output) {
            revert LogMismatch(op.output, ctx.logSize, ctx.outputEntry);
        }
    }

    function _checkState(bytes32 committed, uint256 m, uint32[] memory regs, uint256 nregs) private pure {
        if (regs.length != nregs) revert RegisterCountMismatch(nregs, regs.length);
        bytes32 opened = stateOf(m, regs);
        if (opened != committed) revert StateOpeningMismatch(committed, opened);
    }

    /// @dev Element `flatIndex` of the float32 tensor `id`, opened by the proof's shape, chunk and path.
    function _outputElement(uint256 flatIndex, bytes32 id, bytes calldata proof) private pure returns (uint256) {
        (, uint32[] memory shape, bytes memory chunk, bytes32[] memory chunkProof) =
            abi.decode(proof, (uint32[], uint32[], bytes, bytes32[]));
        return TensorCommit.verifyElement(id, TensorCommit.DTYPE_FLOAT32, shape, flatIndex, chunk, chunkProof);
    }

    // ─────────────────────────────────────────────────────────────── internal: execution

    function _execute(
        StepContext calldata ctx,
        OpDescriptor.Op memory op,
        RepOpsISA.Instr memory ins,
        uint32[] memory regs,
        Opening[] memory openings
    ) private pure returns (uint32) {
        uint256 n = RepOpsISA.arity(ins.opcode);
        uint32[3] memory x;
        uint256 used;
        for (uint256 i; i < n; ++i) {
            RepOpsISA.Operand memory o = ins.srcs[i];
            if (o.kind == RepOpsISA.KIND_REGISTER) {
                if (o.value >= regs.length) revert OperandOutOfRange(o.kind, o.value);
                x[i] = regs[o.value];
            } else if (o.kind == RepOpsISA.KIND_INPUT) {
                x[i] = _inputElement(ctx, op, o.slot, o.value, openings, used++);
            } else {
                x[i] = o.value;
            }
        }
        uint32 result;
        if (ins.opcode == RepOpsISA.LOAD) {
            result = _inputElement(ctx, op, x[0], x[1], openings, used++);
        } else {
            result = RepOpsISA.execute(ins.opcode, x[0], x[1], x[2]);
        }
        if (used != openings.length) revert OpeningCountMismatch(used, openings.length);
        return result;
    }

    /// @dev The bits of element `flat` of input `slot` (low 32 bits of an integer element, as the
    ///      ISA reads integer tensors), opened against the agreed log by `openings[k]`.
    function _inputElement(
        StepContext calldata ctx,
        OpDescriptor.Op memory op,
        uint256 slot,
        uint256 flat,
        Opening[] memory openings,
        uint256 k
    ) private pure returns (uint32) {
        if (slot >= op.inputs.length) revert OperandOutOfRange(RepOpsISA.KIND_INPUT, slot);
        if (k >= openings.length) revert OpeningCountMismatch(k + 1, openings.length);
        Opening memory o = openings[k];
        uint256 entry = op.inputs[slot];
        if (!MerkleLog.verifyValue(ctx.logRoot, o.tensorId, entry, ctx.logSize, o.logProof)) {
            revert InputNotInLog(entry, o.tensorId);
        }
        uint256 dtype = op.dtypes[slot];
        if (dtype > type(uint8).max) revert TensorCommit.UnknownDtype(type(uint8).max);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked just above
        uint8 code = uint8(dtype);
        uint256 bits = TensorCommit.verifyElement(o.tensorId, code, op.shapes[slot], flat, o.chunk, o.chunkProof);
        // The ISA reads an integer element as its low 32 bits (two's complement): truncation intended.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint32(bits);
    }

    /// @dev The 21-byte big-endian encoding of `Instr.encode`.
    function _encode(RepOpsISA.Instr memory ins) private pure returns (bytes21) {
        uint256 w = (uint256(ins.opcode) << 160) | (uint256(ins.dst) << 144);
        uint256 n = RepOpsISA.arity(ins.opcode);
        for (uint256 i; i < n; ++i) {
            RepOpsISA.Operand memory o = ins.srcs[i];
            w |= ((uint256(o.kind) << 40) | (uint256(o.slot) << 32) | o.value) << (96 - 48 * i);
        }
        // w has 168 significant bits: opcode at 160, dst at 144, three 48-bit operands below.
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes21(uint168(w));
    }
}
