// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDisputeHook} from "./IDisputeHook.sol";
import {IOneStepVerifier} from "./IOneStepVerifier.sol";

/// @title IDisputeGame
/// @notice The four-level bisection game between a task's solver and one challenger (docs/DISPUTE.md).
///
///         level 1  checkpoints   S_0 ──── S_c ──── S_2c ── … ── S_N      (the task's trace root)
///         level 2  steps         S_t ─ S_t+1 ─ … ─ S_t+c                  (one checkpoint interval)
///         level 3  ops           L_0 ─ L_1 ─ … ─ L_n   L_j = opLeaf(log root, log size) after op j
///         level 4  scalar        R_0 ─ R_1 ─ … ─ R_M   register commitments of one output element
///
///         At every level the solver is committed to a Merkle root over the sequence, the challenger
///         agrees with the interval's left leaf and disagrees with its right leaf, and the interval
///         shrinks (k-ary queries or a pinpointed pair) until the two leaves are adjacent. The solver
///         then commits the next level and proves that its ends are the two adjacent leaves above; at
///         the bottom the one-step verifier decides. Each party has a chess clock; anyone may end a
///         game whose party to move has run out of time.
interface IDisputeGame {
    // ─────────────────────────────────────────────────────────────── types

    /// @notice Life cycle of a game. Zero means no such game.
    enum GameStatus {
        None,
        InProgress,
        SolverWon, // the challenger's bond went to the solver
        ChallengerWon, // the solver was reported as having lost; the bond went back to the challenger
        Closed // the task had already failed through another game: the bond went back to the challenger
    }

    /// @notice What the game waits for. Zero means nothing (the game is over or does not exist).
    enum Phase {
        None,
        DefendTrace, // solver: prove S_0 and S_N are the ends of the trace root (level 1)
        Reveal, // solver: reveal the pending positions of the current level
        Choose, // challenger: pick a sub-interval (optionally pinpoint the next pair)
        CommitSteps, // solver: commit level 2 and link its ends to the two checkpoints
        CommitOps, // solver: commit level 3 and link its ends to S_t and S_t+1
        OpenOp, // solver: open the two adjacent op-log leaves and prove the second extends the first
        NameOutput, // challenger: name the output element it disputes
        CommitScalar, // solver: commit level 4 and link it to the op log and the named element
        Step, // challenger (or anyone): have the one-step verifier decide
        Resolve, // decided (`solverLost`); anyone settles with the market and the bond
        OpenChunk // solver: open the chunk of the disputed output the challenger asked for
    }

    /// @notice Who must move. Zero means nobody.
    enum Party {
        None,
        Solver,
        Challenger
    }

    /// @notice One game as stored, packed so that an ordinary move reads a few slots and writes
    ///         slot 0 and at most one leaf.
    struct Game {
        // slot 0: what every move reads and writes
        uint40 lastMoveAt; // when the clock of the party to move started running
        uint32 solverClock; // seconds left to the solver
        uint32 challengerClock; // seconds left to the challenger
        GameStatus status;
        Phase phase;
        uint8 level; // 1 checkpoints, 2 steps, 3 ops, 4 scalar
        bool pinned; // the pending positions are the pinpointed pair, not the k-ary query
        bool solverLost; // the decision, once the phase is Resolve
        uint48 lo; // current interval [lo, hi] of the current level
        uint48 hi;
        // slot 1: with slot 0, all a reveal reads besides the root
        address solver;
        uint48 size; // leaves of the current level's sequence
        uint48 pin; // pinpointed position (pair pin, pin + 1) when `pinned`
        // slot 2
        address challenger;
        uint64 taskId;
        uint24 firstLogSize; // entries of the step's first log (S_t's tensors and the step's inputs)
        uint8 chunkRequests; // chunks of the disputed output the challenger has asked to open
        // slot 3
        uint64 disputeId; // the market's id
        uint64 checkpointInterval; // c: level 2 has c + 1 leaves
        uint64 checkpoint; // level 1's agreed left index, once level 1 is done
        uint64 trainingStep; // the disputed step t (S_t -> S_t+1), once level 2 is done
        // slot 4
        uint48 op; // the disputed op, once level 3 is done
        uint48 outputEntry; // the named output's log entry
        uint64 flatIndex; // the named element (the requested chunk while the phase is OpenChunk)
        uint48 logSize; // entries of the agreed log (after op `op - 1`)
        uint48 nextLogSize; // entries of the disputed log (after op `op`)
        bytes32 specHash;
        bytes32 opGraphRoot; // the task's opGraphRoot; from commitOps on, the op descriptors' root it
        // commits (`OpsCommitment.graphRoot`), which is what the verifier reads
        bytes32 root; // the solver's root over the current level's sequence
        bytes32 leafLo; // leaf `lo`: the challenger agrees
        bytes32 leafHi; // leaf `hi`: the challenger disagrees
        bytes32 logRoot; // agreed op log (after op `op - 1`)
        bytes32 nextLogRoot; // disputed op log (after op `op`)
    }

