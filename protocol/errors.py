"""The root of every exception verigrad raises on purpose.

Each layer subclasses it (``ChainError`` for the chain layer, ``SpecError`` for task specs, ...), so a
caller can catch ``VerigradError`` to handle anything the protocol itself rejected, and every message
says what was wrong and what to do about it.
"""


class VerigradError(Exception):
    """Base class of all verigrad errors."""
