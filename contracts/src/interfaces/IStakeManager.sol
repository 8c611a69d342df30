// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IStakeManager
/// @notice Holds solvers' ETH stake in three buckets: free (usable to bid and lock), locked per task
///         (at risk while the task runs) and pending withdrawal (leaving after an unbonding delay).
///         Only the market locks and unlocks; only the market and slashers authorised by the owner slash.
///         Slash proceeds are split between a beneficiary and a sink (burn or pool) by a basis-point
///         parameter and paid out by pull, so a reverting recipient never blocks a slash.
/// @dev Solvency invariant: `address(this).balance == totalFree + totalLocked + totalPending
///      + totalProceeds + sinkBalance` (extra ETH forced in by selfdestruct can only make the left side larger).
interface IStakeManager {
    // ─────────────────────────────────────────────────────────────── errors

    /// @notice An amount of zero was given where a positive one is needed.
    error ZeroAmount();
    /// @notice The zero address was given for `what` (0 = owner, 1 = sink, 2 = market, 3 = slasher, 4 = beneficiary).
    error ZeroAddress(uint8 what);
    /// @notice The beneficiary share exceeds 10,000 basis points.
    error InvalidBps(uint256 bps);
    /// @notice `account` has `free` free stake but `requested` was needed.
    error InsufficientFreeStake(address account, uint256 requested, uint256 free);
    /// @notice `account` has `locked` stake locked for `taskId` but `requested` was needed.
    error InsufficientLockedStake(address account, uint256 taskId, uint256 requested, uint256 locked);
    /// @notice `account` already has stake locked for `taskId`; a task locks once.
    error AlreadyLocked(address account, uint256 taskId, uint256 locked);
    /// @notice `account` has nothing locked for `taskId`.
    error NothingLocked(address account, uint256 taskId);
    /// @notice The caller is not the market.
    error NotMarket(address caller);
    /// @notice The caller is neither the market nor an authorised slasher.
    error NotSlasher(address caller);
    /// @notice The market was already set to `market`; it is set once.
    error MarketAlreadySet(address market);
    /// @notice `account` has no pending withdrawal.
    error NoPendingWithdrawal(address account);
    /// @notice The pending withdrawal of `account` unlocks at `readyAt`; it is `nowTs`.
    error WithdrawalNotReady(address account, uint256 readyAt, uint256 nowTs);
    /// @notice `account` has no slash proceeds to claim.
    error NothingToClaim(address account);
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    // ─────────────────────────────────────────────────────────────── events