    /// @notice The solver's level 3 commitment and the links of its ends to S_t and S_t+1, checked
    ///         against the task's `opGraphRoot` = keccak256(abi.encode(graphRoot, layoutHash)) with
    ///         layoutHash = keccak256(abi.encode(uint256 size - 1, uint256 stateSize, uint64[] designated,
    ///         bytes32 inputsRoot)): the op count, S_t's size, S_t+1's entries and the step-input table
    ///         are the task's, not the solver's (docs/DISPUTE.md, "The step layout").
    struct OpsCommitment {
        bytes32 root; // root over the op-log leaves L_0 .. L_n
        uint64 size; // n + 1, n the task's op count (at least 1)
        bytes32 graphRoot; // root over the op descriptors (the verifier's)
        bytes32 inputsRoot; // root of the step-input table: row t = abi.encode(uint256 t, bytes32[] ids)
        uint64 stateSize; // number of tensors in S_t
        bytes32[] stateBorder; // roots of S_t's complete subtrees, largest (leftmost) first
        bytes32[] inputIds; // row t of the table: the first log's entries after S_t (the batch, constants)
        uint64 inputsRows; // rows of the table (one per training step)
        bytes32[] inputsProof; // inclusion of row t in inputsRoot
        bytes32[] firstProof; // inclusion of L_0 at 0 (L_0 is computed: S_t's ids, then inputIds)
        bytes32 lastLogRoot; // L_n = opLeaf(lastLogRoot, lastLogSize)
        uint64 lastLogSize; // first log's size + n: every op appends exactly one entry
        bytes32[] lastProof; // inclusion of L_n at n
        uint64[] designated; // entries of the last log holding S_t+1's tensors, in S_t+1's order
        bytes32[] designatedIds; // the ids at those entries
        bytes32[][] designatedProofs; // inclusion of each id in the last log
    }

    /// @notice The solver's opening of a chunk of the disputed output (`openChunk`).
    struct ChunkOpening {
        bytes32 tensorId; // id at the disputed output's entry of the disputed log
        bytes32[] idProof; // its inclusion in the disputed log
        uint8 dtype; // TensorCommit dtype code
        uint32[] shape;
        bytes32 chunkRoot; // tensorId = TensorCommit.tensorId(dtype, shape, chunkRoot)
        bytes chunk; // the requested chunk (empty when it does not exist)
        bytes32[] chunkProof; // its inclusion in chunkRoot (the solver's chunk tree nodes along the path)
    }

    /// @notice The challenger's opening of the disputed output's header and of the disputed op's
    ///         descriptor (`rejectHeader`).
    struct HeaderOpening {
        bytes descriptor; // the disputed op's descriptor, leaf data of the graph tree (OpDescriptor.sol)
        uint256 graphSize; // number of ops of the graph (the proof's tree size)
        bytes32[] graphProof; // the descriptor's inclusion at its index in the graph root
        bytes32 tensorId; // id at the disputed output's entry of the disputed log
        bytes32[] idProof; // its inclusion in the disputed log
        uint8 dtype; // TensorCommit dtype code
        uint32[] shape;
        bytes32 chunkRoot; // tensorId = TensorCommit.tensorId(dtype, shape, chunkRoot)
    }

