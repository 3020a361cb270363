"""The ddp plugin's one error type (re-exported by :mod:`plugins.ddp.checkpoint`)."""

from __future__ import annotations

from corelib import CorelibError

__all__ = ["CheckpointError"]


class CheckpointError(CorelibError):
    """A checkpoint is missing, unreadable, untrusted, or does not fit the model it is loaded
    into."""
