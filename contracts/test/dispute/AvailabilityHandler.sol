// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {AvailabilityWorld} from "./AvailabilityWorld.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {AvailabilityChallenge} from "../../src/AvailabilityChallenge.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {TaskMarket} from "../../src/TaskMarket.sol";
import {IAvailabilityChallenge} from "../../src/interfaces/IAvailabilityChallenge.sol";
import {IDisputeHook} from "../../src/interfaces/IDisputeHook.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";

/// @notice Random sequences of deliveries, demands, honest and garbage answers, claims, finalizations,
///         withdrawals and the passing of time over AvailabilityChallenge and a real market. Ghost sums
///         follow every wei that enters or leaves the availability contract; counters record every
///         outcome the rules forbid (a garbage answer accepted, an honest answer in time refused, a
///         claim before the deadline accepted, a task finalized or failed against the rules).
contract AvailabilityHandler is TestBase, AvailabilityWorld {
    uint256 internal constant BOND = 0.05 ether;
    uint64 internal constant WINDOW = 1 hours;
    uint256 internal constant STAKE = 1 ether;
    uint256 internal constant PAYMENT = 2 ether;
    uint256 internal constant MAX_TASKS = 6;

    StakeManager public immutable sm;
    TaskMarket public immutable market;
    AvailabilityChallenge public immutable ac;
    address public immutable solver;
    address[] public actors; // challengers and third-party answerers

    bytes32[] internal _roots; // the world's checkpoint state roots, computed once
    mapping(uint256 checkpoint => bytes32[]) internal _idsAt; // and each state's tensor ids
    uint256[] public tasks;
    uint256[] public challenges;

    uint256 public ghostIn; // bonds posted
    uint256 public ghostOut; // withdrawn
    uint256 public garbageAccepted;
    uint256 public honestRefused;
    uint256 public earlyClaims;
    uint256 public lateAnswers;
    uint256 public answered;
    uint256 public unanswered;
    uint256 public failedWithoutLoss; // a task failed with no unanswered demand on it

    mapping(uint256 taskId => uint256) public unansweredOn;

    constructor() {
        address owner = address(this);
        sm = new StakeManager(owner, 1 days, address(0xBEEF), 5_000);
        market = new TaskMarket(owner, IStakeManager(address(sm)), 200, 2_000, 1 ether, 30 days);
        sm.setMarket(address(market));
        sm.setSlasher(address(market), true);
        ac = new AvailabilityChallenge(IDisputeHook(address(market)), BOND, WINDOW, 10_000);
        market.setDisputeContract(address(ac), true);
        solver = makeAddr("solver");
        for (uint256 i; i < 3; ++i) {
            actors.push(address(uint160(0xC000 + i)));
        }
        _roots = _states();
        for (uint256 c; c < N_CP; ++c) {
            _idsAt[c] = _ids(c);
        }
        vm.fee(1 gwei);
    }

    // ─────────────────────────────────────────────── actions

    /// @notice A new task delivered by the solver with the world's result (at most MAX_TASKS).
    function deliver() external {
        if (tasks.length >= MAX_TASKS) return;
        vm.deal(solver, solver.balance + STAKE + 1 ether);
        vm.prank(solver);
        sm.deposit{value: STAKE}();
        address submitter = makeAddr("submitter");
        vm.deal(submitter, submitter.balance + PAYMENT);
        ITaskMarket.TaskParams memory p = ITaskMarket.TaskParams({
            specHash: keccak256("spec"),
            initialStateRoot: _roots[0],
            opGraphRoot: _opGraphRoot(),
            specURI: "spec",
            requiredStake: STAKE,
            bidBond: 0.01 ether,
            bidWindow: 1 hours,
            revealWindow: 1 hours,
            trainingWindow: 1 days,
            challengeWindow: 2 hours,
            steps: 1_000,
            checkpointInterval: 100,
            minCredit: 0
        });
        vm.prank(submitter);
        uint256 id = market.postTask{value: PAYMENT}(p);
        bytes32 salt = keccak256(abi.encode(id));
        bytes32 commitment = market.bidCommitment(id, solver, 1 ether, salt); // before the prank: a call
        vm.prank(solver);
        market.commitBid{value: 0.01 ether}(id, commitment);
        vm.warp(market.getTask(id).commitDeadline);
        vm.prank(solver);
        market.revealBid(id, 1 ether, salt);
        vm.warp(market.getTask(id).revealDeadline);
        market.closeAuction(id);
        vm.prank(solver);
        market.submitResult(id, MerkleBuilder.root(_roots), 1_000, _roots[N_CP - 1], "http://withheld");
        tasks.push(id);
    }

    /// @notice A demand on a random task, by a random actor, for a random range.
    function demand(uint256 seed) external {
        if (tasks.length == 0) return;
        uint256 id = tasks[seed % tasks.length];
        ITaskMarket.Task memory t = market.getTask(id);
        if (t.status != IDisputeHook.TaskStatus.ResultSubmitted || block.timestamp >= t.challengeDeadline) return;
        address who = actors[(seed >> 8) % actors.length];
        vm.deal(who, who.balance + BOND);
        vm.prank(who);
        uint256 cid = ac.challenge{value: BOND}(
            id, (seed >> 16) % N_CP, (seed >> 24) % STATE_SIZE, (seed >> 32) % 4, 1 + (seed >> 40) % 32, _layout()
        );
        ghostIn += BOND;
        challenges.push(cid);
    }

    /// @notice A garbage answer (one bit of one chunk flipped, or another checkpoint's data), then
    ///         the honest one, to a random open demand, by the solver or a third party.
    function answer(uint256 seed) external {
        (bool found, uint256 cid) = _open(seed);
        if (!found) return;
        IAvailabilityChallenge.Challenge memory c = ac.getChallenge(cid);
        IAvailabilityChallenge.ChunkAnswer memory honest =
            _answerFrom(_roots, _idsAt[c.checkpoint], c.checkpoint, c.tensor, c.firstChunk, c.count);
        IAvailabilityChallenge.ChunkAnswer memory bad;
        if (honest.chunks.length > 0 && seed % 2 == 0) {
            bad = _answerFrom(_roots, _idsAt[c.checkpoint], c.checkpoint, c.tensor, c.firstChunk, c.count);
            bytes memory chunk = bad.chunks[0];
            chunk[(seed >> 8) % chunk.length] ^= 0x01;
        } else {
            uint256 other = (c.checkpoint + 1) % N_CP; // another checkpoint's data
            bad = _answerFrom(_roots, _idsAt[other], other, c.tensor, c.firstChunk, c.count);
        }
        address who = seed % 3 == 0 ? actors[(seed >> 16) % actors.length] : solver;
        vm.prank(who);
        try ac.answer(cid, bad) {
            ++garbageAccepted;
        } catch {}
        vm.prank(who);
        try ac.answer(cid, honest) {
            if (block.timestamp >= c.deadline) ++lateAnswers;
            ++answered;
        } catch {
            if (block.timestamp < c.deadline) ++honestRefused;
        }
    }

    /// @notice A claim on a random open demand (accepted only from its deadline on).
    function claim(uint256 seed) external {
        (bool found, uint256 cid) = _open(seed);
        if (!found) return;
        IAvailabilityChallenge.Challenge memory c = ac.getChallenge(cid);
        try ac.claimUnanswered(cid) {
            if (block.timestamp < c.deadline) ++earlyClaims;
            ++unanswered;
            ++unansweredOn[c.taskId];
        } catch {}
    }

    /// @notice Anyone finalizes a random task (accepted only after its window with no demand open).
    function finalize(uint256 seed) external {
        if (tasks.length == 0) return;
        try market.finalize(tasks[seed % tasks.length]) {} catch {}
    }

    function withdraw(uint256 seed) external {
        address who = seed % 4 == 0 ? solver : actors[seed % actors.length];
        uint256 amount = ac.creditOf(who);
        if (amount == 0) return;
        vm.prank(who);
        ac.withdraw();
        ghostOut += amount;
    }

    function warp(uint256 seed) external {
        vm.warp(block.timestamp + seed % 2 hours);
    }

    // ─────────────────────────────────────────────── views for the invariants

    function _open(uint256 seed) internal view returns (bool, uint256) {
        uint256 n = challenges.length;
        for (uint256 k; k < n; ++k) {
            uint256 cid = challenges[(seed % n + k) % n];
            if (ac.getChallenge(cid).status == IAvailabilityChallenge.Status.Open) return (true, cid);
        }
        return (false, 0);
    }

    /// @notice Bonds of the open demands, credits of every party: what the contract must hold.
    function owed() external view returns (uint256 bonds, uint256 credits) {
        for (uint256 k; k < challenges.length; ++k) {
            IAvailabilityChallenge.Challenge memory c = ac.getChallenge(challenges[k]);
            if (c.status == IAvailabilityChallenge.Status.Open) bonds += c.bond;
        }
        credits = ac.creditOf(solver);
        for (uint256 i; i < actors.length; ++i) {
            credits += ac.creditOf(actors[i]);
        }
    }

    /// @notice Open demands per task equal the market's open disputes of the task; a task failed only
    ///         through an unanswered demand, and completed only with none open.
    function tasksConsistent() external view returns (bool) {
        for (uint256 i; i < tasks.length; ++i) {
            uint256 open;
            for (uint256 k; k < challenges.length; ++k) {
                IAvailabilityChallenge.Challenge memory c = ac.getChallenge(challenges[k]);
                if (c.taskId == tasks[i] && c.status == IAvailabilityChallenge.Status.Open) ++open;
            }
            ITaskMarket.Task memory t = market.getTask(tasks[i]);
            if (t.openDisputes != open) return false;
            if (t.status == IDisputeHook.TaskStatus.Failed && unansweredOn[tasks[i]] == 0) return false;
            if (t.status == IDisputeHook.TaskStatus.ResultSubmitted && unansweredOn[tasks[i]] > 0) return false;
        }
        return true;
    }

    function counts() external view returns (uint256, uint256, uint256) {
        return (challenges.length, answered, unanswered);
    }
}