    /// @notice The solver's level 4 commitment and its links.
    struct ScalarCommitment {
        bytes32 root; // root over R_0 .. R_M (M from the verifier's programLength)
        bytes32[] firstProof; // inclusion of R_0 (the verifier's initial state) at 0
        bytes32 lastLeaf; // R_M
        bytes32[] lastProof; // inclusion of R_M at M
        bytes32 outputTensorId; // id at the named log entry of the disputed log
        bytes32[] outputProof; // its inclusion in the disputed log
        bytes outputOpening; // for the verifier: opens R_M and the named element of the output tensor
    }

    // ─────────────────────────────────────────────────────────────── errors

    /// @notice The opened descriptor is not the disputed op's (`index` must be `expectedIndex`) or does
    ///         not write the disputed entry (`output` must be `expectedEntry`).
    error DescriptorMismatch(uint256 expectedIndex, uint256 index, uint256 expectedEntry, uint256 output);
    /// @notice The descriptor's words at byte `at` of its `length`-byte encoding are missing or out of range.
    error BadDescriptorWord(uint256 length, uint256 at);
    /// @notice `rejectHeader`: the solver's output has the descriptor's dtype and shape; nothing to reject.
    error HeaderMatches(uint256 op, uint8 dtype, uint32[] shape);
    /// @notice A game parameter is out of range (`which`: 0 market, 1 verifier, 2 degree, 3 clock).
    error InvalidParameter(uint8 which, uint256 value);
    /// @notice `value` does not fit the game's storage (at most `max`).
    error TooLarge(uint256 value, uint256 max);
    /// @notice A challenge needs a bond of exactly `required`; `sent` was sent.
    error WrongBond(uint256 sent, uint256 required);
    /// @notice No game `gameId` exists.
    error UnknownGame(uint256 gameId);
    /// @notice Game `gameId` is decided (`solverLost`) and waits only for `resolve`.
    error AlreadyDecided(uint256 gameId, bool solverLost);
    /// @notice Game `gameId` is `status`, no longer in progress.
    error GameOver(uint256 gameId, GameStatus status);
    /// @notice Game `gameId` waits for `actual`; the call needs `expected`.
    error WrongPhase(uint256 gameId, Phase actual, Phase expected);
    /// @notice Only `expected` may make this move of game `gameId`; `caller` tried.
    error NotYourMove(uint256 gameId, address caller, address expected);
    /// @notice `party` has `remaining` seconds and has used `elapsed` on this move: its time is up.
    error ClockExpired(uint256 gameId, Party party, uint256 elapsed, uint256 remaining);
    /// @notice `party` still has time: `elapsed` of `remaining` seconds used.
    error ClockNotExpired(uint256 gameId, Party party, uint256 elapsed, uint256 remaining);
    /// @notice `leaf` is not leaf `position` of the `size`-leaf tree `root` with the given proof.
    error NotInTree(bytes32 root, uint256 position, uint256 size, bytes32 leaf);
    /// @notice `given` leaves or proofs were sent; `expected` positions are pending.
    error WrongLeafCount(uint256 given, uint256 expected);
    /// @notice Sub-interval `index` does not exist: there are `count`.
    error ChoiceOutOfRange(uint256 index, uint256 count);
    /// @notice `position` is outside [`lo`, `hi`).
    error PositionOutOfRange(uint256 position, uint256 lo, uint256 hi);
    /// @notice A sequence of `size` leaves (below `min`) cannot be bisected.
    error SequenceTooShort(uint256 size, uint256 min);
    /// @notice `(root, size)` hashes to `computed`, not the agreed leaf `expected`.
    error LeafPreimageMismatch(bytes32 expected, bytes32 computed);
    /// @notice The log of `newSize` entries does not extend the log of `oldSize` entries.
    error NotConsistent(uint256 oldSize, uint256 newSize);
    /// @notice An op must append at least one entry: the log went from `preSize` to `postSize`.
    error EmptyOp(uint256 preSize, uint256 postSize);
    /// @notice Log entry `entry` is not an output of the disputed op, whose entries are [`lo`, `hi`).
    error EntryOutOfRange(uint256 entry, uint256 lo, uint256 hi);
    /// @notice The designated entries hash to `computed`, not the state root `expected`.
    error StateMismatch(bytes32 expected, bytes32 computed);
    /// @notice The designated entries must be non-empty and their lists of equal length.
    error BadDesignation(uint256 entries, uint256 ids, uint256 proofs);
    /// @notice The final scalar state does not hold the named element's value.
    error OutputMismatch(bytes32 finalState, bytes32 outputTensorId);
    /// @notice The named element exists (`flatIndex` < `numel`): it cannot be rejected.
    error ElementExists(uint256 flatIndex, uint256 numel);
    /// @notice The tensor's id does not match its claimed shape and chunk root.
    error TensorIdMismatch(bytes32 expected, bytes32 computed);
    /// @notice The opened op graph root and step layout commit to `computed`, not the task's `expected`.
    error GraphMismatch(bytes32 expected, bytes32 computed);
    /// @notice `given` border nodes were sent; S_t's size has `expected` complete subtrees.
    error WrongBorderLength(uint256 given, uint256 expected);
    /// @notice S_t's border nodes fold to `computed`, not the agreed state root `expected`.
    error BorderMismatch(bytes32 expected, bytes32 computed);
    /// @notice A log of `actual` entries where the step's layout fixes `expected`.
    error LogSizeMismatch(uint256 expected, uint256 actual);
    /// @notice The challenger has asked for `made` chunks of this game's output, the most it may.
    error TooManyChunkRequests(uint256 made, uint256 max);
    /// @notice Chunk `chunkIndex` has `length` bytes; the tensor's chunk of that index has `expected`.
    error ChunkLengthMismatch(uint256 chunkIndex, uint256 expected, uint256 length);
    /// @notice Task `taskId` is `status`, not Failed: its games must be played out.
    error TaskNotFailed(uint256 taskId, IDisputeHook.TaskStatus status);
    /// @notice `account` has nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    // ─────────────────────────────────────────────────────────────── events

