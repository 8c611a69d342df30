// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "../market/MarketFixture.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {AvailabilityChallenge} from "../../src/AvailabilityChallenge.sol";
import {IAvailabilityChallenge} from "../../src/interfaces/IAvailabilityChallenge.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";

/// @notice Gas of availability challenges, and whether the refund an answer gets matches what the
///         answer costs. The result's checkpoint CP holds a float32 tensor of 8192 elements (32 KiB:
///         128 full chunks of 256 bytes) among STATE_SIZE tensors; the other tensors and the other
///         checkpoints are opaque 32-byte leaves (an answer only opens one path through them).
///
///         Every measured call is the first thing its test does on state left by `setUp`. Forge
///         commits `setUp` before each test and runs the test as a transaction of its own, so the
///         call meets cold accounts and slots and the storage prices of a transaction of its own
///         (a slot written in `setUp` is not "dirty" for it), as it would on chain. Each test prints
///         the gas measured around the external call (`gasleft()`), the estimated transaction total
///         (that plus 21,000 plus the calldata) and, for answers, the gas the contract refunded.
///         No credit exists before an answer here, so its two credits write fresh slots: the
///         costliest case, and the common one (credits are withdrawn).
///
///         `node_modules/.bin/forge test --match-path contracts/test/dispute/AvailabilityGas.t.sol -vv`
contract AvailabilityGasTest is MarketFixture {
    uint256 internal constant CH_BOND = 0.05 ether;
    uint64 internal constant WINDOW = 1 hours;
    uint256 internal constant N_CP = STEPS / INTERVAL + 1; // 11 checkpoints
    uint256 internal constant CP = 7; // the checkpoint whose tensor is demanded
    uint256 internal constant STATE_SIZE = 16;
    uint256 internal constant TENSOR = 5; // position of the big tensor in the state
    uint32 internal constant NUMEL = 8192; // float32: 32768 bytes, 128 chunks
    uint256 internal constant N_CHUNKS = NUMEL * 4 / 256;
    bytes32 internal constant GRAPH = keccak256("graph");
    bytes32 internal constant INPUTS = keccak256("inputs");
    uint256 internal constant BASEFEE = 1 gwei;

    event log_named_uint(string key, uint256 val);
    event log_named_string(string key, string val);

    AvailabilityChallenge internal ac;
    uint256 internal taskId;
    address internal answerer;
    /// @dev Challenges opened in `setUp`, by chunk count.
    uint256 internal id1;
    uint256 internal id8;
    uint256 internal id32;

    function setUp() public override {
        super.setUp();
        ac = new AvailabilityChallenge(IDisputeHook(address(market)), CH_BOND, WINDOW, 10_000);
        vm.prank(owner);
        market.setDisputeContract(address(ac), true);
        vm.deal(challenger, 10 ether);
        answerer = makeAddr("answerer");
        vm.fee(BASEFEE);
        taskId = _deliver();
        id1 = _challenge(3, 1);
        id8 = _challenge(40, 8);
        id32 = _challenge(64, 32);
    }

    // ─────────────────────────────────────────────── the committed run

    function _shape() internal pure returns (uint32[] memory s) {
        s = new uint32[](1);
        s[0] = NUMEL;
    }

    /// @dev Chunk leaf hashes of the big tensor; chunk k is 256 pseudo-random bytes (float32 bit
    ///      patterns are arbitrary for the commitment, and random bytes are the costly calldata case).
    function _chunk(uint256 k) internal pure returns (bytes memory b) {
        b = new bytes(256);
        for (uint256 w; w < 8; ++w) {
            bytes32 word = keccak256(abi.encode(k, w));
            assembly ("memory-safe") {
                mstore(add(add(b, 32), mul(w, 32)), word)
            }
        }
    }

    function _leaves() internal pure returns (bytes32[] memory h) {
        h = new bytes32[](N_CHUNKS);
        for (uint256 k; k < N_CHUNKS; ++k) {
            h[k] = MerkleLog.hashLeaf(_chunk(k));
        }
    }

    function _ids() internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](STATE_SIZE);
        for (uint256 j; j < STATE_SIZE; ++j) {
            ids[j] = keccak256(abi.encode("tensor", j));
        }
        ids[TENSOR] =
            TensorCommit.tensorId(TensorCommit.DTYPE_FLOAT32, _shape(), MerkleBuilder.rootOfHashes(_leaves()));
    }

    function _states() internal pure returns (bytes32[] memory s) {
        s = new bytes32[](N_CP);
        for (uint256 c; c < N_CP; ++c) {
            s[c] = keccak256(abi.encode("state", c));
        }
        s[CP] = MerkleBuilder.root(_ids());
    }

    function _layout() internal pure returns (IAvailabilityChallenge.StateLayout memory l) {
        l.graphRoot = GRAPH;
        l.numOps = 400;
        l.stateSize = STATE_SIZE;
        l.designated = new uint64[](STATE_SIZE);
        for (uint256 j; j < STATE_SIZE; ++j) {
            l.designated[j] = uint64(300 + j);
        }
        l.inputsRoot = INPUTS;
    }

    function _deliver() internal returns (uint256 id) {
        ITaskMarket.TaskParams memory p = _params();
        bytes32[] memory states = _states();
        IAvailabilityChallenge.StateLayout memory l = _layout();
        p.initialStateRoot = states[0];
        p.opGraphRoot = Bisection.graphCommitment(
            l.graphRoot, keccak256(abi.encode(l.numOps, l.stateSize, l.designated, l.inputsRoot))
        );
        id = _assignedWith(alice, 1 ether, p);
        vm.prank(alice);
        market.submitResult(id, MerkleBuilder.root(states), STEPS, states[N_CP - 1], "http://alice/artifacts");
    }

    function _challengeCall(uint256 first, uint256 count) internal view returns (bytes memory) {
        return abi.encodeCall(ac.challenge, (taskId, CP, TENSOR, first, count, _layout()));
    }

    function _challenge(uint256 first, uint256 count) internal returns (uint256) {
        vm.prank(challenger);
        return ac.challenge{value: CH_BOND}(taskId, CP, TENSOR, first, count, _layout());
    }

    function _answer(uint256 first, uint256 count) internal pure returns (IAvailabilityChallenge.ChunkAnswer memory a) {
        bytes32[] memory states = _states();
        bytes32[] memory ids = _ids();
        bytes32[] memory leaves = _leaves();
        a.stateRoot = states[CP];
        a.traceProof = MerkleBuilder.proof(states, CP);
        a.tensorId = ids[TENSOR];
        a.idProof = MerkleBuilder.proof(ids, TENSOR);
        a.dtype = TensorCommit.DTYPE_FLOAT32;
        a.shape = _shape();
        a.chunkRoot = MerkleBuilder.rootOfHashes(leaves);
        a.chunks = new bytes[](count);
        a.chunkProofs = new bytes32[][](count);
        for (uint256 i; i < count; ++i) {
            a.chunks[i] = _chunk(first + i);
            a.chunkProofs[i] = MerkleBuilder.proofOfHashes(leaves, first + i);
        }
    }

    // ─────────────────────────────────────────────── measuring

    /// @dev Calls `ac` with `data` (and `value`) from `from`; returns the gas the call took as a
    ///      transaction's execution would: what `gasleft()` saw go, less what the CALL itself charges
    ///      the caller and a transaction does not (2,600 for the cold target, and 9,000 for a value
    ///      transfer less its 2,300 stipend). The call reads its arguments where `data` lies: copying
    ///      them first would charge the caller's memory expansion, which in a test contract that has
    ///      built the answer is larger than the call itself.
    function _measure(address from, uint256 value, bytes memory data) internal returns (uint256 used) {
        vm.deal(from, from.balance + value);
        address target = address(ac);
        vm.prank(from);
        uint256 g0 = gasleft();
        bool ok;
        assembly ("memory-safe") {
            ok := call(gas(), target, value, add(data, 32), mload(data), 0, 0)
        }
        used = g0 - gasleft();
        if (!ok) {
            assembly ("memory-safe") {
                let p := mload(0x40)
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
        }
        used -= 2_600;
        if (value > 0) used -= 9_000 - 2_300;
    }

    /// @dev A transaction's intrinsic gas for `data` before Prague: 21,000, 4 a zero byte, 16 another.
    function _intrinsic(bytes memory data) internal pure returns (uint256 g) {
        g = 21_000;
        for (uint256 i; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    /// @dev The EIP-7623 (Prague) floor of a transaction with `data`: 21,000 + 10 a token, a zero byte
    ///      one token, another four. A transaction pays at least this.
    function _floor(bytes memory data) internal pure returns (uint256 g) {
        uint256 tokens;
        for (uint256 i; i < data.length; ++i) {
            tokens += data[i] == 0 ? 1 : 4;
        }
        g = 21_000 + 10 * tokens;
    }

    /// @dev Answers challenge `id` (chunks [first, first + count)) and checks the refund against the
    ///      transaction's cost, estimated two ways: the gas measured plus 21,000 plus 16 a calldata
    ///      byte (the rule the contract applies to what it cannot measure), and what the transaction
    ///      is charged (zero bytes at 4 gas, and no less than the EIP-7623 floor).
    function _answerAndCompare(uint256 id, uint256 first, uint256 count, string memory label) internal {
        bytes memory data = abi.encodeCall(ac.answer, (id, _answer(first, count)));
        uint256 used = _measure(answerer, 0, data);
        assertEq(uint256(ac.getChallenge(id).status), uint256(IAvailabilityChallenge.Status.Answered));
        uint256 estimate = used + 21_000 + 16 * data.length;
        uint256 exact = used + _intrinsic(data);
        uint256 refunded = ac.creditOf(answerer) / BASEFEE;
        assertEq(ac.creditOf(answerer) + ac.creditOf(challenger), CH_BOND, "the bond splits exactly");
        emit log_named_string("answer", label);
        emit log_named_uint("  calldata bytes", data.length);
        emit log_named_uint("  gas measured around the call (gasleft)", used);
        emit log_named_uint("  tx estimate: measured + 21000 + 16/byte", estimate);
        emit log_named_uint("  tx, calldata at 4/16 (Cancun)", exact);
        emit log_named_uint("  EIP-7623 floor (Prague)", _floor(data));
        emit log_named_uint("  refunded gas (credit / basefee)", refunded);
        emit log_named_uint("  refunded / estimate, permille", refunded * 1000 / estimate);
        assertGe(refunded * 10, estimate * 8, "refund below 0.8x the 16-a-byte estimate");
        assertLe(refunded * 10, estimate * 13, "refund above 1.3x the 16-a-byte estimate");
        // What the transaction is charged: zero bytes at 4 gas, and at least the EIP-7623 floor on a
        // chain after Prague (anvil's default), which a 32-chunk answer reaches.
        uint256 charged = exact > _floor(data) ? exact : _floor(data);
        emit log_named_uint("  refunded / charged (max of the two), permille", refunded * 1000 / charged);
        assertGe(refunded * 10, charged * 9, "refund below 0.9x the answer's charged gas");
        assertLe(refunded * 10, charged * 12, "refund above 1.2x the answer's charged gas");
    }

    // ─────────────────────────────────────────────── gas

    function test_challenge_gas_succeeds() public {
        bytes memory data = _challengeCall(0, 32);
        uint256 used = _measure(challenger, CH_BOND, data);
        emit log_named_uint("challenge: calldata bytes", data.length);
        emit log_named_uint("challenge: gas measured around the call (gasleft)", used);
        emit log_named_uint("challenge: tx estimate (+ 21000 + 16/byte)", used + 21_000 + 16 * data.length);
        emit log_named_uint("challenge: tx, calldata at 4/16", used + _intrinsic(data));
        assertEq(uint256(ac.getChallenge(ac.challengeCount()).status), uint256(IAvailabilityChallenge.Status.Open));
        assertLt(used, 400_000);
    }

    function test_answer1_gas_succeeds() public {
        _answerAndCompare(id1, 3, 1, "1 chunk");
    }

    function test_answer8_gas_succeeds() public {
        _answerAndCompare(id8, 40, 8, "8 chunks");
    }

    function test_answer32_gas_succeeds() public {
        _answerAndCompare(id32, 64, 32, "32 chunks");
        assertEq(ac.getChallenge(id32).count, ac.MAX_CHUNKS());
    }

    function test_claimUnanswered_gas_succeeds() public {
        vm.warp(block.timestamp + WINDOW); // the deadline of the challenges of `setUp` (not read from `ac`: it stays cold)
        bytes memory data = abi.encodeCall(ac.claimUnanswered, (id1));
        uint256 used = _measure(address(this), 0, data);
        emit log_named_uint("claimUnanswered (first loss: slashes): gas measured (gasleft)", used);
        emit log_named_uint("claimUnanswered: tx estimate (+ 21000 + 16/byte)", used + 21_000 + 16 * data.length);
        emit log_named_uint("claimUnanswered: tx, calldata at 4/16", used + _intrinsic(data));
        assertEq(uint256(market.getTask(taskId).status), uint256(IDisputeHook.TaskStatus.Failed));
        assertLt(used, 400_000);
    }
}
