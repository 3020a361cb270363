"""SIGTERM and SIGINT (Ctrl-C) as requests to stop at the next step boundary, after saving a
checkpoint; the process then exits with ``128 + signal`` (143 or 130)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = ["SIGINT_EXIT_CODE", "SIGTERM_EXIT_CODE", "StopRequest", "stop_on_signals"]

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
"""143: how a worker exits after stopping for SIGTERM (what torchrun forwards)."""
SIGINT_EXIT_CODE = 128 + signal.SIGINT
"""130: how a worker exits after stopping for SIGINT (Ctrl-C)."""
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_ECHO_S = 2.0
"""A second signal this soon after the first is the same request: Ctrl-C reaches every process
of the terminal's group, and torchrun then forwards the signal it got to its workers."""


class StopRequest:
    """Set when SIGTERM or SIGINT arrived; the trainer checks it (agreed over ranks) between
    steps."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._at = 0.0

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        """``128 + signal`` (SIGTERM's 143 when this rank got none but another did)."""
        return 128 + (self.signal or signal.SIGTERM)

    @property
    def name(self) -> str:
        """The signal's name (``SIGTERM`` when this rank got none but another did)."""
        return (self.signal or signal.SIGTERM).name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """While active, a first SIGTERM or SIGINT sets the request; another one more than a
    moment later exits at once (with the first one's code), without a checkpoint."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be installed from the main thread
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if request.signal is None:
            request.signal, request._at = signal.Signals(signum), now
        elif now - request._at > _ECHO_S:
            raise SystemExit(request.exit_code)

    previous = {signum: signal.signal(signum, handle) for signum in _SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
