"""``output.log``: everything a run prints, copied at the file-descriptor level.

File descriptors 1 and 2 are pointed at pipes while the run lasts; a thread per pipe copies
what arrives into the log and on to where the descriptor pointed before. Subprocesses inherit
the pipes, so torchrun's workers and any command the run starts are logged too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, Final

from corelib._errors import ConfigError

__all__ = ["OutputLog"]

_CHUNK: Final = 65536
_DRAIN_S: Final = 5.0  # how long stop() waits, in all, for output still in the pipes


class OutputLog:
    """Copies file descriptors 1 and 2 into ``path`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._log: BinaryIO | None = None
        self._saved: dict[int, int | None] = {}  # descriptor -> its copy (None: it was closed)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Open (truncate) the log and send descriptors 1 and 2 through it. :meth:`stop`
        undoes what was done, also when this raised half way."""
        _flush()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = _above_standard(os.open(self.path, flags, 0o666))
        except OSError as error:  # e.g. a symlink in its place (O_NOFOLLOW)
            raise ConfigError(f"could not write {self.path}: {error.strerror or error}") from None
        self._log = open(descriptor, "wb", buffering=0)  # noqa: SIM115 (closed by stop)
        for descriptor in (1, 2):
            reader, writer = map(_above_standard, os.pipe())
            try:
                saved: int | None = os.dup(descriptor)
            except OSError:  # the descriptor is closed (a daemon's): the log alone gets it
                saved = None
            self._saved[descriptor] = saved
            os.dup2(writer, descriptor)
            os.close(writer)
            thread = threading.Thread(
                target=self._copy,
                args=(reader, saved),
                name=f"corelib-output-log-{descriptor}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Put descriptors 1 and 2 back and wait (a little) for the copies to finish.

        A process the run left behind may still hold a pipe: its output keeps going to the
        log and the console from a daemon thread.
        """
        _flush()
        for descriptor, saved in self._saved.items():
            if saved is None:
                os.close(descriptor)  # closed again, as it was
            else:
                os.dup2(saved, descriptor)  # the pipe's last writer here closes with it
        deadline = time.monotonic() + _DRAIN_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            return  # their descriptors stay open for them
        for saved in self._saved.values():
            if saved is not None:
                os.close(saved)
        if self._log is not None:
            self._log.close()

    def _copy(self, reader: int, console: int | None) -> None:
        console_open = console is not None
        try:
            while chunk := os.read(reader, _CHUNK):
                with self._lock:
                    if self._log is not None and not self._log.closed:
                        self._log.write(chunk)
                if console_open and console is not None:
                    console_open = _write_all(console, chunk)
        finally:
            os.close(reader)


def _above_standard(descriptor: int) -> int:
    """``descriptor``, moved above 2 when it is one of the standard three (a closed stdout
    would otherwise be reused for a pipe's end)."""
    if descriptor > 2:
        return descriptor
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(descriptor)
    return moved


def _write_all(descriptor: int, data: bytes) -> bool:
    """Write all of ``data``; False once the descriptor's reader is gone."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(descriptor, view) :]
    except OSError:
        return False
    return True


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
