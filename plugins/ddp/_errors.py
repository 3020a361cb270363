"""The ddp plugin's error types (re-exported by :mod:`plugins.ddp.checkpoint`), and the words
for what went wrong."""

from __future__ import annotations

import pickle

from corelib import CorelibError

__all__ = ["CheckpointError", "RefusedPickleError", "describe", "refused_pickle_reason"]


class CheckpointError(CorelibError):
    """A checkpoint is missing, unreadable, untrusted, or does not fit the model it is loaded
    into."""


class RefusedPickleError(CheckpointError):
    """A checkpoint holds a pickle that would build what corelib never saves (code, most
    likely): refused before it runs, and never skipped in favour of an older checkpoint."""


def refused_pickle_reason(error: pickle.UnpicklingError) -> str:
    """What ``torch.load(weights_only=True)`` refused, without its advice to load unsafely."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((line.strip() for line in text.splitlines() if line.strip()), "unreadable")
    return line.split(". ", 1)[0].rstrip(".")  # not the advice on allow-listing that follows


def describe(error: BaseException) -> str:
    """``error`` in one line: its type and the first line of its message (300 characters)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