    /// @notice `challenger` opened game `gameId` (market dispute `disputeId`) on `taskId` with `bond`.
    event GameCreated(
        uint256 indexed gameId,
        uint256 indexed taskId,
        uint256 disputeId,
        address indexed challenger,
        address solver,
        uint256 bond
    );
    /// @notice Level `level` of `gameId` is the `size`-leaf sequence `root`; its ends are proven.
    event LevelCommitted(uint256 indexed gameId, uint8 level, bytes32 root, uint256 size);
    /// @notice The solver revealed `leaves` at `positions` of the current level.
    event LeavesRevealed(uint256 indexed gameId, uint8 level, uint256[] positions, bytes32[] leaves);
    /// @notice The challenger narrowed the interval of `level` to [`lo`, `hi`]; `pin` is the
    ///         pinpointed left position of the next pair or type(uint256).max for a k-ary query.
    event IntervalChosen(uint256 indexed gameId, uint8 level, uint256 lo, uint256 hi, uint256 pin);
    /// @notice The solver opened op `op`: the log went from (`preRoot`, `preSize`) to (`postRoot`, `postSize`).
    event OpOpened(
        uint256 indexed gameId, uint256 op, bytes32 preRoot, uint256 preSize, bytes32 postRoot, uint256 postSize
    );
    /// @notice The challenger disputes element `flatIndex` of the tensor at log entry `entry`.
    event OutputNamed(uint256 indexed gameId, uint256 entry, uint256 flatIndex);
    /// @notice The challenger asks the solver to open chunk `chunkIndex` of the tensor at log entry `entry`.
    event ChunkRequested(uint256 indexed gameId, uint256 entry, uint256 chunkIndex);
    /// @notice The solver opened chunk `chunkIndex` of its output (`dtype`, `shape`): `chunk` (empty when
    ///         the tensor has no such chunk) with its path `chunkProof` in the tensor's chunk tree.
    event ChunkOpened(
        uint256 indexed gameId,
        uint256 chunkIndex,
        uint8 dtype,
        uint32[] shape,
        bytes chunk,
        bytes32[] chunkProof
    );
    /// @notice The verifier computed `computed` from leaf `step`; the solver claimed `claimed`.
    event OneStepChecked(uint256 indexed gameId, uint256 step, bytes32 computed, bytes32 claimed);
    /// @notice The solver proved the named element does not exist (`numel` elements).
    event OutputRejected(uint256 indexed gameId, uint256 flatIndex, uint256 numel);
    /// @notice The challenger proved the solver's output has dtype `dtype` and shape `shape`, where the
    ///         op's descriptor says `expectedDtype` and `expectedShape`.
    event HeaderRejected(
        uint256 indexed gameId, uint8 dtype, uint32[] shape, uint8 expectedDtype, uint32[] expectedShape
    );
    /// @notice `loser` ran out of time in game `gameId`.
    event TimedOut(uint256 indexed gameId, Party loser);
    /// @notice Game `gameId` is decided: the solver lost (`solverLost`) or the challenger did.
    event GameDecided(uint256 indexed gameId, bool solverLost);
    /// @notice Game `gameId` ended with `status`; the market answered `disputeStatus`; `bond` credited to `payee`.
    event GameResolved(
        uint256 indexed gameId,
        GameStatus status,
        IDisputeHook.DisputeStatus disputeStatus,
        address indexed payee,
        uint256 bond
    );
    /// @notice `account` withdrew `amount` of credited bonds.
    event Withdrawn(address indexed account, uint256 amount);

