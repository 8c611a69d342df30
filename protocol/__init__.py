"""verigrad: verifiable ML training with an on-chain bisection game down to one float32 operation."""

__version__ = "0.1.0"
