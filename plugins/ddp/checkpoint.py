"""Checkpoints on disk: atomic, resumable, loadable across strategies, never run as code.

A checkpoint of step ``N`` is the directory ``<root>/step_<N, 9 digits>`` holding a
``torch.distributed.checkpoint`` of ``{"model": ..., "optimizer": ...}`` (unwrapped keys, so a
DDP checkpoint loads into FSDP2 or a plain module) plus ``trainer_rank<R>.pt`` per rank (step,
data position, scheduler, RNG states, last metrics: tensors and plain values only, read back
with ``torch.load(weights_only=True)``). It is written under a hidden temporary name and
renamed by rank 0 once every rank has finished, so a checkpoint is complete or absent: a kill
during a save leaves the previous one as the latest. ``root`` must be visible to all ranks (one
filesystem shared by every node). Folders and files are written without group or other write
permission, a folder that others could have written is refused before anything in it is
read (:mod:`plugins.ddp._ownership`), and the DCP part is read without unpickling anything but
DCP's own metadata classes and plain values (:mod:`plugins.ddp._dcp_reading`).
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from plugins.ddp import _dcp
from plugins.ddp._errors import (
    CheckpointError,
    RefusedPickleError,
    describe,
    refused_pickle_reason,
)
from plugins.ddp._layout import checkpoint_path, complete_checkpoints, rank_file, step_of
from plugins.ddp._ownership import require_private
from plugins.ddp._saving import discard, start_checkpoint
from plugins.ddp.strategies import Strategy

__all__ = [
    "CheckpointError",
    "check_fits",
    "checkpoint_path",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "resume_latest",
    "save_checkpoint",
]

_T = TypeVar("_T")
_RANK_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "step": (int,),
    "data": (dict,),
    "scheduler": (dict, type(None)),
    "rng": (dict,),
    "metrics": (dict,),
}


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step under ``root``, or None."""
    steps = complete_checkpoints(Path(root))
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
    ``step``; keep only the newest ``keep_last`` checkpoints (all when None). Returns its path.

    ``rank_state`` must hold only what ``torch.load(weights_only=True)`` reads: tensors, ints,
    floats, strings, None, and lists, tuples and dicts of them."""
    final = start_checkpoint(strategy, root, step, state, rank_state).wait()
    if strategy.is_main and keep_last is not None:
        for old in complete_checkpoints(Path(root))[:-keep_last]:
            discard(old)
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
    require_private(path.parent, path)
    rank_state = _read_complete(path, strategy.rank)
    state = strategy.state_dict(model, optimizer)
    check_fits(path, _held_by_all_ranks(strategy, state["model"]))
    _load_into(strategy, path, state, model, optimizer)
    return rank_state


def resume_latest(
    strategy: Strategy,
    root: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest complete *and readable* checkpoint under ``root`` into the wrapped
    ``model`` and ``optimizer`` (collective); return its path and this rank's state, or None
    when ``root`` holds no checkpoint.

    A checkpoint that any rank cannot read (a truncated shard, a garbled trainer state) is
    skipped on every rank alike, with a warning naming the folder and file; when none can be
    read, :class:`CheckpointError` lists why. A folder that others could have written, a
    checkpoint of another model, or one holding a pickle that corelib never writes (someone
    crafted it: the older ones in the same folder are no better) is an error at once.
    """
    root = Path(root)
    candidates = complete_checkpoints(root)
    if not candidates:
        return None
    require_private(root)
    state = strategy.state_dict(model, optimizer)
    held = _held_by_all_ranks(strategy, state["model"])
    skipped: list[str] = []
    for path in reversed(candidates):
        require_private(path)
        rank_state, problem = _attempt(_read_complete, path, strategy.rank)
        problem = _agree(strategy, problem)
        if problem is None:
            check_fits(path, held)
            _, problem = _attempt(_load_into, strategy, path, state, model, optimizer)
            problem = _agree(strategy, problem)
        if problem is None and rank_state is not None:
            if skipped and strategy.is_main:
                warnings.warn(
                    f"skipped unreadable checkpoint(s) in {root}: {'; '.join(skipped)}; "
                    f"resuming from {path.name}, the newest readable one",
                    stacklevel=2,
                )
            return path, rank_state
        if problem is not None and problem.refused:
            raise RefusedPickleError(
                f"{problem.text}; not falling back to an older checkpoint in {root}: it came "
                "with this one, so check where the folder came from"
            )
        skipped.append(f"{path.name}: {problem.text if problem else ''}")
    raise CheckpointError(
        f"no readable checkpoint in {root}: {'; '.join(skipped)}; delete the broken ones, "
        "or pick another checkpoint folder"
    )