    // ─────────────────────────────────────────────────────────────── opening

    /// @notice Challenges the result of `taskId` with `msg.value == bond()`: opens a dispute in the
    ///         market (during its challenge window) and a game whose first move is the solver's.
    /// @param pin the checkpoint pair (pin, pin + 1) to reveal first, for a challenger who has the
    ///        trace's leaves off chain; type(uint256).max (or any pin outside the trace) for the
    ///        k-ary query.
    function challenge(uint256 taskId, uint256 pin) external payable returns (uint256 gameId);

    // ─────────────────────────────────────────────────────────────── solver: level links

    /// @notice Level 1: proves that leaf 0 of the trace root is the task's S_0 and leaf N is the
    ///         claimed final state root (both against the `numCheckpoints`-leaf trace).
    function defendTrace(uint256 gameId, bytes32[] calldata firstProof, bytes32[] calldata lastProof) external;

    /// @notice Level 2: commits the c + 1 states of the disputed checkpoint interval; leaf 0 and leaf
    ///         c must be the two agreed/disputed checkpoint states.
    function commitSteps(uint256 gameId, bytes32 root, bytes32[] calldata firstProof, bytes32[] calldata lastProof)
        external;

    /// @notice Level 3: commits the op-log leaves of the disputed step and links them to S_t, S_t+1.
    function commitOps(uint256 gameId, OpsCommitment calldata c) external;

    /// @notice After level 3: opens the two adjacent op-log leaves and proves the disputed log
    ///         extends the agreed one by at least one entry.
    function openOp(
        uint256 gameId,
        bytes32 preRoot,
        uint256 preSize,
        bytes32 postRoot,
        uint256 postSize,
        bytes32[] calldata consistency
    ) external;

    /// @notice After `requestChunk`: opens the requested chunk of the disputed output against the
    ///         disputed log (or, when the tensor has no such chunk, only its dtype and shape).
    function openChunk(uint256 gameId, ChunkOpening calldata o) external;

    /// @notice Level 4: commits the scalar states of the named element's program and links them.
    function commitScalar(uint256 gameId, ScalarCommitment calldata c) external;

    /// @notice Instead of `commitScalar`: proves the named element does not exist (index beyond the
    ///         tensor's element count), which decides the game against the challenger.
    function rejectOutput(
        uint256 gameId,
        bytes32 outputTensorId,
        bytes32[] calldata outputProof,
        uint8 dtype,
        uint32[] calldata shape,
        bytes32 chunkRoot
    ) external;

