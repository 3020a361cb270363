"""SIGTERM as a request to stop at the next step boundary (after saving a checkpoint)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["SIGTERM_EXIT_CODE", "StopRequest", "stop_on_sigterm"]

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


class StopRequest:
    """Set when SIGTERM arrived; the trainer checks it (agreed over ranks) between steps."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[StopRequest]:
    """While active, a first SIGTERM sets ``requested``; a second one exits at once."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be installed from the main thread
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.requested:
            raise SystemExit(SIGTERM_EXIT_CODE)
        request.requested = True

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)
