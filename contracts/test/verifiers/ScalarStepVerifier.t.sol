// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {IOneStepVerifier} from "../../src/interfaces/IOneStepVerifier.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";
import {ScalarStepVerifier} from "../../src/verifiers/ScalarStepVerifier.sol";

/// @notice ScalarStepVerifier on a world small enough to build by hand: the op log holds A (2, 3) =
///         [1..6] and B (3, 2) = [1..6] (float32, one chunk each); the op graph has one op,
///         matmul(A, B), writing entry 2. Element 0 sums 3 terms in 2 chunks (c = 2, L = 2, the
///         second chunk shorter), so its program is
///             m0: r0 = FMULADD #0, A[0], B[0]     1
///             m1: r0 = FMULADD r0, A[1], B[2]     1 + 2*3 = 7
///             m2: r1 = FMULADD #0, A[2], B[4]     3*5 = 15
///             m3: r0 = FADD r0, r1                22
contract ScalarStepVerifierTest is TestBase {
    uint32 internal constant F1 = 0x3F800000;
    uint32 internal constant F7 = 0x40E00000;
    uint32 internal constant F15 = 0x41700000;
    uint32 internal constant F22 = 0x41B00000;

    ScalarStepVerifier internal v;
    bytes internal chunkA;
    bytes internal chunkB;
    bytes32 internal idA;
    bytes32 internal idB;
    bytes32 internal logRoot;
    bytes internal descriptor;
    bytes32 internal graphRoot;

    event OpRegistered(
        bytes32 indexed opGraphRoot, uint256 indexed opIndex, uint256 kind, uint256 programLength, uint256 registers
    );

    function setUp() public {
        v = new ScalarStepVerifier();
        chunkA = _floats(6);
        chunkB = _floats(6);
        idA = _id(_shape(2, 3), chunkA);
        idB = _id(_shape(3, 2), chunkB);
        logRoot = MerkleLog.hashNode(MerkleLog.hashLeaf(idA), MerkleLog.hashLeaf(idB));
        descriptor = _descriptor(1);
        graphRoot = MerkleLog.hashLeaf(descriptor);
        v.registerOp(graphRoot, descriptor, 1, new bytes32[](0));
    }

    // ─────────────────────────────────────────────── world

    /// @dev float32 1.0, 2.0, ..., n as big-endian bytes.
    function _floats(uint256 n) internal pure returns (bytes memory out) {
        uint32[6] memory bits = [uint32(0x3F800000), 0x40000000, 0x40400000, 0x40800000, 0x40A00000, 0x40C00000];
        for (uint256 i; i < n; ++i) {
            out = abi.encodePacked(out, bits[i]);
        }
    }

    function _shape(uint32 a, uint32 b) internal pure returns (uint32[] memory s) {
        s = new uint32[](2);
        (s[0], s[1]) = (a, b);
    }

    function _id(uint32[] memory shape, bytes memory chunk) internal pure returns (bytes32) {
        return TensorCommit.tensorId(TensorCommit.DTYPE_FLOAT32, shape, MerkleLog.hashLeaf(chunk));
    }

    function _descriptor(uint256 kind) internal pure returns (bytes memory) {
        uint256[] memory attrs = new uint256[](2); // ta = tb = 0
        uint256[] memory inputs = new uint256[](2);
        (inputs[0], inputs[1]) = (0, 1);
        uint256[] memory dtypes = new uint256[](2);
        (dtypes[0], dtypes[1]) = (1, 1);
        uint32[][] memory shapes = new uint32[][](2);
        (shapes[0], shapes[1]) = (_shape(2, 3), _shape(3, 2));
        // Derived programs: programRoot, programLength and programRegisters are zero.
        return abi.encode(
            uint256(0),
            kind,
            attrs,
            inputs,
            dtypes,
            shapes,
            _shape(2, 2),
            uint256(2),
            bytes32(0),
            uint256(0),
            uint256(0)
        );
    }

    function _ctx(uint256 m) internal view returns (IOneStepVerifier.StepContext memory) {
        return IOneStepVerifier.StepContext({
            specHash: keccak256("spec"),
            opGraphRoot: graphRoot,
            trainingStep: 7,
            logRoot: logRoot,
            logSize: 2,
            op: 1,
            outputEntry: 2,
            flatIndex: 0,
            step: m
        });
    }

    function _regs(uint32 r0, uint32 r1) internal pure returns (uint32[] memory regs) {
        regs = new uint32[](2);
        (regs[0], regs[1]) = (r0, r1);
    }

    function _openA(uint256) internal view returns (ScalarStepVerifier.Opening memory o) {
        bytes32[] memory logProof = new bytes32[](1);
        logProof[0] = MerkleLog.hashLeaf(idB);
        o = ScalarStepVerifier.Opening(idA, logProof, chunkA, new bytes32[](0));
    }

    function _openB(uint256) internal view returns (ScalarStepVerifier.Opening memory o) {
        bytes32[] memory logProof = new bytes32[](1);
        logProof[0] = MerkleLog.hashLeaf(idA);
        o = ScalarStepVerifier.Opening(idB, logProof, chunkB, new bytes32[](0));
    }

    function _proof(uint32[] memory regs, ScalarStepVerifier.Opening[] memory openings)
        internal
        view
        returns (bytes memory)
    {
        return abi.encode(regs, descriptor, uint256(1), new bytes32[](0), openings, bytes(""));
    }

    function _twoOpenings() internal view returns (ScalarStepVerifier.Opening[] memory o) {
        o = new ScalarStepVerifier.Opening[](2);
        (o[0], o[1]) = (_openA(0), _openB(0));
    }

    /// @dev Expects `step` to revert with `err`; the arguments are evaluated before the cheatcode
    ///      (they call the verifier's `stateOf`, which would otherwise be the expected call).
    function _expectStepRevert(
        bytes memory err,
        IOneStepVerifier.StepContext memory ctx,
        bytes32 pre,
        bytes memory proof
    ) internal {
        vm.expectRevert(err);
        v.step(ctx, pre, proof);
    }

    // ─────────────────────────────────────────────── programs

    function test_programLength_matmulElement_succeeds() public view {
        assertEq(v.programLength(_ctx(0)), 4);
        assertEq(v.initialState(_ctx(0)), v.stateOf(0, _regs(0, 0)));
        (uint256 len, uint256 regs, uint256 result) = v.programShape(descriptor, 3);
        assertEq(len, 4);
        assertEq(regs, 2);
        assertEq(result, 0);
    }

    function test_instructionAt_matmulElement_succeeds() public view {
        // r0 = FMULADD #0, in0[0], in1[0]: opcode 05, dst 0000, (3,0,0) (2,0,0) (2,1,0)
        assertEq(
            bytes32(v.instructionWith(descriptor, 0, 0, 0, "")),
            bytes32(bytes21(0x050000030000000000020000000000020100000000))
        );
        // r1 = FMULADD #0, in0[2], in1[4]
        assertEq(
            bytes32(v.instructionWith(descriptor, 0, 2, 0, "")),
            bytes32(bytes21(0x050001030000000000020000000002020100000004))
        );
        // r0 = FADD r0, r1
        assertEq(
            bytes32(v.instructionWith(descriptor, 0, 3, 0, "")),
            bytes32(bytes21(0x010000010000000000010000000001000000000000))
        );
    }

    function test_registerOp_emits_succeeds() public {
        ScalarStepVerifier w = new ScalarStepVerifier();
        vm.expectEmit(true, true, false, true, address(w));
        emit OpRegistered(graphRoot, 0, 1, 4, 2);
        w.registerOp(graphRoot, descriptor, 1, new bytes32[](0));
        assertTrue(w.isRegistered(graphRoot, 0));
        assertFalse(w.isRegistered(graphRoot, 1));
    }

    // ─────────────────────────────────────────────── step

    function test_step_firstInstruction_succeeds() public view {
        bytes32 post = v.step(_ctx(0), v.stateOf(0, _regs(0, 0)), _proof(_regs(0, 0), _twoOpenings()));
        assertEq(post, v.stateOf(1, _regs(F1, 0)));
    }

    function test_step_secondChunk_succeeds() public view {
        bytes32 pre = v.stateOf(2, _regs(F7, 0));
        bytes32 post = v.step(_ctx(2), pre, _proof(_regs(F7, 0), _twoOpenings()));
        assertEq(post, v.stateOf(3, _regs(F7, F15)));
    }

    function test_step_registerOnly_succeeds() public view {
        bytes32 pre = v.stateOf(3, _regs(F7, F15));
        bytes32 post = v.step(_ctx(3), pre, _proof(_regs(F7, F15), new ScalarStepVerifier.Opening[](0)));
        assertEq(post, v.stateOf(4, _regs(F22, F15)));
    }

    function test_step_wrongPreState_reverts() public {
        bytes32 pre = v.stateOf(0, _regs(0, 0));
        bytes32 opened = v.stateOf(0, _regs(F1, 0));
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.StateOpeningMismatch.selector, pre, opened),
            _ctx(0),
            pre,
            _proof(_regs(F1, 0), _twoOpenings())
        );
    }

    function test_step_wrongRegisterCount_reverts() public {
        uint32[] memory three = new uint32[](3);
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.RegisterCountMismatch.selector, 2, 3),
            _ctx(0),
            v.stateOf(0, three),
            _proof(three, _twoOpenings())
        );
    }

    function test_step_wrongDescriptorProof_reverts() public {
        bytes32[] memory path = new bytes32[](1);
        path[0] = keccak256("sibling");
        bytes memory proof = abi.encode(_regs(0, 0), descriptor, uint256(2), path, _twoOpenings(), bytes(""));
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.DescriptorNotInGraph.selector, graphRoot, 0),
            _ctx(0),
            v.stateOf(0, _regs(0, 0)),
            proof
        );
    }

    function test_step_otherDescriptor_reverts() public {
        bytes memory other = _descriptor(3); // linear_nobias over the same entries: not the committed op
        bytes memory proof = abi.encode(_regs(0, 0), other, uint256(1), new bytes32[](0), _twoOpenings(), bytes(""));
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.DescriptorNotInGraph.selector, graphRoot, 0),
            _ctx(0),
            v.stateOf(0, _regs(0, 0)),
            proof
        );
    }

    function test_step_wrongOp_reverts() public {
        IOneStepVerifier.StepContext memory ctx = _ctx(0);
        ctx.op = 2;
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.WrongOp.selector, 1, 0),
            ctx,
            v.stateOf(0, _regs(0, 0)),
            _proof(_regs(0, 0), _twoOpenings())
        );
    }

    function test_step_logNotBeforeOp_reverts() public {
        IOneStepVerifier.StepContext memory ctx = _ctx(0);
        ctx.logSize = 3;
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.LogMismatch.selector, 2, 3, 2),
            ctx,
            v.stateOf(0, _regs(0, 0)),
            _proof(_regs(0, 0), _twoOpenings())
        );
    }

    function test_step_swappedOpenings_reverts() public {
        ScalarStepVerifier.Opening[] memory o = new ScalarStepVerifier.Opening[](2);
        (o[0], o[1]) = (_openB(0), _openA(0));
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.InputNotInLog.selector, 0, idB),
            _ctx(0),
            v.stateOf(0, _regs(0, 0)),
            _proof(_regs(0, 0), o)
        );
    }

    function test_step_wrongChunk_reverts() public {
        ScalarStepVerifier.Opening[] memory o = _twoOpenings();
        bytes memory forged = bytes.concat(chunkA);
        forged[3] = 0x01; // A[0] = 1.0000001
        o[0].chunk = forged;
        bytes32 forgedId = _id(_shape(2, 3), forged);
        _expectStepRevert(
            abi.encodeWithSelector(TensorCommit.TensorIdMismatch.selector, idA, forgedId),
            _ctx(0),
            v.stateOf(0, _regs(0, 0)),
            _proof(_regs(0, 0), o)
        );
    }

    function test_step_missingOpening_reverts() public {
        ScalarStepVerifier.Opening[] memory o = new ScalarStepVerifier.Opening[](1);
        o[0] = _openA(0);
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.OpeningCountMismatch.selector, 2, 1),
            _ctx(0),
            v.stateOf(0, _regs(0, 0)),
            _proof(_regs(0, 0), o)
        );
    }

    function test_step_extraOpening_reverts() public {
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.OpeningCountMismatch.selector, 0, 2),
            _ctx(3),
            v.stateOf(3, _regs(F7, F15)),
            _proof(_regs(F7, F15), _twoOpenings())
        );
    }

    function test_step_beyondProgram_reverts() public {
        _expectStepRevert(
            abi.encodeWithSelector(ScalarStepVerifier.StepOutOfRange.selector, 4, 4),
            _ctx(4),
            v.stateOf(4, _regs(F22, F15)),
            _proof(_regs(F22, F15), _twoOpenings())
        );
    }

    // ─────────────────────────────────────────────── registration and output

    function test_registerOp_unsupportedOp_reverts() public {
        bytes memory ce = _descriptor(6); // cross_entropy
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.UnsupportedOp.selector, 6));
        v.registerOp(MerkleLog.hashLeaf(ce), ce, 1, new bytes32[](0));
    }

    function test_registerOp_notInGraph_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.DescriptorNotInGraph.selector, bytes32(0), 0));
        v.registerOp(bytes32(0), descriptor, 1, new bytes32[](0));
    }

    function test_programLength_unregistered_reverts() public {
        IOneStepVerifier.StepContext memory ctx = _ctx(0);
        ctx.opGraphRoot = keccak256("another graph");
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.OpNotRegistered.selector, ctx.opGraphRoot, 0));
        v.programLength(ctx);
    }

    function test_outputMatches_finalState_succeeds() public view {
        bytes memory out = abi.encodePacked(F22, F1, F1, F1);
        bytes32 outId = _id(_shape(2, 2), out);
        bytes memory opening = abi.encode(_regs(F22, F15), _shape(2, 2), out, new bytes32[](0));
        assertTrue(v.outputMatches(_ctx(0), v.stateOf(4, _regs(F22, F15)), outId, opening));
        bytes memory lie = abi.encodePacked(F15, F1, F1, F1);
        bytes32 lieId = _id(_shape(2, 2), lie);
        opening = abi.encode(_regs(F22, F15), _shape(2, 2), lie, new bytes32[](0));
        assertFalse(v.outputMatches(_ctx(0), v.stateOf(4, _regs(F22, F15)), lieId, opening));
    }

    function test_outputMatches_wrongFinalState_reverts() public {
        bytes memory out = abi.encodePacked(F22, F1, F1, F1);
        bytes memory opening = abi.encode(_regs(F22, F15), _shape(2, 2), out, new bytes32[](0));
        bytes32 committed = v.stateOf(3, _regs(F22, F15)); // leaf 3, not the final leaf 4
        vm.expectRevert(
            abi.encodeWithSelector(
                ScalarStepVerifier.StateOpeningMismatch.selector, committed, v.stateOf(4, _regs(F22, F15))
            )
        );
        v.outputMatches(_ctx(0), committed, _id(_shape(2, 2), out), opening);
    }
}
