"""Errors of the commitment layer.

Every failure to build or check a commitment raises a subclass of ``CommitError`` (itself a
``VerigradError``), so a daemon can tell "the other party's proof is wrong" (``ProofError``) from "my
own artifact store is damaged" (``IntegrityError``) without parsing messages.
"""

from __future__ import annotations

from protocol.errors import VerigradError


class CommitError(VerigradError):
    """A commitment could not be built: unsupported dtype, bad shape, out-of-range index, ..."""


class ProofError(CommitError):
    """A Merkle proof (inclusion, consistency, element) does not verify against its claimed root."""


class StoreError(CommitError):
    """The artifact store could not serve or accept an artifact."""


class ArtifactNotFound(StoreError):
    """No artifact with this digest is in the store."""


class IntegrityError(StoreError):
    """An artifact read back from the store does not hash to the digest it is stored under."""
