"""A sweep's folder: ``sweep.json`` (what the sweep is), ``sweep.jsonl`` (what happened) and
the job records ``<n>/``.

``sweep.jsonl`` holds one JSON object per line, each with ``event`` and ``time`` (ISO UTC):
``start`` (``resume``, ``pid``), ``launch`` (``job``, ``overrides``: the job is handed to the
launcher), ``job`` (``job``, ``overrides``, ``status``, ``exit_code``, ``wall_s``, ``result``,
``error``: the job ended, or was stopped) and ``end`` (``status``, ``jobs``, ``failed``). Each
line is appended, flushed and fsync'ed (a batch's ``launch`` lines together, before any of
its jobs starts), so the file tells the state of a sweep that was interrupted or killed: a job
launched with no ``job`` line after it was running then.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from corelib._errors import ConfigError, quote
from corelib.runs._record import write_atomically

__all__ = [
    "SWEEP_FILE",
    "SWEEP_LOG",
    "SweepLog",
    "discard_sweep_folder",
    "ended_jobs",
    "open_sweep_folder",
    "read_sweep_log",
    "set_aside",
]

SWEEP_FILE: Final = "sweep.json"
"""What the sweep is: config, overrides, flags, space, sweeper, launcher and their options."""
SWEEP_LOG: Final = "sweep.jsonl"
"""What happened: one JSON line per event (``start``, ``launch``, ``job``, ``end``)."""

IDENTITY: Final = ("config", "overrides", "flags", "sweeper", "sweeper_options")
"""What ``--resume`` requires to be unchanged (the launcher, timeout and fail-fast may change)."""


def open_sweep_folder(
    run_dir: str | os.PathLike[str] | None, header: Mapping[str, Any], *, resume: bool
) -> Path:
    """The sweep's folder, created with its ``sweep.json`` (or, on ``resume``, checked).

    Without ``run_dir`` it is ``multirun/<config stem>/<timestamp>`` (made unique). A new
    sweep needs an empty or missing folder; a resumed one the same ``IDENTITY`` as before.
    """
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs --run-dir DIR, the folder of the sweep to resume")
        folder = Path(run_dir)
        _check_unchanged(folder, header)
        return folder
    if run_dir is None:
        folder = _new_default_folder(str(header["config"]))
    else:
        folder = Path(run_dir)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ConfigError(
                f"--run-dir {quote(str(folder))}: not an empty folder; pass --resume to "
                "continue the sweep in it, or choose another folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / SWEEP_FILE, json.dumps(dict(header), indent=2, default=str) + "\n")
    return folder


def discard_sweep_folder(folder: Path) -> None:
    """Remove the files a sweep that launched nothing wrote, and its folder if that is empty."""
    for name in (SWEEP_FILE, SWEEP_LOG):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def read_sweep_log(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of ``folder/sweep.jsonl`` in order (a torn last line is left out)."""
    events = []
    try:
        with open(Path(folder) / SWEEP_LOG, encoding="utf-8") as stream:
            for line in stream:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    events.append(event)
    except FileNotFoundError:
        pass
    return events


def ended_jobs(folder: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """The last ``job`` event of each job number in ``folder/sweep.jsonl`` (lines of another
    shape are left out)."""
    return {
        event["job"]: event
        for event in read_sweep_log(folder)
        if event.get("event") == "job"
        and isinstance(event.get("job"), int)
        and isinstance(event.get("overrides"), list)
        and all(isinstance(o, str) for o in event["overrides"])
    }


def set_aside(record: Path) -> None:
    """Keep an earlier attempt's record ``<n>`` as ``<n>.1`` (``.2``, ...) before a rerun."""
    if not record.exists() and not record.is_symlink():
        return
    attempt = 1
    while record.with_name(f"{record.name}.{attempt}").exists():
        attempt += 1
    record.rename(record.with_name(f"{record.name}.{attempt}"))


class SweepLog:
    """``sweep.jsonl``: each event one JSON line, appended, flushed and fsync'ed."""

    def __init__(self, folder: Path) -> None:
        path = folder / SWEEP_LOG
        self._stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        if _torn(path):  # a line cut short by a crash must not swallow the next one
            self._stream.write("\n")

    def __enter__(self) -> SweepLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.close()

    def write(self, event: str, *, sync: bool = True, **fields: Any) -> None:
        """Append ``{"event": event, "time": now, **fields}`` (values not JSON as text), and
        :meth:`sync` unless ``sync`` is false (a batch of lines then syncs once at its end)."""
        line = json.dumps({"event": event, "time": _now(), **fields}, default=str)
        self._stream.write(line + "\n")
        if sync:
            self.sync()

    def sync(self) -> None:
        """Flush and fsync what was written."""
        self._stream.flush()
        os.fsync(self._stream.fileno())


def _torn(path: Path) -> bool:
    """Whether ``path`` ends in the middle of a line."""
    with open(path, "rb") as stream:
        if stream.seek(0, os.SEEK_END) == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


def _check_unchanged(folder: Path, header: Mapping[str, Any]) -> None:
    try:
        earlier = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"--resume: {quote(str(folder))} holds no sweep ({SWEEP_FILE} is missing)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--resume: cannot read {folder / SWEEP_FILE}: {exc}") from None
    if not isinstance(earlier, dict):
        raise ConfigError(f"--resume: {folder / SWEEP_FILE} is not a sweep's description")
    now = json.loads(json.dumps(dict(header), default=str))  # as it would be written
    changed = [
        f"{key}: was {quote(earlier.get(key))}, now {quote(now.get(key))}"
        for key in IDENTITY
        if earlier.get(key) != now.get(key)
    ]
    if changed:
        raise ConfigError(
            f"--resume: the command line differs from the sweep's in {quote(str(folder))} "
            f"({'; '.join(changed)}); resume with the same config, overrides, flags and sweeper"
        )


def _new_default_folder(config: str) -> Path:
    base = Path("multirun") / Path(config).stem / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base.parent.mkdir(parents=True, exist_ok=True)
    folder, attempt = base, 1
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            attempt += 1
            folder = base.with_name(f"{base.name}-{attempt}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
