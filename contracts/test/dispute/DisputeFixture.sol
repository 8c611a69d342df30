// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketFixture} from "../market/MarketFixture.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {IOneStepVerifier} from "../../src/interfaces/IOneStepVerifier.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";
import {ToyStepVerifier} from "../../src/verifiers/ToyStepVerifier.sol";

/// @notice A toy training run the game can be played over, both sides' strategies, and a market with
///         a delivered task.
///
///         State S_t = root(id(X_t), W): X_t an int32 vector of 4, W a fixed id. Step t's op log starts
///         with [id(X_t), W, batch_t]; ops 1 and 2 output a vector of four copies of s_t = sum(X_t);
///         op 3 outputs X_t+1, the same vector; S_t+1 designates entries [5, 1]. Every output element
///         is thus the toy program "sum of the first 4 elements of log entry 0" (ToyStepVerifier).
///
///         A lying solver adds 1 to element `lie.element` of op 3's output at step `lie.step` and
///         trains honestly from that wrong state on; its scalar trace for that element is right up to
///         step `lie.scalarStep` and 1 too high after it (type(uint256).max: an honest scalar trace,
///         which cannot be linked to the lie).
abstract contract DisputeFixture is MarketFixture {
    uint256 internal constant GAME_BOND = 1 ether;
    uint64 internal constant CLOCK = 3 days;
    uint64 internal constant W_STEPS = 8;
    uint64 internal constant W_INTERVAL = 2;
    uint256 internal constant N_CHECKPOINTS = 5;
    uint256 internal constant N_OPS = 3;
    uint256 internal constant VEC = 4; // vector length == toy program length
    uint256 internal constant STATE_SIZE = 2;
    uint256 internal constant LOG0_SIZE = 3;
    bytes32 internal constant W_ID = keccak256("W");
    /// @dev The toy's op descriptors' root (the toy verifier reads none).
    bytes32 internal constant TOY_GRAPH = keccak256("toy op graph");
    uint256 internal constant NO_PIN = type(uint256).max;

    struct Lie {
        bool active;
        uint256 step;
        uint256 element;
        uint256 scalarStep;
    }

    /// @dev dtype of every toy tensor (the toy verifier reads int32; a header test may change it).
    uint8 internal outDtype = TensorCommit.DTYPE_INT32;
    /// @dev When set, the task's graph root is a tree of real op descriptors (`_descriptor`) whose
    ///         output shape is `descShape`, instead of TOY_GRAPH (the toy verifier reads neither).
    bool internal described;
    uint32[] internal descShape;

    ToyStepVerifier internal toy;
    DisputeGame internal dg;
    Lie internal lie;
    uint256 internal taskId;
    uint256[] internal lastPositions;

    function setUp() public virtual override {
        super.setUp();
        toy = new ToyStepVerifier(VEC);
        dg = _newGame(2);
        vm.deal(challenger, 100 ether);
    }

    function _newGame(uint256 k) internal returns (DisputeGame g) {
        g = new DisputeGame(IDisputeHook(address(market)), IOneStepVerifier(address(toy)), GAME_BOND, k, CLOCK);
        vm.prank(owner);
        market.setDisputeContract(address(g), true);
    }

    // ─────────────────────────────────────────────── the toy run

    function _x0() internal pure returns (uint32[4] memory v) {
        v = [uint32(1), 2, 3, 4];
    }

    function _sum(uint32[4] memory v) internal pure returns (uint32 s) {
        unchecked {
            // Wrapping on purpose: the toy program sums modulo 2^32.
            s = v[0] + v[1] + v[2] + v[3];
        }
    }

    /// @dev Output vector of op `j` (1..3) at step t, given X_t, in the honest or lying run.
    function _opOut(uint256 t, uint256 j, bool lying) internal view returns (uint32[4] memory v) {
        uint32 s = _sum(_x(t, lying));
        v = [s, s, s, s];
        if (lying && lie.active && t == lie.step && j == N_OPS) {
            unchecked {
                v[lie.element] += 1; // wraps like the toy's arithmetic
            }
        }
    }

    function _x(uint256 t, bool lying) internal view returns (uint32[4] memory v) {
        v = _x0();
        for (uint256 i; i < t; ++i) {
            uint32 s = _sum(v);
            v = [s, s, s, s];
            if (lying && lie.active && i == lie.step) {
                unchecked {
                    v[lie.element] += 1;
                }
            }
        }
    }

    function _chunk(uint32[4] memory v) internal pure returns (bytes memory) {
        return abi.encodePacked(v[0], v[1], v[2], v[3]);
    }

    function _shape() internal pure returns (uint32[] memory s) {
        s = new uint32[](1);
        s[0] = uint32(VEC);
    }

    function _id(uint32[4] memory v) internal view returns (bytes32) {
        return TensorCommit.tensorId(outDtype, _shape(), MerkleLog.hashLeaf(_chunk(v)));
    }

    /// @dev Descriptor of toy op `j` (0-based) in OpDescriptor's encoding: reads entry 0, writes
    ///      entry LOG0_SIZE + j, output shape `descShape`.
    function _descriptor(uint256 j) internal view returns (bytes memory) {
        uint256[] memory inputs = new uint256[](1);
        uint256[] memory dtypes = new uint256[](1);
        dtypes[0] = TensorCommit.DTYPE_INT32;
        uint32[][] memory shapes = new uint32[][](1);
        shapes[0] = _shape();
        return abi.encode(
            j, uint256(10), new uint256[](0), inputs, dtypes, shapes, descShape, LOG0_SIZE + j, bytes32(0), 0, 0
        );
    }

    function _descriptorLeaves() internal view returns (bytes32[] memory h) {
        h = new bytes32[](N_OPS);
        for (uint256 j; j < N_OPS; ++j) {
            h[j] = MerkleLog.hashLeaf(_descriptor(j));
        }
    }

    /// @dev The descriptors' root the task commits (TOY_GRAPH unless `described`).
    function _graphRoot() internal view returns (bytes32) {
        return described ? MerkleBuilder.rootOfHashes(_descriptorLeaves()) : TOY_GRAPH;
    }

    function _stateIds(uint256 t, bool lying) internal view returns (bytes32[] memory ids) {
        ids = new bytes32[](STATE_SIZE);
        ids[0] = _id(_x(t, lying));
        ids[1] = W_ID;
    }

    function _state(uint256 t, bool lying) internal view returns (bytes32) {
        return MerkleBuilder.root(_stateIds(t, lying));
    }

    function _l1(bool lying) internal view returns (bytes32[] memory s) {
        s = new bytes32[](N_CHECKPOINTS);
        for (uint256 i; i < N_CHECKPOINTS; ++i) {
            s[i] = _state(i * W_INTERVAL, lying);
        }
    }

    function _l2(uint256 checkpoint, bool lying) internal view returns (bytes32[] memory s) {
        s = new bytes32[](W_INTERVAL + 1);
        for (uint256 i; i <= W_INTERVAL; ++i) {
            s[i] = _state(checkpoint * W_INTERVAL + i, lying);
        }
    }

    function _log(uint256 t, bool lying) internal view returns (bytes32[] memory entries) {
        entries = new bytes32[](LOG0_SIZE + N_OPS);
        entries[0] = _id(_x(t, lying));
        entries[1] = W_ID;
        entries[2] = keccak256(abi.encode("batch", t));
        for (uint256 j = 1; j <= N_OPS; ++j) {
            entries[LOG0_SIZE + j - 1] = _id(_opOut(t, j, lying));
        }
    }

    function _l3(uint256 t, bool lying) internal view returns (bytes32[] memory s) {
        bytes32[] memory entries = _log(t, lying);
        s = new bytes32[](N_OPS + 1);
        for (uint256 j; j <= N_OPS; ++j) {
            s[j] = Bisection.opLeaf(MerkleBuilder.rootAt(entries, LOG0_SIZE + j), LOG0_SIZE + j);
        }
    }

    function _acc(uint256 t, uint256 m, uint256 entry, uint256 flat, bool lying) internal view returns (uint256 acc) {
        uint32[4] memory x = _x(t, lying);
        for (uint256 i; i < m; ++i) {
            acc = (acc + x[i]) & 0xffffffff;
        }
        bool lied = lying && lie.active && t == lie.step && entry == LOG0_SIZE + N_OPS - 1 && flat == lie.element
            && lie.scalarStep != type(uint256).max && m > lie.scalarStep;
        if (lied) acc = (acc + 1) & 0xffffffff;
    }

    function _l4(uint256 t, uint256 entry, uint256 flat, bool lying) internal view returns (bytes32[] memory s) {
        s = new bytes32[](VEC + 1);
        for (uint256 m; m <= VEC; ++m) {
            s[m] = toy.stateOf(m, _acc(t, m, entry, flat, lying));
        }
    }

    /// @dev Entries of S_t+1 in the last log: X_t+1 (op 3's output) and W.
    function _designated() internal pure returns (uint64[] memory d) {
        d = new uint64[](2);
        d[0] = uint64(LOG0_SIZE + N_OPS - 1);
        d[1] = 1;
    }

    /// @dev Step t's inputs: the first log's entries after S_t.
    function _inputIds(uint256 t) internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](LOG0_SIZE - STATE_SIZE);
        ids[0] = keccak256(abi.encode("batch", t));
    }

    /// @dev Leaf hashes of the step-input table: row t = abi.encode(t, ids of step t).
    function _inputRows() internal pure returns (bytes32[] memory h) {
        h = new bytes32[](W_STEPS);
        for (uint256 t; t < W_STEPS; ++t) {
            h[t] = MerkleLog.hashLeaf(abi.encode(t, _inputIds(t)));
        }
    }

    function _layoutHash() internal pure returns (bytes32) {
        return keccak256(abi.encode(N_OPS, STATE_SIZE, _designated(), MerkleBuilder.rootOfHashes(_inputRows())));
    }

    /// @dev The task's opGraphRoot: the toy graph with the toy step layout.
    function _opGraphRoot() internal view returns (bytes32) {
        return Bisection.graphCommitment(_graphRoot(), _layoutHash());
    }

    /// @dev The current level's sequence in the solver's (`lying`) or the honest run.
    function _seq(uint256 gameId, bool lying) internal view returns (bytes32[] memory) {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        if (g.level == 1) return _l1(lying);
        if (g.level == 2) return _l2(g.checkpoint, lying);
        if (g.level == 3) return _l3(g.trainingStep, lying);
        return _l4(g.trainingStep, g.outputEntry, g.flatIndex, lying);
    }

    // ─────────────────────────────────────────────── the market

    function _worldParams() internal view returns (ITaskMarket.TaskParams memory p) {
        p = _params();
        p.steps = W_STEPS;
        p.checkpointInterval = W_INTERVAL;
        p.initialStateRoot = _state(0, false);
        p.opGraphRoot = _opGraphRoot();
    }

    /// @dev A task delivered by alice with the trace of the honest or the lying run.
    function _deliver(bool lying) internal returns (uint256 id) {
        id = _assignedWith(alice, PAYMENT, _worldParams());
        vm.prank(alice);
        market.submitResult(id, MerkleBuilder.root(_l1(lying)), W_STEPS, _state(W_STEPS, lying), "ipfs://run");
        taskId = id;
    }

    function _challenge(address who) internal returns (uint256 gameId) {
        return _challengeAt(who, NO_PIN);
    }

    function _challengeAt(address who, uint256 pin) internal returns (uint256 gameId) {
        vm.deal(who, who.balance + GAME_BOND);
        vm.prank(who);
        gameId = dg.challenge{value: GAME_BOND}(taskId, pin);
    }

    // ─────────────────────────────────────────────── the solver (alice)

    /// @dev Makes the solver's next move from its run (`lie` applies when `lying`).
    function _solverMove(uint256 gameId, bool lying) internal {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        IDisputeGame.Phase p = g.phase;
        vm.startPrank(alice);
        if (p == IDisputeGame.Phase.DefendTrace) {
            bytes32[] memory s = _l1(lying);
            dg.defendTrace(gameId, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, s.length - 1));
        } else if (p == IDisputeGame.Phase.Reveal) {
            _reveal(gameId, lying);
        } else if (p == IDisputeGame.Phase.CommitSteps) {
            bytes32[] memory s = _l2(g.lo, lying);
            dg.commitSteps(
                gameId, MerkleBuilder.root(s), MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, s.length - 1)
            );
        } else if (p == IDisputeGame.Phase.CommitOps) {
            dg.commitOps(gameId, _opsCommitment(g.checkpoint * W_INTERVAL + g.lo, lying));
        } else if (p == IDisputeGame.Phase.OpenOp) {
            bytes32[] memory entries = _log(g.trainingStep, lying);
            uint256 pre = LOG0_SIZE + g.lo;
            dg.openOp(
                gameId,
                MerkleBuilder.rootAt(entries, pre),
                uint64(pre),
                MerkleBuilder.rootAt(entries, pre + 1),
                pre + 1,
                MerkleBuilder.consistency(entries, pre, pre + 1)
            );
        } else if (p == IDisputeGame.Phase.OpenChunk) {
            dg.openChunk(gameId, _chunkOpening(g, lying));
        } else if (p == IDisputeGame.Phase.CommitScalar) {
            if (g.flatIndex >= VEC) _rejectOutput(gameId, g, lying);
            else dg.commitScalar(gameId, _scalarCommitment(g, lying));
        } else {
            revert("solver has no move");
        }
        vm.stopPrank();
    }

    function _reveal(uint256 gameId, bool lying) internal {
        uint256[] memory pos = dg.pendingPositions(gameId);
        bytes32[] memory s = _seq(gameId, lying);
        bytes32[] memory leaves = new bytes32[](pos.length);
        bytes32[][] memory proofs = new bytes32[][](pos.length);
        for (uint256 i; i < pos.length; ++i) {
            leaves[i] = s[pos[i]];
            proofs[i] = MerkleBuilder.proof(s, pos[i]);
        }
        lastPositions = pos;
        dg.reveal(gameId, leaves, proofs);
    }

    function _opsCommitment(uint256 t, bool lying) internal view returns (IDisputeGame.OpsCommitment memory c) {
        bytes32[] memory s = _l3(t, lying);
        bytes32[] memory entries = _log(t, lying);
        uint256 lastSize = LOG0_SIZE + N_OPS;
        bytes32[] memory rows = _inputRows();
        c.root = MerkleBuilder.root(s);
        c.size = uint64(s.length);
        c.graphRoot = _graphRoot();
        c.inputsRoot = MerkleBuilder.rootOfHashes(rows);
        c.stateSize = uint64(STATE_SIZE);
        c.stateBorder = MerkleBuilder.border(entries, STATE_SIZE);
        c.inputIds = _inputIds(t);
        c.inputsRows = uint64(rows.length);
        c.inputsProof = MerkleBuilder.proofOfHashes(rows, t);
        c.firstProof = MerkleBuilder.proof(s, 0);
        c.lastLogRoot = MerkleBuilder.root(entries);
        c.lastLogSize = uint64(lastSize);
        c.lastProof = MerkleBuilder.proof(s, s.length - 1);
        c.designated = _designated();
        c.designatedIds = new bytes32[](2);
        c.designatedIds[0] = entries[lastSize - 1];
        c.designatedIds[1] = entries[1];
        c.designatedProofs = new bytes32[][](2);
        c.designatedProofs[0] = MerkleBuilder.proof(entries, lastSize - 1);
        c.designatedProofs[1] = MerkleBuilder.proof(entries, 1);
    }

    function _scalarCommitment(IDisputeGame.Game memory g, bool lying)
        internal
        view
        returns (IDisputeGame.ScalarCommitment memory c)
    {
        bytes32[] memory s = _l4(g.trainingStep, g.outputEntry, g.flatIndex, lying);
        bytes32[] memory entries = _log(g.trainingStep, lying);
        uint32[4] memory out = _opOut(g.trainingStep, g.op, lying);
        c.root = MerkleBuilder.root(s);
        c.firstProof = MerkleBuilder.proof(s, 0);
        c.lastLeaf = s[VEC];
        c.lastProof = MerkleBuilder.proof(s, VEC);
        c.outputTensorId = entries[g.outputEntry];
        c.outputProof = MerkleBuilder.proof(entries, g.outputEntry, g.nextLogSize);
        c.outputOpening = abi.encode(
            _acc(g.trainingStep, VEC, g.outputEntry, g.flatIndex, lying),
            abi.encode(_shape(), _chunk(out), new bytes32[](0))
        );
    }

    /// @dev The solver's opening of the requested chunk (g.flatIndex while OpenChunk) of its output.
    function _chunkOpening(IDisputeGame.Game memory g, bool lying)
        internal
        view
        returns (IDisputeGame.ChunkOpening memory o)
    {
        bytes32[] memory entries = _log(g.trainingStep, lying);
        bytes memory chunk = _chunk(_opOut(g.trainingStep, g.op, lying));
        o.tensorId = entries[g.logSize];
        o.idProof = MerkleBuilder.proof(entries, g.logSize, g.nextLogSize);
        o.dtype = outDtype;
        o.shape = _shape();
        o.chunkRoot = MerkleLog.hashLeaf(chunk);
        if (g.flatIndex == 0) o.chunk = chunk; // a 4-vector of int32 is one chunk
    }

    function _rejectOutput(uint256 gameId, IDisputeGame.Game memory g, bool lying) internal {
        bytes32[] memory entries = _log(g.trainingStep, lying);
        uint32[4] memory out = _opOut(g.trainingStep, g.op, lying);
        dg.rejectOutput(
            gameId,
            entries[g.outputEntry],
            MerkleBuilder.proof(entries, g.outputEntry, g.nextLogSize),
            outDtype,
            _shape(),
            MerkleLog.hashLeaf(_chunk(out))
        );
    }

    // ─────────────────────────────────────────────── the challenger

    /// @dev The honest challenger's move: first sub-interval whose right end it disagrees with.
    function _honestMove(uint256 gameId, address who) internal {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        vm.startPrank(who);
        if (g.phase == IDisputeGame.Phase.Choose) {
            bytes32[] memory mine = _seq(gameId, false);
            bytes32[] memory theirs = _seq(gameId, true);
            uint256 n = lastPositions.length;
            uint256 index = n;
            for (uint256 i; i < n; ++i) {
                if (mine[lastPositions[i]] != theirs[lastPositions[i]]) {
                    index = i;
                    break;
                }
            }
            dg.choose(gameId, index);
        } else if (g.phase == IDisputeGame.Phase.NameOutput) {
            uint32[4] memory mine = _opOut(g.trainingStep, g.op, false);
            uint32[4] memory theirs = _opOut(g.trainingStep, g.op, true);
            uint256 flat;
            while (flat < VEC - 1 && mine[flat] == theirs[flat]) ++flat;
            dg.nameOutput(gameId, g.logSize, flat);
        } else if (g.phase == IDisputeGame.Phase.Step) {
            dg.step(gameId, _stepProof(g));
        } else {
            revert("challenger has no move");
        }
        vm.stopPrank();
    }

    /// @dev The honest challenger with the solver's leaves off chain: it pinpoints the first
    ///         disagreement inside the sub-interval it chooses.
    function _pinpointMove(uint256 gameId, address who) internal {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        if (g.phase != IDisputeGame.Phase.Choose) return _honestMove(gameId, who);
        bytes32[] memory mine = _seq(gameId, false);
        bytes32[] memory theirs = _seq(gameId, true);
        uint256 n = lastPositions.length;
        uint256 index = n;
        for (uint256 i; i < n; ++i) {
            if (mine[lastPositions[i]] != theirs[lastPositions[i]]) {
                index = i;
                break;
            }
        }
        (uint256 lo, uint256 hi) = Bisection.subInterval(g.lo, g.hi, lastPositions, index);
        vm.startPrank(who);
        if (hi - lo > 1) {
            uint256 q = lo + 1;
            while (mine[q] == theirs[q]) ++q;
            dg.pinpoint(gameId, index, q - 1);
        } else {
            dg.choose(gameId, index);
        }
        vm.stopPrank();
    }

    /// @dev A challenger who picks at random (seeded): any sub-interval, chunk openings (some of
    ///      chunks that do not exist), any output element (some of them out of range), then brings
    ///      the step proof.
    function _randomMove(uint256 gameId, address who, uint256 seed) internal {
        IDisputeGame.Game memory g = dg.getGame(gameId);
        vm.startPrank(who);
        if (g.phase == IDisputeGame.Phase.Choose) {
            uint256 n = lastPositions.length;
            uint256 index = seed % (n + 1);
            if ((seed >> 8) % 3 == 0) {
                (uint256 lo, uint256 hi) = Bisection.subInterval(g.lo, g.hi, lastPositions, index);
                // Inside the chosen interval, or (when it is a pair) any pin for the next level.
                uint256 position = hi - lo > 1 ? lo + (seed >> 16) % (hi - lo) : (seed >> 16) % 8;
                dg.pinpoint(gameId, index, position);
            } else {
                dg.choose(gameId, index);
            }
        } else if (g.phase == IDisputeGame.Phase.NameOutput) {
            if ((seed >> 40) % 3 == 0 && g.chunkRequests < 2) {
                dg.requestChunk(gameId, (seed >> 48) % 3); // chunk 0 exists, 1 and 2 do not
            } else {
                dg.nameOutput(gameId, g.logSize, (seed >> 24) % (VEC + 2));
            }
        } else if (g.phase == IDisputeGame.Phase.Step) {
            dg.step(gameId, _stepProof(g));
        } else {
            revert("challenger has no move");
        }
        vm.stopPrank();
    }

    function _stepProof(IDisputeGame.Game memory g) internal view returns (bytes memory) {
        bytes32[] memory entries = _log(g.trainingStep, false);
        uint32[4] memory x = _x(g.trainingStep, false);
        return abi.encode(
            _acc(g.trainingStep, g.lo, g.outputEntry, g.flatIndex, false),
            entries[0],
            MerkleBuilder.proof(entries, 0, g.logSize),
            abi.encode(_shape(), _chunk(x), new bytes32[](0))
        );
    }

    /// @dev Plays the game to its end: solver from its run, challenger honest or random.
    function _play(uint256 gameId, bool lying, bool randomChallenger, uint256 seed) internal returns (uint256 moves) {
        return _play(gameId, lying, randomChallenger, false, seed);
    }

    function _play(uint256 gameId, bool lying, bool randomChallenger, bool pinpointing, uint256 seed)
        internal
        returns (uint256 moves)
    {
        while (dg.getGame(gameId).status == IDisputeGame.GameStatus.InProgress) {
            IDisputeGame.Phase p = dg.getGame(gameId).phase;
            if (p == IDisputeGame.Phase.Resolve) {
                dg.resolve(gameId); // anyone settles a decided game
                ++moves;
                continue;
            }
            bool challengersTurn =
                p == IDisputeGame.Phase.Choose || p == IDisputeGame.Phase.NameOutput || p == IDisputeGame.Phase.Step;
            if (!challengersTurn) {
                _solverMove(gameId, lying);
            } else if (pinpointing) {
                _pinpointMove(gameId, challenger);
            } else if (randomChallenger) {
                seed = uint256(keccak256(abi.encode(seed)));
                _randomMove(gameId, challenger, seed);
            } else {
                _honestMove(gameId, challenger);
            }
            ++moves;
            require(moves < 200, "game does not end");
        }
    }

    /// @dev ETH held by the game equals the bonds in play plus the credits not yet withdrawn.
    function _assertGameSolvent() internal view {
        (uint256 bonds, uint256 credits) = dg.totals();
        assertEq(address(dg).balance, bonds + credits, "game solvency");
    }
}
