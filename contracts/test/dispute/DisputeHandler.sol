// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DisputeFixture} from "./DisputeFixture.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {Bisection} from "../../src/libraries/Bisection.sol";
import {MerkleLog} from "../../src/merkle/MerkleLog.sol";
import {TensorCommit} from "../../src/merkle/TensorCommit.sol";

/// @notice Each call plays a batch of 1..MAX_GAMES games on one freshly delivered task to their
///         settlement, interleaving them at random: an honest solver against random challengers, or
///         honest challengers against a solver lying somewhere in its run (so at every level above).
///         The adversary, on its turn, moves by its strategy, sends garbage (random leaves, wrong
///         proofs and roots, out-of-range choices, another party's move), stalls (sometimes past its
///         clock, and then tries to move anyway) or claims the honest party's time; once a game is
///         decided or settled, every further move is tried and must revert. Time passes only on the
///         adversary's turn: before each stall the honest party answers in every game of the batch.
///
///         A batch is played on one of three game contracts (degrees 2, 3 and 8) by up to three
///         challengers. After every action the handler checks the ETH of the game contract in play,
///         the market and the stake manager against their totals and against its own ghost sums
///         (what went in minus what came out), and when a game is decided or settled, that the
///         honest side won it; `accountsHold` checks every game contract and every credit.
contract DisputeHandler is DisputeFixture {
    /// @notice What the adversary and the honest side have done (each must happen in a full run).
    enum Cover {
        AdvChoose,
        AdvPinpoint,
        AdvNameOutput,
        AdvNameAbsent,
        AdvRequestChunk,
        AdvStep,
        LieDefendTrace,
        LieReveal,
        LieCommitSteps,
        LieCommitOps,
        LieOpenOp,
        LieOpenChunk,
        LieCommitScalar,
        HonestRejectOutput,
        LieUnlinkable,
        GarbageLeaves,
        GarbageProof,
        GarbageRoot,
        GarbageLink,
        GarbageChunk,
        GarbageChoice,
        GarbageEntry,
        GarbageStep,
        GarbageClose,
        WrongParty,
        EarlyTimeout,
        Stall,
        AdversaryTimedOut,
        MoveAfterClock,
        MoveAfterDecision,
        MoveAfterSettlement,
        ClosedAfterFailure,
        DecidedByStep
    }

    uint256 public constant MAX_GAMES = 5;
    /// @dev Actions per game of a batch after which the adversary only stalls (its games then end
    ///      on time).
    uint256 internal constant MAX_ACTIONS = 60;

    DisputeGame[] internal _gameContracts;
    address[3] internal _challengers;

    // ─────────────────────────────────────────────── ghosts

    uint256 public calls;
    uint256 public games;
    uint256 public finished;
    uint256 public honestSolverWins;
    uint256 public honestChallengerWins;
    uint256 public honestLosses;
    uint256 public garbageAccepted;
    uint256 public lateMovesAccepted;
    uint256 public accountingBreaks;
    uint256 public taskOutcomeBreaks;
    uint256 public actions;
    mapping(Cover => uint256) public covered;

    /// @notice ETH sent to each game contract minus ETH it paid out, and each account's expected credit.
    mapping(address game => uint256) public ghostGameEth;
    mapping(address game => mapping(address account => uint256)) public ghostCredit;
    uint256 public ghostMarketEth;
    uint256 public ghostStakeEth;

    // ─────────────────────────────────────────────── the batch in play

    uint256[] internal _batch;
    bool[] internal _decided;
    bool[] internal _settled;
    bool internal _honestSolver;
    bool internal _pinpointing;
    bool internal _withheld;
    bool internal _failed;

    constructor() {
        setUp();
        _gameContracts.push(dg); // degree 2: levels of more than two leaves take several rounds
        _gameContracts.push(_newGame(3));
        _gameContracts.push(_newGame(8)); // every level in one round
        _challengers = [challenger, bob, carol];
    }

    // ─────────────────────────────────────────────── the call

    /// @notice Plays a batch of games to their settlement (see the contract's notice).
    function play(uint256 seed) external {
        ++calls;
        uint256 r = uint256(keccak256(abi.encode(seed, calls)));
        dg = _gameContracts[r % _gameContracts.length];
        _honestSolver = (r >> 8) % 2 == 0;
        _pinpointing = (r >> 16) % 3 == 0;
        _withheld = (r >> 24) % 3 == 0;
        _failed = false;
        if (_honestSolver) {
            lie.active = false;
        } else {
            uint256 scalar = (r >> 48) % (VEC + 1);
            lie = Lie({
                active: true,
                step: (r >> 32) % W_STEPS,
                element: (r >> 40) % VEC,
                scalarStep: scalar == VEC ? type(uint256).max : scalar
            });
        }
        _deliverTracked(!_honestSolver);

        uint256 n = 1 + (r >> 56) % MAX_GAMES;
        delete _batch;
        delete _decided;
        delete _settled;
        for (uint256 i; i < n; ++i) {
            uint256 ri = r >> (64 + 24 * i);
            uint256 pin = ri % 3 == 0 ? (ri >> 8) % 6 : NO_PIN;
            _batch.push(_challengeAt(_challengers[(ri >> 16) % 3], pin));
            _decided.push(false);
            _settled.push(false);
            ghostGameEth[address(dg)] += GAME_BOND;
        }
        games += n;
        _checkAccounts();

        uint256 open = n;
        for (uint256 a; open > 0; ++a) {
            r = uint256(keccak256(abi.encode(r)));
            if (_act(_pickOpen(r % open), r >> 8, a >= MAX_ACTIONS * n)) --open;
            ++actions;
            _checkAccounts();
        }
        _endBatch(r);
        _checkAccounts();
    }

    /// @dev Index in the batch of the `k`-th game not yet settled.
    function _pickOpen(uint256 k) internal view returns (uint256 i) {
        for (;; ++i) {
            if (_settled[i]) continue;
            if (k == 0) return i;
            --k;
        }
    }

    /// @dev One action on game `i` of the batch; true when it settled the game.
    function _act(uint256 i, uint256 r, bool force) internal returns (bool) {
        uint256 id = _batch[i];
        IDisputeGame.Game memory g = dg.getGame(id);
        if (g.phase == IDisputeGame.Phase.Resolve) return _resolveOrLate(i, id, r);
        if (_failed && r % 2 == 0) {
            // Another game of the batch slashed the solver: the honest challenger takes its bond back.
            vm.prank(g.challenger);
            dg.closeAfterFailure(id);
            ++covered[Cover.ClosedAfterFailure];
            _settle(i, id);
            return true;
        }
        r >>= 1;
        if (_turn(g.phase) == _honestParty()) {
            if (r % 8 == 0) _earlyTimeout(id, g);
            _honestTurn(i, id, g);
            return false;
        }
        if (_expired(g)) {
            if (r % 2 == 0) _moveAfterClock(id, g);
            vm.prank(_honestSolver ? alice : g.challenger);
            dg.claimTimeout(id);
            ++covered[Cover.AdversaryTimedOut];
            _inspect(i, id);
            return false;
        }
        if (force) {
            _stall(uint256(CLOCK) + 1);
            return false;
        }
        uint256 k = r % 32;
        r >>= 5;
        if (k < 22) _adversaryMove(i, id, g, r);
        else if (k < 27) _garbage(id, g, r);
        else if (k < 31) _stall(_stallLength(r));
        else _wrongParty(id, g);
        return false;
    }

    // ─────────────────────────────────────────────── the honest party

    function _honestParty() internal view returns (IDisputeGame.Party) {
        return _honestSolver ? IDisputeGame.Party.Solver : IDisputeGame.Party.Challenger;
    }

    /// @dev The honest party's move; it must go through (a revert fails the run).
    function _honestTurn(uint256 i, uint256 id, IDisputeGame.Game memory g) internal {
        if (g.phase == IDisputeGame.Phase.Step) ++covered[Cover.DecidedByStep];
        bytes memory data;
        if (_honestSolver) {
            Cover kind;
            (data, kind) = _solverCall(id, g, false);
            if (kind == Cover.HonestRejectOutput) ++covered[kind]; // proves a named element absent
            vm.prank(alice);
        } else {
            data = _challengerCall(id, g);
            vm.prank(g.challenger);
        }
        (bool ok,) = address(dg).call(data);
        require(ok, "honest move reverted");
        _inspect(i, id);
    }

    /// @dev The honest party answers in every game of the batch where it is its turn.
    function _honestRespondAll() internal {
        for (uint256 i; i < _batch.length; ++i) {
            if (_settled[i]) continue;
            for (uint256 j; j < 8; ++j) {
                IDisputeGame.Game memory g = dg.getGame(_batch[i]);
                if (g.phase == IDisputeGame.Phase.Resolve || _turn(g.phase) != _honestParty()) break;
                _honestTurn(i, _batch[i], g);
            }
        }
    }

    /// @dev Records the honest side's defeat if game `i` was just decided against it.
    function _inspect(uint256 i, uint256 id) internal {
        if (_decided[i]) return;
        IDisputeGame.Game memory g = dg.getGame(id);
        if (g.phase != IDisputeGame.Phase.Resolve) return;
        _decided[i] = true;
        if (g.solverLost == _honestSolver) ++honestLosses;
    }

    function _resolveOrLate(uint256 i, uint256 id, uint256 r) internal returns (bool) {
        _inspect(i, id);
        if (r % 4 == 0) {
            _lateMoves(id, false);
            return false;
        }
        dg.resolve(id); // anyone settles a decided game
        _settle(i, id);
        if ((r >> 2) % 2 == 0) _lateMoves(id, true);
        return true;
    }

    /// @dev Game `i` was just settled: the honest side must have won it, and its bond is credited.
    function _settle(uint256 i, uint256 id) internal {
        _settled[i] = true;
        ++finished;
        IDisputeGame.Game memory g = dg.getGame(id);
        address payee;
        if (_honestSolver) {
            payee = alice;
            if (g.status == IDisputeGame.GameStatus.SolverWon) ++honestSolverWins;
            else ++honestLosses;
        } else {
            payee = g.challenger;
            if (g.status == IDisputeGame.GameStatus.ChallengerWon) {
                _failed = true;
                ++honestChallengerWins;
            } else if (g.status == IDisputeGame.GameStatus.Closed) {
                ++honestChallengerWins;
            } else {
                ++honestLosses;
            }
        }
        ghostCredit[address(dg)][payee] += GAME_BOND;
    }

    /// @dev The honest challenger's move: the first sub-interval whose right end it disagrees with
    ///      (pinpointing the first disagreement inside it, in a pinpointing batch), the first element
    ///      of the disputed output it disagrees with (after having it opened on chain, in a batch
    ///      whose artifacts were withheld), then the one-step check.
    function _challengerCall(uint256 id, IDisputeGame.Game memory g) internal returns (bytes memory) {
        if (g.phase == IDisputeGame.Phase.Choose) {
            uint256[] memory pos = _positionsOf(g);
            bytes32[] memory mine = _levelSeq(g, false);
            bytes32[] memory theirs = _levelSeq(g, true);
            uint256 index = pos.length;
            for (uint256 i; i < pos.length; ++i) {
                if (mine[pos[i]] != theirs[pos[i]]) {
                    index = i;
                    break;
                }
            }
            (uint256 lo, uint256 hi) = Bisection.subInterval(g.lo, g.hi, pos, index);
            if (!_pinpointing || hi - lo == 1) return abi.encodeCall(dg.choose, (id, index));
            uint256 q = lo + 1;
            while (mine[q] == theirs[q]) ++q;
            return abi.encodeCall(dg.pinpoint, (id, index, q - 1));
        }
        if (g.phase == IDisputeGame.Phase.NameOutput) {
            // Without the solver's artifacts it first has the disputed output's chunk opened.
            if (_withheld && g.chunkRequests == 0) return abi.encodeCall(dg.requestChunk, (id, 0));
            uint32[4] memory mine = _opOut(g.trainingStep, g.op, false);
            uint32[4] memory theirs = _opOut(g.trainingStep, g.op, true);
            uint256 flat;
            while (flat < VEC - 1 && mine[flat] == theirs[flat]) ++flat;
            return abi.encodeCall(dg.nameOutput, (id, g.logSize, flat));
        }
        if (g.phase == IDisputeGame.Phase.Step) return abi.encodeCall(dg.step, (id, _stepProofCached(g)));
        revert("challenger has no move");
    }

    // ─────────────────────────────────────────────── the adversary

    /// @dev The adversary's strategy move: a random challenger, or the lying solver's next move.
    function _adversaryMove(uint256 i, uint256 id, IDisputeGame.Game memory g, uint256 r) internal {
        bytes memory data;
        Cover kind;
        address who;
        bool stuck;
        if (_honestSolver) {
            who = g.challenger;
            (data, kind) = _randomCall(id, g, r);
        } else {
            who = alice;
            (data, kind) = _solverCall(id, g, true);
            // A liar whose scalar trace is honest cannot link it to its wrong output.
            stuck = kind == Cover.LieCommitScalar && lie.scalarStep == type(uint256).max;
        }
        vm.prank(who);
        (bool ok,) = address(dg).call(data);
        if (stuck) {
            if (ok) ++garbageAccepted;
            ++covered[Cover.LieUnlinkable];
        } else {
            require(ok, "adversary's valid move reverted");
            ++covered[kind];
            if (kind == Cover.AdvStep) ++covered[Cover.DecidedByStep];
        }
        _inspect(i, id);
    }

    /// @dev A challenger picking at random: any sub-interval or pinned pair, any output element (some
    ///      of them absent), then the one-step check.
    function _randomCall(uint256 id, IDisputeGame.Game memory g, uint256 r) internal returns (bytes memory, Cover) {
        if (g.phase == IDisputeGame.Phase.Choose) {
            uint256[] memory pos = _positionsOf(g);
            uint256 index = r % (pos.length + 1);
            if ((r >> 8) % 3 != 0) return (abi.encodeCall(dg.choose, (id, index)), Cover.AdvChoose);
            (uint256 lo, uint256 hi) = Bisection.subInterval(g.lo, g.hi, pos, index);
            // Inside the chosen interval, or (when it is a pair) any pin for the next level.
            uint256 position = hi - lo > 1 ? lo + (r >> 16) % (hi - lo) : (r >> 16) % 8;
            return (abi.encodeCall(dg.pinpoint, (id, index, position)), Cover.AdvPinpoint);
        }
        if (g.phase == IDisputeGame.Phase.NameOutput) {
            if ((r >> 40) % 4 == 0 && g.chunkRequests < 2) {
                // Chunk 0 exists (a 4-vector of int32 is one chunk), 1 and 2 do not.
                return (abi.encodeCall(dg.requestChunk, (id, (r >> 48) % 3)), Cover.AdvRequestChunk);
            }
            uint256 flat = (r >> 24) % (VEC + 2);
            return (
                abi.encodeCall(dg.nameOutput, (id, g.logSize, flat)),
                flat < VEC ? Cover.AdvNameOutput : Cover.AdvNameAbsent
            );
        }
        if (g.phase == IDisputeGame.Phase.Step) {
            return (abi.encodeCall(dg.step, (id, _stepProofCached(g))), Cover.AdvStep);
        }
        revert("challenger has no move");
    }

    /// @dev The solver's next move from its run (the lie applies when `lying`), as calldata.
    function _solverCall(uint256 id, IDisputeGame.Game memory g, bool lying) internal returns (bytes memory, Cover) {
        IDisputeGame.Phase p = g.phase;
        if (p == IDisputeGame.Phase.DefendTrace) {
            bytes32[] memory s = _levelSeq(g, lying);
            return (
                abi.encodeCall(dg.defendTrace, (id, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, s.length - 1))),
                Cover.LieDefendTrace
            );
        }
        if (p == IDisputeGame.Phase.Reveal) {
            (bytes32[] memory leaves, bytes32[][] memory proofs) = _revealArgs(g, lying);
            return (abi.encodeCall(dg.reveal, (id, leaves, proofs)), Cover.LieReveal);
        }
        if (p == IDisputeGame.Phase.CommitSteps) {
            bytes32[] memory s = _cachedSeq(2, g.lo, 0, 0, lying);
            return (
                abi.encodeCall(
                    dg.commitSteps,
                    (id, MerkleBuilder.root(s), MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, s.length - 1))
                ),
                Cover.LieCommitSteps
            );
        }
        if (p == IDisputeGame.Phase.CommitOps) {
            IDisputeGame.OpsCommitment memory c = _opsCached(g.checkpoint * W_INTERVAL + g.lo, lying);
            return (abi.encodeCall(dg.commitOps, (id, c)), Cover.LieCommitOps);
        }
        if (p == IDisputeGame.Phase.OpenOp) {
            bytes32[] memory entries = _cachedSeq(5, g.trainingStep, 0, 0, lying);
            uint256 pre = LOG0_SIZE + g.lo;
            return (
                abi.encodeCall(
                    dg.openOp,
                    (
                        id,
                        MerkleBuilder.rootAt(entries, pre),
                        pre,
                        MerkleBuilder.rootAt(entries, pre + 1),
                        pre + 1,
                        MerkleBuilder.consistency(entries, pre, pre + 1)
                    )
                ),
                Cover.LieOpenOp
            );
        }
        if (p == IDisputeGame.Phase.OpenChunk) {
            return (abi.encodeCall(dg.openChunk, (id, _chunkOpening(g, lying))), Cover.LieOpenChunk);
        }
        if (p == IDisputeGame.Phase.CommitScalar) {
            if (g.flatIndex >= VEC) return (_rejectCall(id, g, lying, 0), Cover.HonestRejectOutput);
            return (_scalarCallCached(id, g, lying), Cover.LieCommitScalar);
        }
        revert("solver has no move");
    }

    function _revealArgs(IDisputeGame.Game memory g, bool lying)
        internal
        returns (bytes32[] memory leaves, bytes32[][] memory proofs)
    {
        uint256[] memory pos = _positionsOf(g);
        bytes32[] memory s = _levelSeq(g, lying);
        leaves = new bytes32[](pos.length);
        proofs = new bytes32[][](pos.length);
        for (uint256 i; i < pos.length; ++i) {
            leaves[i] = s[pos[i]];
            proofs[i] = MerkleBuilder.proof(s, pos[i]);
        }
    }

    /// @dev `rejectOutput` of the named element; a non-zero `salt` spoils the chunk root.
    function _rejectCall(uint256 id, IDisputeGame.Game memory g, bool lying, uint256 salt)
        internal
        returns (bytes memory)
    {
        bytes32[] memory entries = _cachedSeq(5, g.trainingStep, 0, 0, lying);
        bytes32 chunkRoot = MerkleLog.hashLeaf(_chunk(_opOut(g.trainingStep, g.op, lying)));
        if (salt != 0) chunkRoot = keccak256(abi.encode(chunkRoot, salt));
        return abi.encodeCall(
            dg.rejectOutput,
            (
                id,
                entries[g.outputEntry],
                MerkleBuilder.proof(entries, g.outputEntry, g.nextLogSize),
                TensorCommit.DTYPE_INT32,
                _shape(),
                chunkRoot
            )
        );
    }

    /// @dev Garbage from the adversary in its own phase: must revert.
    function _garbage(uint256 id, IDisputeGame.Game memory g, uint256 r) internal {
        bytes memory data;
        Cover kind;
        address who = alice;
        IDisputeGame.Phase p = g.phase;
        if (!_honestSolver) {
            bytes32 junk = keccak256(abi.encode(r, "junk"));
            if (p == IDisputeGame.Phase.DefendTrace) {
                bytes32[] memory s = _levelSeq(g, true);
                data = abi.encodeCall(
                    dg.defendTrace, (id, MerkleBuilder.proof(s, s.length - 1), MerkleBuilder.proof(s, 0))
                );
                kind = Cover.GarbageProof;
            } else if (p == IDisputeGame.Phase.Reveal) {
                (bytes32[] memory leaves, bytes32[][] memory proofs) = _revealArgs(g, true);
                uint256 j = r % leaves.length;
                if ((r >> 8) % 2 == 0 || proofs[j].length == 0) {
                    leaves[j] = junk; // a random leaf
                    kind = Cover.GarbageLeaves;
                } else {
                    proofs[j][(r >> 16) % proofs[j].length] ^= bytes32(uint256(1)); // a wrong proof
                    kind = Cover.GarbageProof;
                }
                data = abi.encodeCall(dg.reveal, (id, leaves, proofs));
            } else if (p == IDisputeGame.Phase.CommitSteps) {
                bytes32[] memory s = _cachedSeq(2, g.lo, 0, 0, true);
                data = abi.encodeCall(
                    dg.commitSteps, (id, junk, MerkleBuilder.proof(s, 0), MerkleBuilder.proof(s, s.length - 1))
                );
                kind = Cover.GarbageRoot;
            } else if (p == IDisputeGame.Phase.CommitOps) {
                IDisputeGame.OpsCommitment memory c = _opsCached(g.checkpoint * W_INTERVAL + g.lo, true);
                c.root = junk;
                data = abi.encodeCall(dg.commitOps, (id, c));
                kind = Cover.GarbageRoot;
            } else if (p == IDisputeGame.Phase.OpenOp) {
                bytes32[] memory entries = _cachedSeq(5, g.trainingStep, 0, 0, true);
                uint256 pre = LOG0_SIZE + g.lo;
                data = abi.encodeCall(
                    dg.openOp,
                    (
                        id,
                        junk,
                        pre,
                        MerkleBuilder.rootAt(entries, pre + 1),
                        pre + 1,
                        MerkleBuilder.consistency(entries, pre, pre + 1)
                    )
                );
                kind = Cover.GarbageRoot;
            } else if (p == IDisputeGame.Phase.OpenChunk) {
                IDisputeGame.ChunkOpening memory o = _chunkOpening(g, true);
                o.chunkRoot = junk;
                data = abi.encodeCall(dg.openChunk, (id, o));
                kind = Cover.GarbageChunk;
            } else {
                // CommitScalar: claim an existing element absent, or spoil the absent one's tensor.
                data = _rejectCall(id, g, true, g.flatIndex < VEC ? 0 : uint256(junk));
                kind = Cover.GarbageLink;
            }
        } else {
            who = g.challenger;
            if (p == IDisputeGame.Phase.Choose) {
                uint256[] memory pos = _positionsOf(g);
                uint256 index = r % pos.length;
                (uint256 lo, uint256 hi) = Bisection.subInterval(g.lo, g.hi, pos, index);
                data = hi - lo > 1
                    ? abi.encodeCall(dg.pinpoint, (id, index, hi + (r >> 8) % 3))
                    : abi.encodeCall(dg.choose, (id, pos.length + 1 + (r >> 8) % 8));
                kind = Cover.GarbageChoice;
            } else if (p == IDisputeGame.Phase.NameOutput) {
                uint256 entry = (r >> 8) % 2 == 0 ? g.nextLogSize + (r >> 9) % 3 : g.logSize - 1;
                data = abi.encodeCall(dg.nameOutput, (id, entry, 0));
                kind = Cover.GarbageEntry;
            } else {
                bytes memory proof = _stepProofCached(g);
                (uint256 acc, bytes32 input, bytes32[] memory logProof, bytes memory opening) =
                    abi.decode(proof, (uint256, bytes32, bytes32[], bytes));
                data = abi.encodeCall(dg.step, (id, abi.encode(acc + 1, input, logProof, opening)));
                kind = Cover.GarbageStep;
            }
            if ((r >> 12) % 4 == 0) {
                data = abi.encodeCall(dg.closeAfterFailure, (id)); // the task has not failed
                kind = Cover.GarbageClose;
            }
        }
        vm.prank(who);
        (bool ok,) = address(dg).call(data);
        if (ok) ++garbageAccepted;
        ++covered[kind];
    }

    /// @dev The adversary makes a move of the other party: must revert.
    function _wrongParty(uint256 id, IDisputeGame.Game memory g) internal {
        bytes memory data = _honestSolver
            ? abi.encodeCall(dg.reveal, (id, new bytes32[](0), new bytes32[][](0)))
            : abi.encodeCall(dg.choose, (id, 0));
        vm.prank(_honestSolver ? g.challenger : alice);
        (bool ok,) = address(dg).call(data);
        if (ok) ++garbageAccepted;
        ++covered[Cover.WrongParty];
    }

    /// @dev On the honest party's turn the adversary claims its time ran out: must revert.
    function _earlyTimeout(uint256 id, IDisputeGame.Game memory g) internal {
        vm.prank(_honestSolver ? g.challenger : alice);
        (bool ok,) = address(dg).call(abi.encodeCall(dg.claimTimeout, (id)));
        if (ok) ++garbageAccepted;
        ++covered[Cover.EarlyTimeout];
    }

    /// @dev Stalls lie mostly well within the clock, sometimes around or past it.
    function _stallLength(uint256 r) internal pure returns (uint256) {
        uint256 bucket = r % 4;
        if (bucket < 2) return (r >> 2) % 1 hours;
        if (bucket == 2) return (r >> 2) % (uint256(CLOCK) / 2);
        return uint256(CLOCK) - 1 hours + (r >> 2) % (2 hours);
    }

    function _stall(uint256 secs) internal {
        _honestRespondAll();
        vm.warp(block.timestamp + secs);
        ++covered[Cover.Stall];
    }

    /// @dev The adversary's move after its clock ran out: must revert.
    function _moveAfterClock(uint256 id, IDisputeGame.Game memory g) internal {
        bytes memory data;
        if (_honestSolver) {
            if (g.phase == IDisputeGame.Phase.Choose) data = abi.encodeCall(dg.choose, (id, 0));
            else if (g.phase == IDisputeGame.Phase.NameOutput) data = abi.encodeCall(dg.nameOutput, (id, g.logSize, 0));
            else data = abi.encodeCall(dg.step, (id, _stepProofCached(g)));
        } else {
            (data,) = _solverCall(id, g, true);
        }
        vm.prank(_honestSolver ? g.challenger : alice);
        (bool ok,) = address(dg).call(data);
        if (ok) ++lateMovesAccepted;
        ++covered[Cover.MoveAfterClock];
    }

    /// @dev Every move on a decided (or settled) game: must revert; so must settling it twice.
    function _lateMoves(uint256 id, bool settled) internal {
        bytes[5] memory data = [
            abi.encodeCall(dg.choose, (id, 0)),
            abi.encodeCall(dg.reveal, (id, new bytes32[](0), new bytes32[][](0))),
            abi.encodeCall(dg.claimTimeout, (id)),
            abi.encodeCall(dg.closeAfterFailure, (id)),
            abi.encodeCall(dg.resolve, (id))
        ];
        address[2] memory who = [alice, dg.getGame(id).challenger];
        for (uint256 k; k < (settled ? 5 : 4); ++k) {
            vm.prank(who[k % 2]);
            (bool ok,) = address(dg).call(data[k]);
            if (ok) ++lateMovesAccepted;
        }
        ++covered[settled ? Cover.MoveAfterSettlement : Cover.MoveAfterDecision];
    }

    // ─────────────────────────────────────────────── game state

    /// @dev Whose clock runs in `phase` (None once decided).
    function _turn(IDisputeGame.Phase phase) internal pure returns (IDisputeGame.Party) {
        if (phase == IDisputeGame.Phase.None || phase == IDisputeGame.Phase.Resolve) return IDisputeGame.Party.None;
        if (
            phase == IDisputeGame.Phase.Choose || phase == IDisputeGame.Phase.NameOutput
                || phase == IDisputeGame.Phase.Step
        ) return IDisputeGame.Party.Challenger;
        return IDisputeGame.Party.Solver;
    }

    /// @dev Whether the party to move has used up its time (a move now is void).
    function _expired(IDisputeGame.Game memory g) internal view returns (bool) {
        uint256 left = _turn(g.phase) == IDisputeGame.Party.Solver ? g.solverClock : g.challengerClock;
        return block.timestamp - g.lastMoveAt > left;
    }

    /// @dev The positions asked in the current round (what the solver revealed in phase Choose).
    function _positionsOf(IDisputeGame.Game memory g) internal view returns (uint256[] memory) {
        if (g.pinned) return Bisection.pinpointPositions(g.lo, g.hi, g.pin);
        return Bisection.queryPositions(g.lo, g.hi, dg.degree());
    }

    // ─────────────────────────────────────────────── caches of the runs

    /// @dev Sequences and calldata of the honest run (kept for the whole run) and of the batch's
    ///      lying run (keyed by the call that plays it): each is built once, not once per move.
    mapping(bytes32 key => bytes32[]) internal _seqs;
    mapping(bytes32 key => bytes) internal _blobs;

    function _runKey(bool lying) internal view returns (uint256) {
        return lying ? calls : 0;
    }

    /// @dev What the fixture builds, cached: `what` 1..4 the level sequences (L1; L2 of checkpoint
    ///      `a`; L3 of step `a`; L4 of step `a`, entry `b`, element `c`), 5 step `a`'s full op log.
    function _cachedSeq(uint256 what, uint256 a, uint256 b, uint256 c, bool lying)
        internal
        returns (bytes32[] memory s)
    {
        bytes32 key = keccak256(abi.encode(_runKey(lying), what, a, b, c));
        s = _seqs[key];
        if (s.length != 0) return s;
        if (what == 1) s = _l1(lying);
        else if (what == 2) s = _l2(a, lying);
        else if (what == 3) s = _l3(a, lying);
        else if (what == 4) s = _l4(a, b, c, lying);
        else s = _log(a, lying);
        _seqs[key] = s;
    }

    /// @dev The current level's sequence in the solver's (`lying`) or the honest run.
    function _levelSeq(IDisputeGame.Game memory g, bool lying) internal returns (bytes32[] memory) {
        if (g.level == 1) return _cachedSeq(1, 0, 0, 0, lying);
        if (g.level == 2) return _cachedSeq(2, g.checkpoint, 0, 0, lying);
        if (g.level == 3) return _cachedSeq(3, g.trainingStep, 0, 0, lying);
        return _cachedSeq(4, g.trainingStep, g.outputEntry, g.flatIndex, lying);
    }

    function _opsCached(uint256 t, bool lying) internal returns (IDisputeGame.OpsCommitment memory) {
        bytes32 key = keccak256(abi.encode(_runKey(lying), "ops", t));
        bytes memory blob = _blobs[key];
        if (blob.length == 0) {
            blob = abi.encode(_opsCommitment(t, lying));
            _blobs[key] = blob;
        }
        return abi.decode(blob, (IDisputeGame.OpsCommitment));
    }

    function _scalarCallCached(uint256 id, IDisputeGame.Game memory g, bool lying) internal returns (bytes memory) {
        bytes32 key = keccak256(abi.encode(_runKey(lying), "scalar", g.trainingStep, g.op, g.outputEntry, g.flatIndex));
        bytes memory blob = _blobs[key];
        if (blob.length == 0) {
            blob = abi.encode(_scalarCommitment(g, lying));
            _blobs[key] = blob;
        }
        return abi.encodeCall(dg.commitScalar, (id, abi.decode(blob, (IDisputeGame.ScalarCommitment))));
    }

    /// @dev The honest step proof at the disputed scalar step.
    function _stepProofCached(IDisputeGame.Game memory g) internal returns (bytes memory blob) {
        bytes32 key = keccak256(abi.encode("step", g.trainingStep, g.op, g.outputEntry, g.flatIndex, g.lo));
        blob = _blobs[key];
        if (blob.length == 0) {
            blob = _stepProof(g);
            _blobs[key] = blob;
        }
    }

    // ─────────────────────────────────────────────── money

    /// @dev `_deliver`, with the ETH it sends to the market and the stake manager.
    function _deliverTracked(bool lying) internal {
        vm.deal(alice, alice.balance + STAKE + BOND);
        vm.deal(submitter, submitter.balance + PAYMENT);
        if (sm.freeStakeOf(alice) < STAKE) ghostStakeEth += STAKE;
        ghostMarketEth += PAYMENT + BOND;
        _deliver(lying);
    }

    /// @dev After the batch: the task's outcome, then some of the money out.
    function _endBatch(uint256 r) internal {
        if (_honestSolver) {
            uint64 deadline = market.getTask(taskId).challengeDeadline;
            if (block.timestamp < deadline) vm.warp(deadline);
            market.finalize(taskId); // no game left open, none lost
        } else if (market.getTask(taskId).status != IDisputeHook.TaskStatus.Failed || sm.lockedFor(alice, taskId) != 0)
        {
            ++taskOutcomeBreaks;
        }
        address[5] memory who = [alice, challenger, bob, carol, submitter];
        for (uint256 k; k < who.length; ++k) {
            if ((r >> k) % 2 == 0) continue;
            address w = who[k];
            uint256 before = w.balance;
            if (dg.creditOf(w) > 0) {
                vm.prank(w);
                dg.withdraw();
                if (w.balance - before != ghostCredit[address(dg)][w]) ++accountingBreaks;
                ghostGameEth[address(dg)] -= w.balance - before;
                ghostCredit[address(dg)][w] = 0;
            }
            before = w.balance;
            if (market.paymentsOf(w) > 0) {
                vm.prank(w);
                market.withdrawPayments();
                ghostMarketEth -= w.balance - before;
            }
            before = w.balance;
            if (sm.proceedsOf(w) > 0) {
                vm.prank(w);
                sm.claimProceeds();
                ghostStakeEth -= w.balance - before;
            }
        }
        if ((r >> 8) % 4 == 0 && sm.sinkBalance() > 0) {
            uint256 before = sink.balance;
            sm.flushSink();
            ghostStakeEth -= sink.balance - before;
        }
    }

    /// @dev The game contract in play, the market and the stake manager hold the ETH they account
    ///      for and the ghosts expect; counts breaks (the invariant checks every contract and credit).
    function _checkAccounts() internal {
        (uint256 bonds, uint256 credits) = dg.totals();
        uint256 held = address(dg).balance;
        bool ok = held == bonds + credits && held == ghostGameEth[address(dg)] && _marketAndStakeHold();
        if (!ok) ++accountingBreaks;
    }

    function _marketAndStakeHold() internal view returns (bool) {
        (uint256 escrow, uint256 bidBonds, uint256 payable_) = market.totals();
        uint256 held = address(market).balance;
        if (held != escrow + bidBonds + payable_ || held != ghostMarketEth) return false;
        (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sinkBal) = sm.totals();
        uint256 staked = free + locked + pending + proceeds + sinkBal;
        return address(sm).balance == staked && staked == ghostStakeEth;
    }

    /// @notice Every game contract, the market and the stake manager hold exactly the ETH they
    ///         account for, which is what went in minus what came out; every credit is as expected.
    function accountsHold() public view returns (bool) {
        address[5] memory who = [alice, challenger, bob, carol, submitter];
        for (uint256 c; c < _gameContracts.length; ++c) {
            DisputeGame d = _gameContracts[c];
            (uint256 bonds, uint256 credits) = d.totals();
            uint256 held = address(d).balance;
            if (held != bonds + credits || held != ghostGameEth[address(d)]) return false;
            for (uint256 k; k < who.length; ++k) {
                if (d.creditOf(who[k]) != ghostCredit[address(d)][who[k]]) return false;
            }
        }
        return _marketAndStakeHold();
    }
}