    /// @notice Instead of `nameOutput` (phase NameOutput): the challenger opens the disputed op's
    ///         descriptor against the graph root and the solver's output header (dtype, shape, chunk
    ///         root) against the disputed log; a dtype or shape other than the descriptor's decides
    ///         the game against the solver at once (docs/DISPUTE.md, "Wrong header").
    function rejectHeader(uint256 gameId, HeaderOpening calldata h) external;

    // ─────────────────────────────────────────────────────────────── bisection

    /// @notice The solver reveals the leaves at `pendingPositions(gameId)` with inclusion proofs.
    function reveal(uint256 gameId, bytes32[] calldata leaves, bytes32[][] calldata proofs) external;

    /// @notice The challenger picks sub-interval `index` of [lo, p_1, …, p_r, hi]; the next query
    ///         is the k-ary one.
    function choose(uint256 gameId, uint256 index) external;

    /// @notice As `choose`, and asks next for the adjacent pair (`position`, `position + 1`) inside
    ///         the chosen sub-interval (for a challenger who has the solver's leaves off chain). When
    ///         the chosen sub-interval is already a pair, `position` is the pair asked first at the
    ///         next level (ignored there if it falls outside that level).
    function pinpoint(uint256 gameId, uint256 index, uint256 position) external;

    /// @notice After level 3: the challenger names output element `flatIndex` of the tensor at log
    ///         entry `entry` (an output of the disputed op).
    function nameOutput(uint256 gameId, uint256 entry, uint256 flatIndex) external;

    /// @notice Instead of `nameOutput`: asks the solver to open chunk `chunkIndex` of the disputed
    ///         output on chain (at most MAX_CHUNK_REQUESTS per game), for a challenger the solver's
    ///         artifacts were withheld from. A solver that cannot open it loses on time.
    function requestChunk(uint256 gameId, uint256 chunkIndex) external;

    /// @notice At the bottom: the verifier executes one step from the agreed leaf; a result other
    ///         than the solver's next leaf decides the game against the solver, an equal one against
    ///         the challenger (settled by `resolve`).
    function step(uint256 gameId, bytes calldata proof) external;

    // ─────────────────────────────────────────────────────────────── endings and money

    /// @notice Decides a game whose party to move has run out of time: that party loses.
    function claimTimeout(uint256 gameId) external;

    /// @notice Settles a decided game (anyone): reports to the market (which slashes a losing
    ///         solver once) and credits the bond. Kept apart from the deciding move so that the
    ///         one-step check costs only the check, and a market that cannot take the report now
    ///         cannot undo a decision.
    function resolve(uint256 gameId) external;

    /// @notice Closes a game whose task already failed through another dispute: bond returned.
    function closeAfterFailure(uint256 gameId) external;

    /// @notice Sends the caller its credited bonds.
    function withdraw() external;

    // ─────────────────────────────────────────────────────────────── views

    /// @notice Game `gameId` as stored.
    function getGame(uint256 gameId) external view returns (Game memory);
    /// @notice Positions the solver must reveal next (empty outside the Reveal phase).
    function pendingPositions(uint256 gameId) external view returns (uint256[] memory);
    /// @notice The party whose clock runs, and its seconds left counting the time already used.
    function clockOf(uint256 gameId) external view returns (Party party, uint256 remaining);
    /// @notice Bonds of games in progress, and bonds credited but not withdrawn.
    function totals() external view returns (uint256 bonds, uint256 credits);
    /// @notice Bonds credited to `account`.
    function creditOf(address account) external view returns (uint256);
    /// @notice Number of games created (the last id).
    function gameCount() external view returns (uint256);
    /// @notice The market the game reports to.
    function market() external view returns (IDisputeHook);
    /// @notice The one-step verifier at the bottom.
    function verifier() external view returns (IOneStepVerifier);
    /// @notice Bond of a challenge, in wei.
    function bond() external view returns (uint256);
    /// @notice Degree k of a query: k - 1 leaves per reveal.
    function degree() external view returns (uint256);
    /// @notice Seconds each party has for all its moves in one game.
    function clock() external view returns (uint64);
}
