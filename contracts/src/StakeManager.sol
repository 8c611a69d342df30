// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";

/// @title StakeManager
/// @notice Solver stakes: free, locked per task, pending withdrawal. See IStakeManager.
contract StakeManager is IStakeManager, Ownable, ReentrancyGuard {
    uint256 internal constant BPS = 10_000;

    /// @inheritdoc IStakeManager
    uint64 public immutable unbondingDelay;
    /// @inheritdoc IStakeManager
    uint16 public immutable beneficiaryBps;
    /// @inheritdoc IStakeManager
    address public immutable sink;
    /// @inheritdoc IStakeManager
    address public market;

    struct Pending {
        uint192 amount;
        uint64 readyAt;
    }

    mapping(address account => uint256) internal _free;
    mapping(address account => uint256) internal _lockedTotal;
    mapping(address account => mapping(uint256 taskId => uint256)) internal _locked;
    mapping(address account => Pending) internal _pending;
    mapping(address account => uint256) internal _proceeds;
    mapping(address account => bool) internal _slashers;

    uint256 internal _totalFree;
    uint256 internal _totalLocked;
    uint256 internal _totalPending;
    uint256 internal _totalProceeds;
    /// @inheritdoc IStakeManager
    uint256 public sinkBalance;

    /// @param owner_ governance: sets the market once and authorises slashers.
    /// @param unbondingDelay_ seconds between a withdrawal request and the withdrawal.
    /// @param sink_ receives the non-beneficiary share of every slash (a burn address or a pool).
    /// @param beneficiaryBps_ share of every slash credited to its beneficiary, in basis points.
    constructor(address owner_, uint64 unbondingDelay_, address sink_, uint16 beneficiaryBps_) Ownable(owner_) {
        if (sink_ == address(0)) revert ZeroAddress(1);
        if (beneficiaryBps_ > BPS) revert InvalidBps(beneficiaryBps_);
        unbondingDelay = unbondingDelay_;
        sink = sink_;
        beneficiaryBps = beneficiaryBps_;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    // ─────────────────────────────────────────────────────────────── stakers

    /// @inheritdoc IStakeManager
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        uint256 free = _free[msg.sender] + msg.value;
        _free[msg.sender] = free;
        _totalFree += msg.value;
        emit StakeDeposited(msg.sender, msg.value, free);
    }

    /// @inheritdoc IStakeManager
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 free = _free[msg.sender];
        if (amount > free) revert InsufficientFreeStake(msg.sender, amount, free);
        // Safe: amount <= free, checked above.
        unchecked {
            _free[msg.sender] = free - amount;
            _totalFree -= amount;
        }
        Pending storage p = _pending[msg.sender];
        // Every wei in pending came from a deposit, so the sum fits in 192 bits (ETH supply < 2^90).
        uint256 pending = uint256(p.amount) + amount;
        uint64 readyAt = uint64(block.timestamp) + unbondingDelay;
        // forge-lint: disable-next-line(unsafe-typecast)
        p.amount = uint192(pending);
        p.readyAt = readyAt;
        _totalPending += amount;
        emit WithdrawalRequested(msg.sender, amount, pending, readyAt);
    }

    /// @inheritdoc IStakeManager
    function cancelWithdrawal() external {
        uint256 amount = _pending[msg.sender].amount;
        // Zero means "no pending withdrawal": the value is the caller's own ledger entry, not a balance
        // anyone else can push to a chosen value.
        // slither-disable-next-line incorrect-equality
        if (amount == 0) revert NoPendingWithdrawal(msg.sender);
        delete _pending[msg.sender];
        _totalPending -= amount;
        _free[msg.sender] += amount;
        _totalFree += amount;
        emit WithdrawalCancelled(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function withdraw() external nonReentrant {
        Pending memory p = _pending[msg.sender];
        if (p.amount == 0) revert NoPendingWithdrawal(msg.sender);
        if (block.timestamp < p.readyAt) revert WithdrawalNotReady(msg.sender, p.readyAt, block.timestamp);
        delete _pending[msg.sender];
        _totalPending -= p.amount;
        emit StakeWithdrawn(msg.sender, p.amount);
        (bool ok,) = msg.sender.call{value: p.amount}("");
        if (!ok) revert TransferFailed(msg.sender, p.amount);
    }

    /// @inheritdoc IStakeManager
    function claimProceeds() external nonReentrant {
        uint256 amount = _proceeds[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _proceeds[msg.sender] = 0;
        _totalProceeds -= amount;
        emit ProceedsClaimed(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function flushSink() external nonReentrant {
        uint256 amount = sinkBalance;
        if (amount == 0) revert NothingToClaim(sink);
        sinkBalance = 0;
        emit SinkFlushed(sink, amount);
        // A sink that rejects ETH leaves its share accounted here; nothing else is blocked by it.
        // The recipient is the immutable sink fixed at deployment, not a caller's choice.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = sink.call{value: amount}("");
        if (!ok) revert TransferFailed(sink, amount);
    }

    // ─────────────────────────────────────────────────────────────── market and slashers

    /// @inheritdoc IStakeManager
    function lock(address account, uint256 taskId, uint256 amount) external onlyMarket {
        if (amount == 0) revert ZeroAmount();
        uint256 already = _locked[account][taskId];
        if (already != 0) revert AlreadyLocked(account, taskId, already);
        uint256 free = _free[account];
        if (amount > free) revert InsufficientFreeStake(account, amount, free);
        // Safe: amount <= free, checked above.
        unchecked {
            _free[account] = free - amount;
            _totalFree -= amount;
        }
        _locked[account][taskId] = amount;
        _lockedTotal[account] += amount;
        _totalLocked += amount;
        emit StakeLocked(account, taskId, amount);
    }

    /// @inheritdoc IStakeManager
    function unlock(address account, uint256 taskId) external onlyMarket returns (uint256 amount) {
        amount = _locked[account][taskId];
        if (amount == 0) revert NothingLocked(account, taskId);
        _locked[account][taskId] = 0;
        _lockedTotal[account] -= amount;
        _totalLocked -= amount;
        _free[account] += amount;
        _totalFree += amount;
        emit StakeUnlocked(account, taskId, amount);
    }

    /// @inheritdoc IStakeManager
    function slash(address account, uint256 taskId, uint256 amount, address beneficiary)
        external
        returns (uint256 toBeneficiary, uint256 toSink)
    {
        if (msg.sender != market && !_slashers[msg.sender]) revert NotSlasher(msg.sender);
        if (amount == 0) revert ZeroAmount();
        if (beneficiary == address(0)) revert ZeroAddress(4);
        uint256 locked = _locked[account][taskId];
        if (amount > locked) revert InsufficientLockedStake(account, taskId, amount, locked);
        // Safe: amount <= locked <= _lockedTotal[account] <= _totalLocked.
        unchecked {
            _locked[account][taskId] = locked - amount;
            _lockedTotal[account] -= amount;
            _totalLocked -= amount;
        }
        toBeneficiary = amount * beneficiaryBps / BPS;
        // Safe: toBeneficiary <= amount because beneficiaryBps <= BPS.
        unchecked {
            toSink = amount - toBeneficiary;
        }
        _proceeds[beneficiary] += toBeneficiary;
        _totalProceeds += toBeneficiary;
        sinkBalance += toSink;
        emit StakeSlashed(account, taskId, msg.sender, amount, beneficiary, toBeneficiary, toSink);
    }

    // ─────────────────────────────────────────────────────────────── owner

    /// @inheritdoc IStakeManager
    function setMarket(address market_) external onlyOwner {
        if (market_ == address(0)) revert ZeroAddress(2);
        if (market != address(0)) revert MarketAlreadySet(market);
        market = market_;
        emit MarketSet(market_);
    }

    /// @inheritdoc IStakeManager
    function setSlasher(address slasher, bool allowed) external onlyOwner {
        if (slasher == address(0)) revert ZeroAddress(3);
        _slashers[slasher] = allowed;
        emit SlasherSet(slasher, allowed);
    }

    // ─────────────────────────────────────────────────────────────── views

    /// @inheritdoc IStakeManager
    function freeStakeOf(address account) external view returns (uint256) {
        return _free[account];
    }

    /// @inheritdoc IStakeManager
    function lockedStakeOf(address account) external view returns (uint256) {
        return _lockedTotal[account];
    }

    /// @inheritdoc IStakeManager
    function lockedFor(address account, uint256 taskId) external view returns (uint256) {
        return _locked[account][taskId];
    }

    /// @inheritdoc IStakeManager
    function pendingWithdrawalOf(address account) external view returns (uint256 amount, uint256 readyAt) {
        Pending memory p = _pending[account];
        return (p.amount, p.readyAt);
    }

    /// @inheritdoc IStakeManager
    function proceedsOf(address account) external view returns (uint256) {
        return _proceeds[account];
    }

    /// @inheritdoc IStakeManager
    function totals()
        external
        view
        returns (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sink_)
    {
        return (_totalFree, _totalLocked, _totalPending, _totalProceeds, sinkBalance);
    }

    /// @inheritdoc IStakeManager
    function isSlasher(address account) external view returns (bool) {
        return account == market || _slashers[account];
    }
}
