"""Ctrl-C and SIGTERM: the command stops with one line and exit code ``128 + signum``."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "ignore_further", "restore", "stop_on_sigterm"]


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: the command stops, exits ``128 + signum`` with one line.

    A ``BaseException`` (as ``KeyboardInterrupt``), so user code's ``except Exception`` does
    not swallow it.
    """

    def __init__(self, signum: int, *, workers: bool = False) -> None:
        self.signum = signum
        self.workers = workers
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: ``128 + signum``."""
        return 128 + self.signum

    def __str__(self) -> str:
        stopped = "; workers stopped" if self.workers else ""
        return f"interrupted ({signal.Signals(self.signum).name}){stopped}"


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def stop_on_sigterm() -> dict[int, Any]:
    """Make SIGTERM stop the command as Ctrl-C does; the handlers :func:`restore` puts back."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal handlers can only be set from the main thread
    handlers: dict[int, Any] = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if any(handler is None for handler in handlers.values()):  # set outside Python: left alone
        return {}
    signal.signal(signal.SIGTERM, _raise_interrupted)
    return handlers


def ignore_further(handlers: dict[int, Any]) -> None:
    """While the command reports a signal, a second one must not cut its line short."""
    for signum in handlers:
        signal.signal(signum, signal.SIG_IGN)


def restore(handlers: dict[int, Any]) -> None:
    """Put back the handlers :func:`stop_on_sigterm` replaced."""
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
