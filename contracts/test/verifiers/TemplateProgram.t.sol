// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {IOneStepVerifier} from "../../src/interfaces/IOneStepVerifier.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";
import {ScalarStepVerifier} from "../../src/verifiers/ScalarStepVerifier.sol";
import {TemplateProgram} from "../../src/verifiers/programs/TemplateProgram.sol";

/// @notice Exposes TemplateProgram's class rule.
contract TemplateHarness {
    function classOf(uint256 kind, uint256[] memory coords, uint256[] memory domain)
        external
        pure
        returns (uint256, uint256)
    {
        return TemplateProgram.classOf(kind, coords, domain);
    }
}

/// @notice Template programs and sgd's step table on a world built by hand: the op log holds
///         W (2, 3) = [1..6] (float32) and ids (2,) = [1, 0] (int32). `embedding(ids, W)` (kind 33)
///         writes entry 2; its template (one class, base (0, 0), domain (2, 3)) is the tracer's:
///             m0: r0 = IMUL in0[p], #3       in0 moves by (1, 0)
///             m1: r0 = IADD r0, #j           the immediate moves by (0, 1)
///             m2: r0 = LOAD #1, r0           data-dependent: the element of W the index names
///         so element (p, j) is W[ids[p] * 3 + j]. `sgd(W, W)` (kind 14) reads lr from its step
///         table (step 0: 0.25, step 1: 0.5).
contract TemplateProgramTest is TestBase {
    uint32 internal constant F2 = 0x40000000;
    uint32 internal constant F3 = 0x40400000;
    uint32 internal constant F4 = 0x40800000;

    ScalarStepVerifier internal v;
    TemplateHarness internal h;
    bytes internal chunkW;
    bytes internal chunkIds;
    bytes32 internal idW;
    bytes32 internal idIds;
    bytes32 internal logRoot;
    bytes[3] internal leaves;
    bytes32 internal templateRoot;
    bytes internal embedding;
    bytes internal sgd;
    bytes32 internal tableRoot;

    function setUp() public {
        v = new ScalarStepVerifier();
        h = new TemplateHarness();
        chunkW = abi.encodePacked(
            uint32(0x3F800000),
            uint32(0x40000000),
            uint32(0x40400000),
            uint32(0x40800000),
            uint32(0x40A00000),
            uint32(0x40C00000)
        );
        chunkIds = abi.encodePacked(uint32(1), uint32(0));
        idW = TensorCommit.tensorId(TensorCommit.DTYPE_FLOAT32, _shape2(2, 3), MerkleLog.hashLeaf(chunkW));
        idIds = TensorCommit.tensorId(TensorCommit.DTYPE_INT32, _shape1(2), MerkleLog.hashLeaf(chunkIds));
        logRoot = MerkleLog.hashNode(MerkleLog.hashLeaf(idW), MerkleLog.hashLeaf(idIds));
        int32[6] memory none;
        int32[6] memory moveIds = [int32(1), 0, 0, 0, 0, 0];
        int32[6] memory moveImm = [int32(0), 0, 0, 1, 0, 0];
        leaves[0] = _leaf(bytes21(0x220000020000000000030000000003000000000000), 2, 3, 0, 0, moveIds);
        leaves[1] = _leaf(bytes21(0x200000010000000000030000000000000000000000), 2, 3, 0, 0, moveImm);
        leaves[2] = _leaf(bytes21(0x300000030000000001010000000000000000000000), 2, 3, 0, 0, none);
        templateRoot = MerkleLog.hashNode(
            MerkleLog.hashNode(MerkleLog.hashLeaf(leaves[0]), MerkleLog.hashLeaf(leaves[1])),
            MerkleLog.hashLeaf(leaves[2])
        );
        embedding = _embeddingDescriptor(_shape2(2, 3));
        v.registerOp(MerkleLog.hashLeaf(embedding), embedding, 1, new bytes32[](0));
        tableRoot = MerkleLog.hashNode(_tableLeaf(0, 0x3E800000), _tableLeaf(1, 0x3F000000));
        sgd = _sgdDescriptor();
        v.registerOp(MerkleLog.hashLeaf(sgd), sgd, 1, new bytes32[](0));
    }

    // ─────────────────────────────────────────────── world

    function _shape1(uint32 a) internal pure returns (uint32[] memory s) {
        s = new uint32[](1);
        s[0] = a;
    }

    function _shape2(uint32 a, uint32 b) internal pure returns (uint32[] memory s) {
        s = new uint32[](2);
        (s[0], s[1]) = (a, b);
    }

    /// @dev A 2-D template leaf: instruction, ndim 2, domain, base, coefficients (operand-major).
    function _leaf(bytes21 ins, uint32 d0, uint32 d1, uint32 b0, uint32 b1, int32[6] memory c)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(ins, uint8(2), d0, d1, b0, b1, c[0], c[1], c[2], c[3], c[4], c[5]);
    }

    function _embeddingDescriptor(uint32[] memory outShape) internal view returns (bytes memory) {
        uint256[] memory inputs = new uint256[](2);
        (inputs[0], inputs[1]) = (1, 0);
        uint256[] memory dtypes = new uint256[](2);
        (dtypes[0], dtypes[1]) = (2, 1);
        uint32[][] memory shapes = new uint32[][](2);
        (shapes[0], shapes[1]) = (_shape1(2), _shape2(2, 3));
        return abi.encode(
            uint256(0),
            uint256(33),
            new uint256[](0),
            inputs,
            dtypes,
            shapes,
            outShape,
            uint256(2),
            templateRoot,
            uint256(3),
            uint256(1)
        );
    }

    function _sgdDescriptor() internal view returns (bytes memory) {
        uint256[] memory inputs = new uint256[](2);
        uint256[] memory dtypes = new uint256[](2);
        (dtypes[0], dtypes[1]) = (1, 1);
        uint32[][] memory shapes = new uint32[][](2);
        (shapes[0], shapes[1]) = (_shape2(2, 3), _shape2(2, 3));
        return abi.encode(
            uint256(0),
            uint256(14),
            new uint256[](0),
            inputs,
            dtypes,
            shapes,
            _shape2(2, 3),
            uint256(2),
            tableRoot,
            uint256(2),
            uint256(1)
        );
    }

    function _tableLeaf(uint256 t, uint32 lr) internal pure returns (bytes32) {
        return MerkleLog.hashLeaf(abi.encode(t, lr));
    }

    function _templateOpening(uint256 m) internal view returns (bytes memory) {
        bytes32[] memory path = new bytes32[](m == 2 ? 1 : 2);
        if (m == 2) {
            path[0] = MerkleLog.hashNode(MerkleLog.hashLeaf(leaves[0]), MerkleLog.hashLeaf(leaves[1]));
        } else {
            path[0] = MerkleLog.hashLeaf(leaves[1 - m]);
            path[1] = MerkleLog.hashLeaf(leaves[2]);
        }
        return abi.encode(leaves[m], path);
    }

    function _ctx(bytes memory descriptor, uint256 element, uint256 m, uint256 trainingStep)
        internal
        pure
        returns (IOneStepVerifier.StepContext memory)
    {
        return IOneStepVerifier.StepContext({
            specHash: keccak256("spec"),
            opGraphRoot: MerkleLog.hashLeaf(descriptor),
            trainingStep: trainingStep,
            logRoot: keccak256("set below"),
            logSize: 2,
            op: 1,
            outputEntry: 2,
            flatIndex: element,
            step: m
        });
    }

    function _openW() internal view returns (ScalarStepVerifier.Opening memory) {
        bytes32[] memory logProof = new bytes32[](1);
        logProof[0] = MerkleLog.hashLeaf(idIds);
        return ScalarStepVerifier.Opening(idW, logProof, chunkW, new bytes32[](0));
    }

    function _openIds() internal view returns (ScalarStepVerifier.Opening memory) {
        bytes32[] memory logProof = new bytes32[](1);
        logProof[0] = MerkleLog.hashLeaf(idW);
        return ScalarStepVerifier.Opening(idIds, logProof, chunkIds, new bytes32[](0));
    }

    function _one(uint32 r0) internal pure returns (uint32[] memory regs) {
        regs = new uint32[](1);
        regs[0] = r0;
    }

    function _step(
        bytes memory descriptor,
        uint256 element,
        uint256 m,
        uint256 trainingStep,
        uint32 r0,
        ScalarStepVerifier.Opening[] memory openings,
        bytes memory programOpening
    ) internal view returns (bytes32) {
        IOneStepVerifier.StepContext memory ctx = _ctx(descriptor, element, m, trainingStep);
        ctx.logRoot = logRoot;
        bytes memory proof = abi.encode(_one(r0), descriptor, uint256(1), new bytes32[](0), openings, programOpening);
        return v.step(ctx, v.stateOf(m, _one(r0)), proof);
    }

    function _openings(ScalarStepVerifier.Opening memory o)
        internal
        pure
        returns (ScalarStepVerifier.Opening[] memory a)
    {
        a = new ScalarStepVerifier.Opening[](1);
        a[0] = o;
    }

    // ─────────────────────────────────────────────── classes

    function _u(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory x) {
        x = new uint256[](4);
        (x[0], x[1], x[2], x[3]) = (a, b, c, d);
    }

    function test_classOf_attnScoresCausal_succeeds() public view {
        uint256[] memory dom = _u(2, 2, 4, 4);
        (uint256 c, uint256 n) = h.classOf(35, _u(1, 1, 2, 2), dom);
        assertEq(c, 0);
        assertEq(n, 2);
        (c,) = h.classOf(35, _u(1, 1, 2, 3), dom); // key after query: masked
        assertEq(c, 1);
        (c,) = h.classOf(35, _u(0, 0, 3, 0), dom);
        assertEq(c, 0);
    }

    function test_classOf_columnsAndParts_succeeds() public view {
        uint256[] memory dom = _u(2, 2, 4, 5);
        (uint256 c, uint256 n) = h.classOf(25, _u(1, 1, 2, 3), dom); // softmax: the column
        assertEq(c, 3);
        assertEq(n, 5);
        (c, n) = h.classOf(7, _u(0, 0, 0, 4), dom); // cross_entropy_backward
        assertEq(c, 4);
        (c, n) = h.classOf(23, _u(1, 1, 2, 3), dom); // gelu: one class
        assertEq(c, 0);
        assertEq(n, 1);
        uint256[] memory d5 = new uint256[](5);
        (d5[0], d5[1], d5[2], d5[3], d5[4]) = (2, 8, 3, 2, 4);
        uint256[] memory x5 = new uint256[](5);
        (x5[0], x5[1], x5[2], x5[3], x5[4]) = (1, 7, 2, 1, 3);
        (c, n) = h.classOf(38, x5, d5); // attn_dqkv: q, k or v
        assertEq(c, 2);
        assertEq(n, 3);
    }

    // ─────────────────────────────────────────────── relocation

    function test_instructionWith_movedInputAndImmediate_succeeds() public view {
        // element 5 = (1, 2): in0[1], #2
        assertEq(
            bytes32(v.instructionWith(embedding, 5, 0, 0, _templateOpening(0))),
            bytes32(bytes21(0x220000020000000001030000000003000000000000))
        );
        assertEq(
            bytes32(v.instructionWith(embedding, 5, 1, 0, _templateOpening(1))),
            bytes32(bytes21(0x200000010000000000030000000002000000000000))
        );
        // element 3 = (1, 0): #0
        assertEq(
            bytes32(v.instructionWith(embedding, 3, 1, 0, _templateOpening(1))),
            bytes32(bytes21(0x200000010000000000030000000000000000000000))
        );
    }

    function test_instructionWith_negativeCoefficientsOffBase_succeeds() public {
        // gelu (one class) over (2, 3), base (1, 2): r0 = FADD in0[5], #1.0 with in0 moving by (3, 1)
        // and the immediate by (-2^23, 0): element 0 (offsets -1, -2) reads in0[0] and adds 2.0.
        bytes memory leaf =
            _leaf(bytes21(0x01000002000000000503003F800000000000000000), 2, 3, 1, 2, [int32(3), 1, -8388608, 0, 0, 0]);
        uint256[] memory inputs = new uint256[](1);
        uint256[] memory dtypes = new uint256[](1);
        dtypes[0] = 1;
        uint32[][] memory shapes = new uint32[][](1);
        shapes[0] = _shape2(2, 3);
        bytes memory d = abi.encode(
            uint256(0),
            uint256(23),
            new uint256[](0),
            inputs,
            dtypes,
            shapes,
            _shape2(2, 3),
            uint256(1),
            MerkleLog.hashLeaf(leaf),
            uint256(1),
            uint256(1)
        );
        bytes memory opening = abi.encode(leaf, new bytes32[](0));
        assertEq(
            bytes32(v.instructionWith(d, 0, 0, 0, opening)),
            bytes32(bytes21(0x010000020000000000030040000000000000000000))
        );
        assertEq(
            bytes32(v.instructionWith(d, 4, 0, 0, opening)),
            bytes32(bytes21(0x01000002000000000403003F800000000000000000))
        );
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.StepOutOfRange.selector, 1, 1));
        v.instructionWith(d, 0, 1, 0, opening);
    }

    function test_instructionWith_leafOfAnotherInstruction_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(TemplateProgram.TemplateNotCommitted.selector, 5, 1));
        v.instructionWith(embedding, 5, 1, 0, abi.encode(leaves[0], new bytes32[](2)));
        bytes memory opening = _templateOpening(1);
        (bytes memory leaf, bytes32[] memory path) = abi.decode(opening, (bytes, bytes32[]));
        leaf[leaf.length - 1] = 0x01; // a coefficient changed
        vm.expectRevert(abi.encodeWithSelector(TemplateProgram.TemplateNotCommitted.selector, 5, 1));
        v.instructionWith(embedding, 5, 1, 0, abi.encode(leaf, path));
    }

    function test_instructionWith_malformedLeaf_reverts() public {
        bytes memory short = new bytes(41); // ndim 0 would need 22 bytes
        vm.expectRevert(abi.encodeWithSelector(TemplateProgram.BadTemplateLeaf.selector, 41));
        v.instructionWith(embedding, 0, 0, 0, abi.encode(short, new bytes32[](0)));
    }

    function test_instructionWith_domainOfAnotherSize_reverts() public {
        bytes memory d = _embeddingDescriptor(_shape2(2, 2));
        vm.expectRevert(abi.encodeWithSelector(TemplateProgram.DomainMismatch.selector, 6, 4));
        v.instructionWith(d, 0, 0, 0, _templateOpening(0));
    }

    // ─────────────────────────────────────────────── steps

    function test_step_embeddingElement_succeeds() public view {
        // element 5 = (1, 2): ids[1] = 0, so W[0 * 3 + 2] = 3.0
        assertEq(_step(embedding, 5, 0, 0, 0, _openings(_openIds()), _templateOpening(0)), v.stateOf(1, _one(0)));
        assertEq(
            _step(embedding, 5, 1, 0, 0, new ScalarStepVerifier.Opening[](0), _templateOpening(1)),
            v.stateOf(2, _one(2))
        );
        assertEq(_step(embedding, 5, 2, 0, 2, _openings(_openW()), _templateOpening(2)), v.stateOf(3, _one(F3)));
        // element 0 = (0, 0): ids[0] = 1, so W[3] = 4.0
        assertEq(_step(embedding, 0, 0, 0, 0, _openings(_openIds()), _templateOpening(0)), v.stateOf(1, _one(3)));
        assertEq(_step(embedding, 0, 2, 0, 3, _openings(_openW()), _templateOpening(2)), v.stateOf(3, _one(F4)));
    }

    function test_step_loadFromAnotherTensor_reverts() public {
        IOneStepVerifier.StepContext memory ctx = _ctx(embedding, 5, 2, 0);
        ctx.logRoot = logRoot;
        bytes memory proof =
            abi.encode(_one(2), embedding, uint256(1), new bytes32[](0), _openings(_openIds()), _templateOpening(2));
        bytes32 pre = v.stateOf(2, _one(2));
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.InputNotInLog.selector, 0, idIds));
        v.step(ctx, pre, proof);
    }

    function _sgdOpening(uint256 t, uint32 lr) internal pure returns (bytes memory) {
        bytes32[] memory path = new bytes32[](1);
        path[0] = t == 0 ? _tableLeaf(1, 0x3F000000) : _tableLeaf(0, 0x3E800000);
        return abi.encode(lr, uint256(2), path);
    }

    function test_step_sgdElement_succeeds() public view {
        // step 1 (lr 0.5), element 3: W[3] - 0.5 * W[3] = 4 - 2 = 2
        assertEq(_step(sgd, 3, 0, 1, 0, _openings(_openW()), _sgdOpening(1, 0x3F000000)), v.stateOf(1, _one(F2)));
        assertEq(_step(sgd, 3, 1, 1, F2, _openings(_openW()), _sgdOpening(1, 0x3F000000)), v.stateOf(2, _one(F2)));
        // step 0 (lr 0.25): 0.25 * W[3] = 1.0
        assertEq(
            _step(sgd, 3, 0, 0, 0, _openings(_openW()), _sgdOpening(0, 0x3E800000)), v.stateOf(1, _one(0x3F800000))
        );
    }

    function test_step_sgdRateOfAnotherStep_reverts() public {
        IOneStepVerifier.StepContext memory ctx = _ctx(sgd, 3, 0, 1);
        ctx.logRoot = logRoot;
        bytes memory proof =
            abi.encode(_one(0), sgd, uint256(1), new bytes32[](0), _openings(_openW()), _sgdOpening(0, 0x3E800000));
        bytes32 pre = v.stateOf(0, _one(0));
        vm.expectRevert(abi.encodeWithSelector(ScalarStepVerifier.StepConstantsNotCommitted.selector, 1));
        v.step(ctx, pre, proof);
    }
}