    /// @notice `account` deposited `amount`; its free stake is now `free`.
    event StakeDeposited(address indexed account, uint256 amount, uint256 free);
    /// @notice `account` moved `amount` from free to pending; `pending` leaves at `readyAt`.
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 pending, uint256 readyAt);
    /// @notice `account` cancelled its pending withdrawal of `amount`, which is free again.
    event WithdrawalCancelled(address indexed account, uint256 amount);
    /// @notice `account` withdrew `amount` of pending stake.
    event StakeWithdrawn(address indexed account, uint256 amount);
    /// @notice `amount` of `account`'s free stake was locked for `taskId`.
    event StakeLocked(address indexed account, uint256 indexed taskId, uint256 amount);
    /// @notice `amount` of `account`'s stake locked for `taskId` was released to free stake.
    event StakeUnlocked(address indexed account, uint256 indexed taskId, uint256 amount);
    /// @notice `amount` of `account`'s stake locked for `taskId` was slashed by `slasher`:
    ///         `toBeneficiary` credited to `beneficiary`, `toSink` to the sink.
    event StakeSlashed(
        address indexed account,
        uint256 indexed taskId,
        address indexed slasher,
        uint256 amount,
        address beneficiary,
        uint256 toBeneficiary,
        uint256 toSink
    );
    /// @notice `account` claimed `amount` of slash proceeds.
    event ProceedsClaimed(address indexed account, uint256 amount);
    /// @notice `amount` of the sink's share was sent to `sink`.
    event SinkFlushed(address indexed sink, uint256 amount);
    /// @notice The market (the only locker) was set to `market`.
    event MarketSet(address indexed market);
    /// @notice `slasher` was authorised (`allowed`) or deauthorised to slash.
    event SlasherSet(address indexed slasher, bool allowed);

    // ─────────────────────────────────────────────────────────────── stakers

    /// @notice Adds `msg.value` to the caller's free stake.
    function deposit() external payable;

    /// @notice Moves `amount` of free stake to the pending withdrawal; the whole pending amount
    ///         becomes withdrawable `unbondingDelay` seconds after this call (a new request restarts the delay).
    function requestWithdrawal(uint256 amount) external;

    /// @notice Moves the whole pending withdrawal back to free stake.
    function cancelWithdrawal() external;

    /// @notice Sends the caller its pending withdrawal once the unbonding delay has passed.
    function withdraw() external;

    /// @notice Sends the caller its slash proceeds (as a beneficiary).
    function claimProceeds() external;

    /// @notice Sends the sink's accumulated share to the sink; anyone may call.
    function flushSink() external;

    // ─────────────────────────────────────────────────────────────── market and slashers

    /// @notice Locks `amount` of `account`'s free stake for `taskId`. Only the market.
    function lock(address account, uint256 taskId, uint256 amount) external;

    /// @notice Releases everything `account` has locked for `taskId` back to free stake. Only the market.
    /// @return amount the stake released.
    function unlock(address account, uint256 taskId) external returns (uint256 amount);

    /// @notice Slashes `amount` of the stake `account` has locked for `taskId`; `beneficiaryBps` of it is
    ///         credited to `beneficiary`, the rest to the sink. Only the market or an authorised slasher.
    /// @return toBeneficiary the beneficiary's share.
    /// @return toSink the sink's share.
    function slash(address account, uint256 taskId, uint256 amount, address beneficiary)
        external
        returns (uint256 toBeneficiary, uint256 toSink);

    // ─────────────────────────────────────────────────────────────── owner

    /// @notice Sets the market (`market_`) once. Only the owner.
    function setMarket(address market_) external;

    /// @notice Authorises or deauthorises `slasher`. Only the owner.
    function setSlasher(address slasher, bool allowed) external;

    // ─────────────────────────────────────────────────────────────── views

    /// @notice Free stake of `account`.
    function freeStakeOf(address account) external view returns (uint256);
    /// @notice Total stake `account` has locked over all tasks.
    function lockedStakeOf(address account) external view returns (uint256);
    /// @notice Stake `account` has locked for `taskId`.
    function lockedFor(address account, uint256 taskId) external view returns (uint256);
    /// @notice Pending withdrawal of `account` and the time it becomes withdrawable.
    function pendingWithdrawalOf(address account) external view returns (uint256 amount, uint256 readyAt);
    /// @notice Slash proceeds `account` can claim.
    function proceedsOf(address account) external view returns (uint256);
    /// @notice The sink's share not yet flushed.
    function sinkBalance() external view returns (uint256);
    /// @notice Sums of every bucket (the solvency invariant's right side).
    function totals()
        external
        view
        returns (uint256 free, uint256 locked, uint256 pending, uint256 proceeds, uint256 sinkShare);
    /// @notice The market, the only locker.
    function market() external view returns (address);
    /// @notice Whether `account` may slash (the market always may).
    function isSlasher(address account) external view returns (bool);
    /// @notice Where the non-beneficiary share of a slash goes (a burn address or a pool).
    function sink() external view returns (address);
    /// @notice Seconds between a withdrawal request and the withdrawal.
    function unbondingDelay() external view returns (uint64);
    /// @notice Share of every slash credited to its beneficiary, in basis points.
    function beneficiaryBps() external view returns (uint16);
}
