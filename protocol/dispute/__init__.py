"""The dispute game's off-chain side: the op graph commitment, level-4 leaves and one-step proofs.

``graph``: the op graph of a training step and its root (``opGraphRoot`` of a task).
``onestep``: the program states of one output element (level 4's leaves) and the proofs the
``ScalarStepVerifier`` contract checks.
"""
