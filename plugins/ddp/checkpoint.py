"""Checkpoints on disk: atomic, resumable, loadable across strategies.

A checkpoint of step ``N`` is the directory ``<root>/step_<N, 9 digits>`` holding a
``torch.distributed.checkpoint`` of ``{"model": ..., "optimizer": ...}`` (unwrapped keys, so a
DDP checkpoint loads into FSDP2 or a plain module) plus ``trainer_rank<R>.pt`` per rank (step,
data position, scheduler, RNG states, last metrics). It is written under a hidden temporary name
and renamed by rank 0 once every rank has finished, so a checkpoint is complete or absent: a
kill during a save leaves the previous one as the latest. ``root`` must be visible to all ranks
(one filesystem shared by every node).
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from corelib import CorelibError
from plugins.ddp import _dcp
from plugins.ddp.strategies import Strategy

__all__ = [
    "CheckpointError",
    "check_fits",
    "checkpoint_path",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint",
]

_STEP_DIR = re.compile(r"step_(\d{9})")
_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"


class CheckpointError(CorelibError):
    """A checkpoint is missing, incomplete, or does not fit the model it is loaded into."""


def checkpoint_path(root: str | os.PathLike[str], step: int) -> Path:
    """Where the checkpoint of ``step`` lives under ``root``."""
    return Path(root) / f"step_{step:09d}"


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step under ``root``, or None."""
    steps = _complete_checkpoints(Path(root))
    return steps[-1] if steps else None


def save_checkpoint(
    strategy: Strategy,
    root: str | os.PathLike[str],
    step: int,
    state: dict[str, Any],
    rank_state: dict[str, Any],
    *,
    keep_last: int | None = None,
) -> Path:
    """Write ``state`` (collectively) and this rank's ``rank_state`` as the checkpoint of
    ``step``; keep only the newest ``keep_last`` checkpoints (all when None). Returns its path."""
    root = Path(root)
    final = checkpoint_path(root, step)
    temp = root / f"{_TEMP_PREFIX}{final.name}"
    if strategy.is_main:
        root.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(root)
    strategy.barrier()
    strategy.save(state, temp)
    torch.save(rank_state, temp / _rank_file(strategy.rank))
    strategy.barrier()
    if strategy.is_main:
        if final.exists():
            _discard(final)
        os.replace(temp, final)
        _fsync_dir(root)
        if keep_last is not None:
            for old in _complete_checkpoints(root)[:-keep_last]:
                _discard(old)
    strategy.barrier()
    return final


def load_checkpoint(
    strategy: Strategy,
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Load ``path`` into the wrapped ``model`` and ``optimizer``; return this rank's state.

    A checkpoint written by another number of ranks still loads (resharded); ranks it has no
    file for get rank 0's state, and a warning says their random streams differ.
    """
    path = Path(path)
    state = strategy.state_dict(model, optimizer)
    check_fits(path, _held_by_all_ranks(strategy, state["model"]))
    strategy.load(path, state)
    strategy.load_state_dict(model, optimizer, state)
    rank_file = path / _rank_file(strategy.rank)
    if not rank_file.exists():
        warnings.warn(
            f"{path} has no state for rank {strategy.rank} (saved by fewer ranks): using rank "
            "0's step, data position and RNG state",
            stacklevel=2,
        )
        rank_file = path / _rank_file(0)
    return torch.load(rank_file, weights_only=False)


def _held_by_all_ranks(strategy: Strategy, model_state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model's tensors as all ranks together hold them (as shapes on the meta device):
    a pipeline stage holds only its own, and the checkpoint must fit their union."""
    if not strategy.is_distributed:
        return model_state
    parts: list[Any] = [None] * strategy.world_size
    dist.all_gather_object(parts, {key: tuple(value.shape) for key, value in model_state.items()})
    return {key: torch.empty(shape, device="meta") for part in parts for key, shape in part.items()}


def load_model_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a checkpoint's model weights into a plain (unwrapped, single-process) ``model``."""
    state = {"model": model.state_dict()}
    check_fits(Path(path), state["model"])
    _dcp.load(state, path, alone=True)
    model.load_state_dict(state["model"])
    return model


def check_fits(path: Path, model_state: Mapping[str, Any]) -> None:
    """Raise :class:`CheckpointError` unless ``path`` holds exactly these model tensors."""
    if not (path / ".metadata").is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no .metadata file)")
    saved = {
        key.removeprefix("model."): shape
        for key, shape in _dcp.tensor_shapes(path).items()
        if key.startswith("model.")
    }
    wanted = {key: tuple(value.shape) for key, value in model_state.items()}
    problems = []
    if missing := sorted(wanted.keys() - saved.keys()):
        problems.append(f"missing from the checkpoint: {_few(missing)}")
    if unexpected := sorted(saved.keys() - wanted.keys()):
        problems.append(f"not in the model: {_few(unexpected)}")
    problems += [
        f"{key}: checkpoint shape {list(saved[key])} but model shape {list(shape)}"
        for key, shape in sorted(wanted.items())
        if key in saved and saved[key] != shape
    ]
    if problems:
        raise CheckpointError(
            f"checkpoint {path} was saved from another model: " + "; ".join(problems)
        )


def _few(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _rank_file(rank: int) -> str:
    return f"trainer_rank{rank}.pt"


def _complete_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_DIR.fullmatch(p.name))


def _remove_leftovers(root: Path) -> None:
    for leftover in root.iterdir():
        if leftover.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
            shutil.rmtree(leftover, ignore_errors=True)


def _discard(path: Path) -> None:
    """Remove a checkpoint so that no half-deleted copy ever looks complete."""
    trash = path.with_name(f"{_TRASH_PREFIX}{path.name}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
