// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {TaskMarket} from "../../src/TaskMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {ITaskMarket} from "../../src/interfaces/ITaskMarket.sol";

/// @notice Deployed StakeManager + TaskMarket with named actors and helpers that walk a task through
///         its stages, shared by the market's unit, fuzz and dispute tests.
abstract contract MarketFixture is TestBase {
    uint64 internal constant UNBONDING = 7 days;
    uint16 internal constant BENEFICIARY_BPS = 5_000;
    uint16 internal constant CREDIT_BONUS_BPS = 500;
    uint16 internal constant MAX_BONUS_BPS = 2_000;
    uint256 internal constant CREDIT_MIN_STAKE = 1 ether;
    uint64 internal constant DISPUTE_TIMEOUT = 30 days;

    uint256 internal constant PAYMENT = 10 ether;
    uint256 internal constant STAKE = 5 ether;
    uint256 internal constant BOND = 0.1 ether;
    uint64 internal constant BID_WINDOW = 1 hours;
    uint64 internal constant REVEAL_WINDOW = 1 hours;
    uint64 internal constant TRAINING_WINDOW = 1 days;
    uint64 internal constant CHALLENGE_WINDOW = 2 days;
    uint64 internal constant STEPS = 1_000;
    uint64 internal constant INTERVAL = 100;

    bytes32 internal constant SPEC = keccak256("spec");
    bytes32 internal constant TRACE = keccak256("trace");
    bytes32 internal constant FINAL = keccak256("final");

    StakeManager internal sm;
    TaskMarket internal market;

    address internal owner;
    address internal sink;
    address internal submitter;
    address internal alice;
    address internal bob;
    address internal carol;
    address internal challenger;
    address internal game;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        owner = makeAddr("owner");
        sink = makeAddr("sink");
        submitter = makeAddr("submitter");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");
        challenger = makeAddr("challenger");
        game = makeAddr("game");

        sm = new StakeManager(owner, UNBONDING, sink, BENEFICIARY_BPS);
        market = new TaskMarket(
            owner, IStakeManager(address(sm)), CREDIT_BONUS_BPS, MAX_BONUS_BPS, CREDIT_MIN_STAKE, DISPUTE_TIMEOUT
        );
        vm.startPrank(owner);
        sm.setMarket(address(market));
        market.setDisputeContract(game, true);
        vm.stopPrank();

        vm.deal(submitter, 1_000 ether);
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
        vm.deal(carol, 100 ether);
    }

    // ─────────────────────────────────────────────── helpers

    function _params() internal pure returns (ITaskMarket.TaskParams memory p) {
        p = ITaskMarket.TaskParams({
            specHash: SPEC,
            initialStateRoot: keccak256("S_0"),
            opGraphRoot: keccak256("ops"),
            specURI: "ipfs://spec",
            requiredStake: STAKE,
            bidBond: BOND,
            bidWindow: BID_WINDOW,
            revealWindow: REVEAL_WINDOW,
            trainingWindow: TRAINING_WINDOW,
            challengeWindow: CHALLENGE_WINDOW,
            steps: STEPS,
            checkpointInterval: INTERVAL,
            minCredit: 0
        });
    }

    function _post() internal returns (uint256) {
        vm.prank(submitter);
        return market.postTask{value: PAYMENT}(_params());
    }

    function _stake(address who, uint256 amount) internal {
        vm.prank(who);
        sm.deposit{value: amount}();
    }

    function _salt(address who) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", who));
    }

    function _commit(uint256 taskId, address who, uint256 price) internal {
        bytes32 c = market.bidCommitment(taskId, who, price, _salt(who));
        vm.prank(who);
        market.commitBid{value: BOND}(taskId, c);
    }

    function _reveal(uint256 taskId, address who, uint256 price) internal {
        vm.prank(who);
        market.revealBid(taskId, price, _salt(who));
    }

    function _toReveal(uint256 taskId) internal {
        vm.warp(market.getTask(taskId).commitDeadline);
    }

    function _toClose(uint256 taskId) internal {
        vm.warp(market.getTask(taskId).revealDeadline);
    }

    /// @dev Posts a task that `who` wins alone at `price` (paid the payment: no runner-up).
    function _assigned(address who, uint256 price) internal returns (uint256 taskId) {
        return _assignedWith(who, price, _params());
    }

    /// @dev A task of parameters `p` posted by the submitter and won by `who` at `price` (staked if needed).
    function _assignedWith(address who, uint256 price, ITaskMarket.TaskParams memory p)
        internal
        returns (uint256 taskId)
    {
        if (sm.freeStakeOf(who) < STAKE) _stake(who, STAKE);
        vm.prank(submitter);
        taskId = market.postTask{value: PAYMENT}(p);
        _commit(taskId, who, price);
        _toReveal(taskId);
        _reveal(taskId, who, price);
        _toClose(taskId);
        market.closeAuction(taskId);
    }

    function _delivered(address who, uint256 price) internal returns (uint256 taskId) {
        taskId = _assigned(who, price);
        vm.prank(who);
        market.submitResult(taskId, TRACE, STEPS, FINAL, "ipfs://artifact");
    }

    function _completed(address who, uint256 price) internal returns (uint256 taskId) {
        taskId = _delivered(who, price);
        vm.warp(market.getTask(taskId).challengeDeadline);
        market.finalize(taskId);
    }

    /// @dev ETH held by the market equals what it accounts for.
    function _assertMarketSolvent() internal view {
        (uint256 escrow, uint256 bonds, uint256 payable_) = market.totals();
        assertEq(address(market).balance, escrow + bonds + payable_, "market solvency");
    }

    /// @dev ETH held by the stake manager equals what it accounts for.
    function _assertStakeSolvent() internal view {
        (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sinkBal) = sm.totals();
        assertEq(address(sm).balance, free + locked + pending + proceeds + sinkBal, "stake solvency");
    }
}
