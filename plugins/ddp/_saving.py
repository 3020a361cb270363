"""Writing a checkpoint, in the foreground or in the background, committed once complete.

Every rank writes its part into ``.tmp-step_<N>``; once every rank's part is written, rank 0
renames the folder to ``step_<N>`` (the completion marker: nothing else ever makes a folder of
that name), so a crash at any moment leaves the previous checkpoint the newest complete one.
In the background (DCP's ``async_save``) the model and optimizer state is first copied to CPU
memory, then written by a thread over a process group of its own (so its collectives never
interleave with the training loop's), and committed by :meth:`PendingCheckpoint.wait`.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import warnings
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from plugins.ddp import _dcp
from plugins.ddp._errors import CheckpointError, describe, refused_pickle_reason
from plugins.ddp._layout import (
    METRICS_FILE,
    PRIVATE_DIR,
    TEMP_PREFIX,
    TRASH_PREFIX,
    checkpoint_path,
    complete_checkpoints,
    rank_file,
)
from plugins.ddp._ownership import private_mode
from plugins.ddp.strategies import Strategy

__all__ = ["PendingCheckpoint", "discard", "start_checkpoint"]

_writer_group: list[Any] = []
"""The default process group and the writer thread's own group over the same ranks."""


class PendingCheckpoint:
    """A checkpoint being written; :meth:`wait` (collective) finishes it and returns its path."""

    def __init__(
        self, strategy: Strategy, root: Path, step: int, future: Future[Any] | None
    ) -> None:
        self.strategy, self.root, self.step = strategy, root, step
        self.path = checkpoint_path(root, step)
        self._future = future
        self._committed = False

    def wait(self) -> Path:
        """Wait until every rank's part is written, then commit it (once)."""
        if self._committed:
            return self.path
        if self._future is not None:
            future, self._future = self._future, None
            try:
                future.result()
            except BaseException as error:  # DCP's CheckpointException is a BaseException
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                newest = next(reversed(complete_checkpoints(self.root)), None)
                raise CheckpointError(
                    f"saving the checkpoint of step {self.step} in {self.root} failed in the "
                    f"background: {describe(_first_cause(error))}; the newest complete "
                    f"checkpoint is {newest.name if newest else 'none'}"
                ) from error
        self._commit()
        return self.path

    def _commit(self) -> None:
        strategy, temp = self.strategy, self.root / f"{TEMP_PREFIX}{self.path.name}"
        strategy.barrier()
        if strategy.is_main:
            for path in (temp, *temp.iterdir()):  # whatever the umask let DCP and torch create
                private_mode(path)
            if self.path.exists():
                discard(self.path)
            os.replace(temp, self.path)
            _fsync_dir(self.root)
        strategy.barrier()
        self._committed = True


def start_checkpoint(
    strategy: Strategy,
    root: str | os.PathLike[str],
    step: int,
    state: dict[str, Any],
    rank_state: dict[str, Any],
    *,
    metrics: Mapping[str, float] | None = None,
    background: bool = False,
) -> PendingCheckpoint:
    """Start writing the checkpoint of ``step`` (collective): ``state`` through DCP, this
    rank's ``rank_state``, and (rank 0) ``metrics`` as ``metrics.json``. With ``background``,
    the model and optimizer tensors are copied and written by a thread; otherwise they are on
    disk on return. Either way, :meth:`PendingCheckpoint.wait` commits the checkpoint."""
    root = Path(root)
    temp = root / f"{TEMP_PREFIX}{checkpoint_path(root, step).name}"
    if strategy.is_main:
        root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        _remove_leftovers(root)
        temp.mkdir(mode=PRIVATE_DIR)
        if metrics is not None:
            (temp / METRICS_FILE).write_text(json.dumps(_finite(metrics), sort_keys=True))
    strategy.barrier()
    _save_rank_state(rank_state, temp / rank_file(strategy.rank))
    future = None
    if background:
        future = _dcp.async_save(state, temp, _background_group())
    else:
        strategy.save(state, temp)
    return PendingCheckpoint(strategy, root, step, future)


def discard(path: Path) -> None:
    """Remove a checkpoint so that no half-deleted copy ever looks complete."""
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _background_group() -> Any:
    """A gloo group over every rank for the writer thread (None without a process group)."""
    if not dist.is_initialized():
        return None
    default = dist.group.WORLD
    if not _writer_group or _writer_group[0] is not default:  # a new process group since
        _writer_group[:] = [default, dist.new_group(backend="gloo")]
    return _writer_group[1]


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    values = {str(name): float(value) for name, value in metrics.items()}
    return {name: value for name, value in values.items() if math.isfinite(value)}


def _first_cause(error: BaseException) -> BaseException:
    failures = getattr(error, "failures", None)  # DCP's CheckpointException: rank -> (cause, tb)
    if isinstance(failures, dict) and failures:
        return next(iter(failures.values()))[0]
    return error


def _save_rank_state(rank_state: dict[str, Any], file: Path) -> None:
    """Write ``rank_state``, refusing at once what a resume could not read back safely."""
    torch.save(rank_state, file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(file, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"the trainer state for {file.name} holds objects that a resume could only read "
            f"with an unpickler that runs code ({refused_pickle_reason(error)}); a scheduler's "
            "state_dict() must hold only tensors and plain values"
        ) from error


def _remove_leftovers(root: Path) -> None:
    for leftover in root.iterdir():
        if leftover.name.startswith((TEMP_PREFIX, TRASH_PREFIX)) and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
