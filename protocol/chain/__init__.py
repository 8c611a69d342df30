"""The chain layer: compile, deploy, typed contract clients, revert decoding, a local anvil."""
