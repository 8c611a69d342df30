// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice Rejects every ETH transfer: stands for a recipient whose push payment would get stuck.
contract RejectingReceiver {
    /// @notice Forwards a call so this contract can act as a staker, bidder or submitter.
    function call(address target, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        revert("rejects ETH");
    }
}

/// @notice Re-enters `target` with `data` when it receives ETH, to prove the guards hold.
contract ReentrantReceiver {
    address public target;
    bytes public reentry;
    bool public reentered;
    bool public reentrySucceeded;

    function arm(address target_, bytes calldata reentry_) external {
        target = target_;
        reentry = reentry_;
    }

    function call(address to, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        if (!reentered && target != address(0)) {
            reentered = true;
            (reentrySucceeded,) = target.call(reentry);
        }
    }
}