class _Problem(NamedTuple):
    """What went wrong with a checkpoint (one line), and whether it was a refused pickle."""

    text: str
    refused: bool = False


def _attempt(action: Callable[..., _T], *args: Any) -> tuple[_T | None, _Problem | None]:
    """``action(*args)`` and None, or None and what went wrong."""
    try:
        return action(*args), None
    except CheckpointError as error:
        return None, _Problem(str(error), isinstance(error, RefusedPickleError))
    except Exception as error:
        return None, _Problem(describe(error))


def _read_complete(path: Path, rank: int) -> dict[str, Any]:
    _dcp.check_complete(path)
    return _read_rank_state(path, rank)


def _load_into(
    strategy: Strategy,
    path: Path,
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> None:
    strategy.load(path, state)
    strategy.load_state_dict(model, optimizer, state)


def _agree(strategy: Strategy, problem: _Problem | None) -> _Problem | None:
    """Every rank's problem with a checkpoint, the same on all ranks (None when none had one);
    refused when any rank refused a pickle."""
    if not strategy.is_distributed:
        return problem
    problems: list[Any] = [None] * strategy.world_size
    dist.all_gather_object(problems, tuple(problem) if problem else None)
    found = {rank: _Problem(*each) for rank, each in enumerate(problems) if each}
    if not found:
        return None
    refused = any(each.refused for each in found.values())
    texts = {each.text for each in found.values()}
    if len(found) == strategy.world_size and len(texts) == 1:
        return _Problem(texts.pop(), refused)  # the same on every rank
    return _Problem("; ".join(f"rank {r}: {p.text}" for r, p in found.items()), refused)


def _read_rank_state(path: Path, rank: int) -> dict[str, Any]:
    """This rank's trainer state in the checkpoint ``path`` (rank 0's when it has none)."""
    file = path / rank_file(rank)
    if not file.is_file() and rank > 0 and (path / rank_file(0)).is_file():
        warnings.warn(
            f"{path} has no state for rank {rank} (saved by fewer ranks): using rank "
            "0's step, data position and RNG state",
            stacklevel=3,
        )
        file = path / rank_file(0)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path} is incomplete: no {file.name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol 4": the error says more
            state = torch.load(file, weights_only=True)
    except Exception as error:
        detail = describe(error)
        if isinstance(error, pickle.UnpicklingError):
            detail = (
                "not a trainer state that corelib wrote: it does not read as tensors and plain "
                f"values alone ({refused_pickle_reason(error)})"
            )
        raise CheckpointError(f"checkpoint {path} is unreadable: {file.name}: {detail}") from error
    problem = _rank_state_problem(state, step_of(path))
    if problem:
        raise CheckpointError(f"checkpoint {path} is unreadable: {file.name}: {problem}")
    return state


def _rank_state_problem(state: Any, step: int) -> str | None:
    if not isinstance(state, dict):
        return f"expected a dict, found {type(state).__name__}"
    for key, types in _RANK_STATE_TYPES.items():
        if not isinstance(state.get(key), types):
            return f"{key!r} should be {' or '.join(t.__name__ for t in types)}, found " + (
                "nothing" if key not in state else type(state[key]).__name__
            )
    if not isinstance(state.get("callbacks", {}), dict):
        return f"'callbacks' should be dict, found {type(state['callbacks']).__name__}"
    if state["step"] != step:
        return f"it says step {state['step']}, but the folder is step {step}"
    data = state["data"]
    if not all(isinstance(data.get(key), int) for key in ("epoch", "batch_in_epoch")):
        return "'data' should hold the ints 'epoch' and 'batch_in_epoch'"
    return None


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
    _dcp.check_complete(path)
    _dcp.load(state, path, alone=True)
    model.load_state_dict(state["model"])
    return model


def check_fits(path: Path, model_state: Mapping[str, Any]) -> None:
    """Raise :class:`CheckpointError` unless ``path`` holds exactly these model tensors."""
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
