// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IDisputeGame} from "./interfaces/IDisputeGame.sol";
import {IDisputeHook} from "./interfaces/IDisputeHook.sol";
import {IOneStepVerifier} from "./interfaces/IOneStepVerifier.sol";
import {Bisection} from "./libraries/Bisection.sol";
import {BisectionLinks} from "./libraries/BisectionLinks.sol";
import {OutputHeader} from "./libraries/OutputHeader.sol";

/// @title DisputeGame
/// @notice Four-level bisection game of a solver against one challenger per game, with chess clocks
///         and a bond. See IDisputeGame for the moves and docs/DISPUTE.md for the rules and why.
/// @dev Money: `address(this).balance == totalBonds + totalCredits` at all times. A bond enters with
///      `challenge`, moves to exactly one account's credit when its game ends, and leaves with
///      `withdraw`.
contract DisputeGame is IDisputeGame, ReentrancyGuard {
    /// @inheritdoc IDisputeGame
    IDisputeHook public immutable market;
    /// @inheritdoc IDisputeGame
    IOneStepVerifier public immutable verifier;
    /// @inheritdoc IDisputeGame
    uint256 public immutable bond;
    /// @inheritdoc IDisputeGame
    uint256 public immutable degree;
    /// @inheritdoc IDisputeGame
    uint64 public immutable clock;

    /// @notice Largest query degree (bounds the leaves and proofs of one reveal).
    uint256 public constant MAX_DEGREE = 64;
    /// @notice `pin` argument of `challenge` for "no pinned pair: start with the k-ary query".
    uint256 public constant NO_PIN = type(uint256).max;
    /// @notice Most chunks of the disputed output a challenger may ask the solver to open in one game.
    ///         Each opening shows the solver's chunk-tree nodes along its path, so a challenger that
    ///         follows the first node differing from its own finds a differing chunk in at most
    ///         1 + log2(chunks) openings (docs/DISPUTE.md, "Data availability").
    uint256 public constant MAX_CHUNK_REQUESTS = 32;
    /// @dev What an unused reveal slot holds (any non-zero value; never compared).
    bytes32 private constant _PLACEHOLDER = bytes32(uint256(1));

    /// @inheritdoc IDisputeGame
    uint256 public gameCount;

    mapping(uint256 gameId => Game) internal _games;
    mapping(uint256 gameId => mapping(uint256 slot => bytes32)) internal _revealed;
    mapping(address account => uint256) internal _credits;

    uint256 internal _totalBonds;
    uint256 internal _totalCredits;

    /// @param market_ the task market (this contract must be authorised there as a dispute contract).
    /// @param verifier_ the one-step verifier.
    /// @param bond_ wei a challenger posts; may be zero only if griefing is acceptable.
    /// @param degree_ k of the k-ary queries, 2 .. MAX_DEGREE.
    /// @param clock_ seconds each party has in total for its moves in one game; keep
    ///        2 * clock_ below the market's dispute timeout so a game always ends before it expires.
    constructor(IDisputeHook market_, IOneStepVerifier verifier_, uint256 bond_, uint256 degree_, uint64 clock_) {
        if (address(market_) == address(0)) revert InvalidParameter(0, 0);
        if (address(verifier_) == address(0)) revert InvalidParameter(1, 0);
        if (degree_ < 2 || degree_ > MAX_DEGREE) revert InvalidParameter(2, degree_);
        if (clock_ == 0 || clock_ > type(uint32).max) revert InvalidParameter(3, clock_);
        market = market_;
        verifier = verifier_;
        bond = bond_;
        degree = degree_;
        clock = clock_;
    }

    // ─────────────────────────────────────────────────────────────── opening

    /// @inheritdoc IDisputeGame
    function challenge(uint256 taskId, uint256 pin) external payable returns (uint256 gameId) {
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        IDisputeHook.DisputeContext memory ctx = market.disputeContext(taskId);
        // The market checks the task's status, the challenge window and that the challenger is not
        // the solver; it reverts otherwise.
        uint256 disputeId = market.openDispute(taskId, msg.sender);
        gameId = ++gameCount;
        Game storage g = _games[gameId];
        g.challenger = msg.sender;
        g.solver = ctx.solver;
        g.status = GameStatus.InProgress;
        g.phase = Phase.DefendTrace;
        g.level = 1;
        g.lastMoveAt = uint40(block.timestamp);
        g.solverClock = uint32(clock); // the constructor bounds clock to 32 bits
        g.challengerClock = uint32(clock);
        g.taskId = uint64(_fit(taskId, type(uint64).max));
        g.disputeId = uint64(_fit(disputeId, type(uint64).max));
        g.specHash = ctx.specHash;
        g.opGraphRoot = ctx.opGraphRoot;
        g.checkpointInterval = ctx.checkpointInterval;
        g.root = ctx.traceRoot;
        g.size = uint48(_fit(ctx.numCheckpoints, type(uint48).max));
        g.hi = uint48(ctx.numCheckpoints - 1); // numCheckpoints >= 2: steps >= interval > 0
        if (pin != NO_PIN) {
            g.pinned = true;
            g.pin = uint48(_fit(pin, type(uint48).max));
        }
        // INVARIANT: level 1's ends are fixed by the task, not by either party: S_0 chosen by the
        // submitter, S_N claimed by the solver. The challenger disputes the claim, so it agrees with
        // S_0 and disagrees with S_N by the act of challenging.
        g.leafLo = ctx.initialStateRoot;
        g.leafHi = ctx.finalStateRoot;
        // Reveal slots start non-zero, so that every reveal overwrites storage instead of creating it:
        // the challenger pays the creation once here and every bisection move costs the same.
        mapping(uint256 => bytes32) storage slots = _revealed[gameId];
        uint256 used = degree - 1 < 2 ? 2 : degree - 1; // a pinned pair needs two
        for (uint256 i; i < used; ++i) {
            slots[i] = _PLACEHOLDER;
        }
        _totalBonds += msg.value;
        emit GameCreated(gameId, taskId, disputeId, msg.sender, ctx.solver, msg.value);
    }

    // ─────────────────────────────────────────────────────────────── solver: level links

    /// @inheritdoc IDisputeGame
    function defendTrace(uint256 gameId, bytes32[] calldata firstProof, bytes32[] calldata lastProof) external {
        Game storage g = _move(gameId, Phase.DefendTrace);
        // INVARIANT: the trace the solver committed starts at the task's S_0 and ends at its claimed S_N.
        _requireLeaf(g.root, g.leafLo, 0, g.size, firstProof);
        _requireLeaf(g.root, g.leafHi, g.hi, g.size, lastProof);
        emit LevelCommitted(gameId, 1, g.root, g.size);
        _startBisection(g);
    }

    /// @inheritdoc IDisputeGame
    function commitSteps(uint256 gameId, bytes32 root, bytes32[] calldata firstProof, bytes32[] calldata lastProof)
        external
    {
        Game storage g = _move(gameId, Phase.CommitSteps);
        uint256 size = uint256(g.checkpointInterval) + 1;
        // INVARIANT: level 2 runs from the agreed checkpoint to the disputed one: its first and last
        // leaves are exactly level 1's adjacent pair.
        _requireLeaf(root, g.leafLo, 0, size, firstProof);
        _requireLeaf(root, g.leafHi, size - 1, size, lastProof);
        g.checkpoint = g.lo;
        _enterLevel(g, 2, root, size, g.leafLo, g.leafHi);
        emit LevelCommitted(gameId, 2, root, size);
        _startBisection(g);
    }

    /// @inheritdoc IDisputeGame
    function commitOps(uint256 gameId, OpsCommitment calldata c) external {
        Game storage g = _move(gameId, Phase.CommitOps);
        uint64 t = g.checkpoint * g.checkpointInterval + g.lo;
        // INVARIANT: level 3 has the task's layout, starts at S_t (leafLo) followed by step t's inputs
        // and ends at S_t+1 (leafHi); see BisectionLinks.
        (bytes32 first, bytes32 last, uint256 firstLogSize) =
            BisectionLinks.checkOps(c, g.opGraphRoot, t, g.leafLo, g.leafHi);
        g.trainingStep = t;
        g.firstLogSize = uint24(_fit(firstLogSize, type(uint24).max));
        g.opGraphRoot = c.graphRoot; // what the verifier reads from here on
        _enterLevel(g, 3, c.root, c.size, first, last);
        emit LevelCommitted(gameId, 3, c.root, c.size);
        _startBisection(g);
    }

    /// @inheritdoc IDisputeGame
    function openOp(
        uint256 gameId,
        bytes32 preRoot,
        uint256 preSize,
        bytes32 postRoot,
        uint256 postSize,
        bytes32[] calldata consistency
    ) external {
        Game storage g = _move(gameId, Phase.OpenOp);
        // INVARIANT: op j (level 3's leaf j) appends exactly entry firstLogSize + j - 1: its one output,
        // where the op graph's descriptor says it writes.
        uint256 expected = uint256(g.firstLogSize) + g.hi - 1;
        if (preSize != expected) revert LogSizeMismatch(expected, preSize);
        if (postSize != expected + 1) revert LogSizeMismatch(expected + 1, postSize);
        // INVARIANT: the opened logs are the adjacent leaves and the second extends the first.
        BisectionLinks.checkOpOpening(g.leafLo, g.leafHi, preRoot, preSize, postRoot, postSize, consistency);
        g.op = g.hi;
        g.logRoot = preRoot;
        g.logSize = uint48(_fit(preSize, type(uint48).max));
        g.nextLogRoot = postRoot;
        g.nextLogSize = uint48(_fit(postSize, type(uint48).max));
        g.phase = Phase.NameOutput;
        emit OpOpened(gameId, g.hi, preRoot, preSize, postRoot, postSize);
    }

    /// @inheritdoc IDisputeGame
    function nameOutput(uint256 gameId, uint256 entry, uint256 flatIndex) external {
        Game storage g = _move(gameId, Phase.NameOutput);
        // INVARIANT: the named tensor is one of the disputed op's outputs.
        if (entry < g.logSize || entry >= g.nextLogSize) revert EntryOutOfRange(entry, g.logSize, g.nextLogSize);
        if (flatIndex > type(uint64).max) revert PositionOutOfRange(flatIndex, 0, type(uint64).max);
        g.outputEntry = uint48(entry); // < nextLogSize, a uint48
        g.flatIndex = uint64(flatIndex);
        g.phase = Phase.CommitScalar;
        emit OutputNamed(gameId, entry, flatIndex);
    }

    /// @inheritdoc IDisputeGame
    function requestChunk(uint256 gameId, uint256 chunkIndex) external {
        Game storage g = _move(gameId, Phase.NameOutput);
        // INVARIANT: openings are bounded, so a challenger cannot keep the solver answering forever.
        if (g.chunkRequests >= MAX_CHUNK_REQUESTS) revert TooManyChunkRequests(g.chunkRequests, MAX_CHUNK_REQUESTS);
        if (chunkIndex > type(uint64).max) revert PositionOutOfRange(chunkIndex, 0, type(uint64).max);
        ++g.chunkRequests;
        g.flatIndex = uint64(chunkIndex); // the request, until nameOutput names the element
        g.phase = Phase.OpenChunk;
        emit ChunkRequested(gameId, g.logSize, chunkIndex);
    }

    /// @inheritdoc IDisputeGame
    function openChunk(uint256 gameId, ChunkOpening calldata o) external {
        Game storage g = _move(gameId, Phase.OpenChunk);
        // INVARIANT: the chunk is the solver's disputed output's (the one entry the op appended), as
        // committed in the disputed log: what the challenger reads from it is what level 4 will use.
        // The chunk count it returns is not needed here: a request past the last chunk is answered
        // by the header alone, which checkChunk has already checked.
        // slither-disable-next-line unused-return
        BisectionLinks.checkChunk(g.nextLogRoot, g.nextLogSize, g.logSize, g.flatIndex, o);
        g.phase = Phase.NameOutput;
        emit ChunkOpened(gameId, g.flatIndex, o.dtype, o.shape, o.chunk, o.chunkProof);
    }

    /// @inheritdoc IDisputeGame
    function rejectHeader(uint256 gameId, HeaderOpening calldata h) external {
        Game storage g = _move(gameId, Phase.NameOutput);
        // INVARIANT: the solver's output (the one entry op g.op - 1 appended) has a dtype or shape other
        // than the op's committed descriptor says; OutputHeader reverts otherwise.
        uint32[] memory expected =
            OutputHeader.check(g.opGraphRoot, g.op - 1, g.nextLogRoot, g.nextLogSize, g.logSize, h);
        emit HeaderRejected(gameId, h.dtype, h.shape, OutputHeader.OUTPUT_DTYPE, expected);
        _decide(gameId, g, true);
    }

    /// @inheritdoc IDisputeGame
    function commitScalar(uint256 gameId, ScalarCommitment calldata c) external {
        Game storage g = _move(gameId, Phase.CommitScalar);
        IOneStepVerifier.StepContext memory ctx = _context(g, 0);
        uint256 steps = _fit(verifier.programLength(ctx), type(uint48).max - 1);
        if (steps == 0) revert SequenceTooShort(0, 2);
        uint256 size = steps + 1;
        bytes32 first = verifier.initialState(ctx);
        // INVARIANT: the program starts from the verifier's initial state (fixed by the op and element).
        _requireLeaf(c.root, first, 0, size, c.firstProof);
        _requireLeaf(c.root, c.lastLeaf, steps, size, c.lastProof);
        // INVARIANT: the output tensor is the named entry of the disputed log, and the program's final
        // state holds exactly the value the solver's tensor has at the named element.
        _requireLeaf(g.nextLogRoot, c.outputTensorId, g.outputEntry, g.nextLogSize, c.outputProof);
        if (!verifier.outputMatches(ctx, c.lastLeaf, c.outputTensorId, c.outputOpening)) {
            revert OutputMismatch(c.lastLeaf, c.outputTensorId);
        }
        _enterLevel(g, 4, c.root, size, first, c.lastLeaf);
        emit LevelCommitted(gameId, 4, c.root, size);
        _startBisection(g);
    }

    /// @inheritdoc IDisputeGame
    function rejectOutput(
        uint256 gameId,
        bytes32 outputTensorId,
        bytes32[] calldata outputProof,
        uint8 dtype,
        uint32[] calldata shape,
        bytes32 chunkRoot
    ) external {
        Game storage g = _move(gameId, Phase.CommitScalar);
        // INVARIANT: the named element does not exist in the solver's output tensor.
        uint256 count = BisectionLinks.checkOutputAbsent(
            g.nextLogRoot,
            g.nextLogSize,
            g.outputEntry,
            g.flatIndex,
            outputTensorId,
            outputProof,
            dtype,
            shape,
            chunkRoot
        );
        emit OutputRejected(gameId, g.flatIndex, count);
        _decide(gameId, g, false);
    }

    // ─────────────────────────────────────────────────────────────── bisection

    /// @inheritdoc IDisputeGame
    function reveal(uint256 gameId, bytes32[] calldata leaves, bytes32[][] calldata proofs) external {
        Game storage g = _move(gameId, Phase.Reveal);
        uint256[] memory pos = _positions(g);
        uint256 n = pos.length;
        if (leaves.length != n || proofs.length != n) revert WrongLeafCount(leaves.length, n);
        bytes32 root = g.root;
        uint256 size = g.size;
        mapping(uint256 => bytes32) storage slots = _revealed[gameId];
        for (uint256 i; i < n; ++i) {
            // INVARIANT: every revealed leaf is the solver's committed leaf at its position.
            _requireLeaf(root, leaves[i], pos[i], size, proofs[i]);
            slots[i] = leaves[i];
        }
        g.phase = Phase.Choose;
        emit LeavesRevealed(gameId, g.level, pos, leaves);
    }

    /// @inheritdoc IDisputeGame
    function choose(uint256 gameId, uint256 index) external {
        Game storage g = _move(gameId, Phase.Choose);
        _narrow(gameId, g, index);
        g.pinned = false;
        emit IntervalChosen(gameId, g.level, g.lo, g.hi, type(uint256).max);
        _afterNarrow(g);
    }

    /// @inheritdoc IDisputeGame
    function pinpoint(uint256 gameId, uint256 index, uint256 position) external {
        Game storage g = _move(gameId, Phase.Choose);
        _narrow(gameId, g, index);
        if (g.hi - g.lo > 1) {
            // INVARIANT: the pinpointed pair lies inside the chosen interval.
            if (position < g.lo || position >= g.hi) revert PositionOutOfRange(position, g.lo, g.hi);
        }
        // On the move that ends a level, `position` is the pair asked first at the next level
        // (checked there: a pin outside that level falls back to the k-ary query).
        g.pinned = true;
        g.pin = uint48(_fit(position, type(uint48).max));
        emit IntervalChosen(gameId, g.level, g.lo, g.hi, position);
        _afterNarrow(g);
    }

    /// @inheritdoc IDisputeGame
    function step(uint256 gameId, bytes calldata proof) external {
        Game storage g = _games[gameId];
        _requireInProgress(gameId, g);
        if (g.phase != Phase.Step) revert WrongPhase(gameId, g.phase, Phase.Step);
        // Anyone may trigger the check (its outcome depends only on committed data), but it runs on
        // the challenger's clock: a challenger who never brings the proof loses by timeout.
        _charge(gameId, g, Party.Challenger);
        bytes32 computed = verifier.step(_context(g, g.lo), g.leafLo, proof);
        bytes32 claimed = g.leafHi;
        emit OneStepChecked(gameId, g.lo, computed, claimed);
        // INVARIANT: both parties agree on leaf lo; the solver is wrong iff its leaf lo + 1 is not
        // what one step from leaf lo gives.
        _decide(gameId, g, computed != claimed);
    }

    // ─────────────────────────────────────────────────────────────── endings and money

    /// @inheritdoc IDisputeGame
    function claimTimeout(uint256 gameId) external {
        Game storage g = _games[gameId];
        _requireUndecided(gameId, g);
        Party party = _turn(g.phase);
        uint256 elapsed = block.timestamp - g.lastMoveAt;
        uint256 remaining = party == Party.Solver ? g.solverClock : g.challengerClock;
        // INVARIANT: only the party whose clock runs can time out, and only once its time is used up.
        if (elapsed <= remaining) revert ClockNotExpired(gameId, party, elapsed, remaining);
        emit TimedOut(gameId, party);
        _decide(gameId, g, party == Party.Solver);
    }

    /// @inheritdoc IDisputeGame
    function resolve(uint256 gameId) external {
        Game storage g = _games[gameId];
        _requireInProgress(gameId, g);
        if (g.phase != Phase.Resolve) revert WrongPhase(gameId, g.phase, Phase.Resolve);
        _settle(gameId, g);
    }

    /// @inheritdoc IDisputeGame
    function closeAfterFailure(uint256 gameId) external {
        Game storage g = _games[gameId];
        _requireUndecided(gameId, g);
        IDisputeHook.TaskStatus status = market.disputeContext(g.taskId).status;
        // INVARIANT: a solver is slashed once; after its task failed, the other games only return bonds.
        if (status != IDisputeHook.TaskStatus.Failed) revert TaskNotFailed(g.taskId, status);
        _decide(gameId, g, false);
        _settle(gameId, g);
    }

    /// @inheritdoc IDisputeGame
    function withdraw() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _totalCredits -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ─────────────────────────────────────────────────────────────── views

    /// @inheritdoc IDisputeGame
    function getGame(uint256 gameId) external view returns (Game memory) {
        return _games[gameId];
    }

    /// @inheritdoc IDisputeGame
    function pendingPositions(uint256 gameId) external view returns (uint256[] memory) {
        Game storage g = _games[gameId];
        if (g.status != GameStatus.InProgress || g.phase != Phase.Reveal) return new uint256[](0);
        return _positions(g);
    }

    /// @inheritdoc IDisputeGame
    function clockOf(uint256 gameId) external view returns (Party party, uint256 remaining) {
        Game storage g = _games[gameId];
        if (g.status != GameStatus.InProgress || g.phase == Phase.Resolve) return (Party.None, 0);
        party = _turn(g.phase);
        uint256 left = party == Party.Solver ? g.solverClock : g.challengerClock;
        uint256 elapsed = block.timestamp - g.lastMoveAt;
        remaining = elapsed >= left ? 0 : left - elapsed;
    }

    /// @inheritdoc IDisputeGame
    function totals() external view returns (uint256 bonds, uint256 credits) {
        return (_totalBonds, _totalCredits);
    }

    /// @inheritdoc IDisputeGame
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    // ─────────────────────────────────────────────────────────────── internal: moves

    /// @dev The game in progress, in `expected` phase, moved by the party whose turn it is, in time.
    function _move(uint256 gameId, Phase expected) internal returns (Game storage g) {
        g = _games[gameId];
        _requireUndecided(gameId, g);
        if (g.phase != expected) revert WrongPhase(gameId, g.phase, expected);
        Party party = _turn(expected);
        address mover = party == Party.Solver ? g.solver : g.challenger;
        if (msg.sender != mover) revert NotYourMove(gameId, msg.sender, mover);
        _charge(gameId, g, party);
    }

    /// @dev Stops `party`'s clock: deducts the time since the last move, or reverts if it ran out.
    function _charge(uint256 gameId, Game storage g, Party party) internal {
        uint256 elapsed = block.timestamp - g.lastMoveAt;
        uint256 remaining = party == Party.Solver ? g.solverClock : g.challengerClock;
        // INVARIANT: a move made after the mover's time ran out is void; the game is claimTimeout's.
        if (elapsed > remaining) revert ClockExpired(gameId, party, elapsed, remaining);
        // Safe: elapsed <= remaining <= clock, a uint32.
        uint32 left = uint32(remaining - elapsed);
        if (party == Party.Solver) g.solverClock = left;
        else g.challengerClock = left;
        g.lastMoveAt = uint40(block.timestamp);
    }

    function _requireInProgress(uint256 gameId, Game storage g) internal view {
        if (g.status == GameStatus.None) revert UnknownGame(gameId);
        if (g.status != GameStatus.InProgress) revert GameOver(gameId, g.status);
    }

    function _requireUndecided(uint256 gameId, Game storage g) internal view {
        _requireInProgress(gameId, g);
        if (g.phase == Phase.Resolve) revert AlreadyDecided(gameId, g.solverLost);
    }

    /// @dev `value` if it is at most `max`, else a TooLarge revert (storage fields are packed).
    function _fit(uint256 value, uint256 max) internal pure returns (uint256) {
        if (value > max) revert TooLarge(value, max);
        return value;
    }

    /// @dev Whose clock runs in `phase`.
    function _turn(Phase phase) internal pure returns (Party) {
        if (phase == Phase.Choose || phase == Phase.NameOutput || phase == Phase.Step) return Party.Challenger;
        if (phase == Phase.None || phase == Phase.Resolve) return Party.None;
        return Party.Solver;
    }

    function _requireLeaf(bytes32 root, bytes32 leaf, uint256 position, uint256 size, bytes32[] calldata proof)
        internal
        pure
    {
        BisectionLinks.requireLeaf(root, leaf, position, size, proof);
    }

    /// @dev Makes `level` current with the proven ends.
    function _enterLevel(Game storage g, uint8 level, bytes32 root, uint256 size, bytes32 first, bytes32 last)
        internal
    {
        g.level = level;
        g.root = root;
        g.size = uint48(_fit(size, type(uint48).max));
        g.lo = 0;
        g.hi = uint48(size - 1); // size >= 2 at every level
        g.leafLo = first;
        g.leafHi = last;
    }

    /// @dev After the ends of a level are proven: ask for the pinned pair if the challenger named one
    ///      inside this level, else the k-ary query; or move on if the level has only two leaves.
    function _startBisection(Game storage g) internal {
        if (g.pinned && g.pin >= g.hi) g.pinned = false;
        if (g.hi - g.lo == 1) {
            g.pinned = false;
            _levelDone(g);
        } else {
            g.phase = Phase.Reveal;
        }
    }

    /// @dev Narrows [lo, hi] to sub-interval `index` of the revealed points.
    function _narrow(uint256 gameId, Game storage g, uint256 index) internal {
        uint256[] memory pos = _positions(g);
        if (index > pos.length) revert ChoiceOutOfRange(index, pos.length + 1);
        (uint256 newLo, uint256 newHi) = Bisection.subInterval(g.lo, g.hi, pos, index);
        mapping(uint256 => bytes32) storage slots = _revealed[gameId];
        // INVARIANT: the new ends are leaves the solver proved (revealed now or ends before): the
        // challenger's agreement with leafLo and disagreement with leafHi carry over to the new interval.
        if (index > 0) g.leafLo = slots[index - 1];
        if (index < pos.length) g.leafHi = slots[index];
        g.lo = uint48(newLo); // within [lo, hi]: uint48
        g.hi = uint48(newHi);
    }

    function _afterNarrow(Game storage g) internal {
        if (g.hi - g.lo == 1) _levelDone(g);
        else g.phase = Phase.Reveal;
    }

    /// @dev Two adjacent leaves remain at the current level.
    function _levelDone(Game storage g) internal {
        uint8 level = g.level;
        if (level == 1) g.phase = Phase.CommitSteps;
        else if (level == 2) g.phase = Phase.CommitOps;
        else if (level == 3) g.phase = Phase.OpenOp;
        else g.phase = Phase.Step;
    }

    /// @dev The positions asked in the current round.
    function _positions(Game storage g) internal view returns (uint256[] memory) {
        if (g.pinned) return Bisection.pinpointPositions(g.lo, g.hi, g.pin);
        return Bisection.queryPositions(g.lo, g.hi, degree);
    }

    function _context(Game storage g, uint256 stepIndex) internal view returns (IOneStepVerifier.StepContext memory) {
        return IOneStepVerifier.StepContext({
            specHash: g.specHash,
            opGraphRoot: g.opGraphRoot,
            trainingStep: g.trainingStep,
            logRoot: g.logRoot,
            logSize: g.logSize,
            op: g.op,
            outputEntry: g.outputEntry,
            flatIndex: g.flatIndex,
            step: stepIndex
        });
    }

    // ─────────────────────────────────────────────────────────────── internal: settlement

    /// @dev Records the decision; the money moves in `resolve`.
    function _decide(uint256 gameId, Game storage g, bool solverLost) internal {
        g.phase = Phase.Resolve;
        g.solverLost = solverLost;
        emit GameDecided(gameId, solverLost);
    }

    /// @dev Ends the game, reports to the market and credits the bond.
    ///      Solver lost: bond back to the challenger (the market slashes the solver's stake, once).
    ///      Solver won: bond to the solver, unless the market answers Closed (the task already failed
    ///      through another game), in which case the bond goes back to the challenger.
    function _settle(uint256 gameId, Game storage g) internal {
        bool solverLost = g.solverLost;
        uint256 amount = bond;
        g.phase = Phase.None;
        // Final unless the market answers Closed; set before the call so nothing can re-enter a move.
        g.status = solverLost ? GameStatus.ChallengerWon : GameStatus.SolverWon;
        _totalBonds -= amount;
        IDisputeHook.DisputeStatus ds = market.resolveDispute(g.disputeId, solverLost);
        address payee;
        if (solverLost) {
            payee = g.challenger;
        } else if (ds == IDisputeHook.DisputeStatus.Closed) {
            g.status = GameStatus.Closed;
            payee = g.challenger;
        } else {
            payee = g.solver;
        }
        _credits[payee] += amount;
        _totalCredits += amount;
        emit GameResolved(gameId, g.status, ds, payee, amount);
    }
}
