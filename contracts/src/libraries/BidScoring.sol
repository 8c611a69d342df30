// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title BidScoring
/// @notice The auction's pure rules: a solver's record bonus, the score of a bid (lower wins), the
///         tie-break, and the second-price amount the winner is paid.
/// @dev A bid's score is its price discounted by the solver's bonus: `price * 1e18 / (10_000 + bonus)`.
///      The bonus grows with credit (completed tasks since the last slash) and is capped, so a record can
///      beat a newcomer's price by at most a factor `1 + maxBonusBps / 10_000`, never without limit.
library BidScoring {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant SCALE = 1e18;

    /// @notice Bonus in basis points for `credit` completed tasks: `min(credit * perCreditBps, maxBonusBps)`.
    function bonusBps(uint256 credit, uint256 perCreditBps, uint256 maxBonusBps) internal pure returns (uint256) {
        // Saturate instead of multiplying a huge credit: credit only grows by one per completed task,
        // but the comparison keeps the function total for every input.
        if (perCreditBps == 0) return 0;
        if (credit >= maxBonusBps / perCreditBps + 1) return maxBonusBps;
        uint256 bonus = credit * perCreditBps;
        return bonus < maxBonusBps ? bonus : maxBonusBps;
    }

    /// @notice Score of a bid at `price` for a solver with `bonus` basis points; lower is better.
    function score(uint256 price, uint256 bonus) internal pure returns (uint256) {
        return price * SCALE / (BPS + bonus);
    }

    /// @notice Whether bid A (score, credit) beats the current best B. Lower score wins; on equal scores
    ///         the larger credit wins; on a full tie the earlier bid (B) keeps its place.
    function beats(uint256 scoreA, uint256 creditA, uint256 scoreB, uint256 creditB) internal pure returns (bool) {
        if (scoreA != scoreB) return scoreA < scoreB;
        return creditA > creditB;
    }

    /// @notice The amount a winner is paid: the highest price at which it would still have matched the
    ///         runner-up's score (`runnerUpScore`, or no runner-up when `hasRunnerUp` is false), never below
    ///         its own price and never above the payment. Without a runner-up the payment is the reserve.
    function agreedPrice(
        uint256 winnerPrice,
        uint256 winnerBonus,
        bool hasRunnerUp,
        uint256 runnerUpScore,
        uint256 payment
    ) internal pure returns (uint256) {
        if (!hasRunnerUp) return payment;
        uint256 matching = runnerUpScore * (BPS + winnerBonus) / SCALE;
        if (matching < winnerPrice) matching = winnerPrice;
        return matching < payment ? matching : payment;
    }

    /// @notice The sealed-bid commitment: `keccak256(abi.encode(taskId, bidder, price, salt))`.
    function commitment(uint256 taskId, address bidder, uint256 price, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(taskId, bidder, price, salt));
    }
}
