"""``torch.distributed.checkpoint``, imported on first use.

Importing it pulls in DTensor and its sharding rules (a second or more of startup), which a run
that never saves or loads a checkpoint should not pay. Every reader here first refuses a folder
that someone else could have written (:mod:`plugins.ddp._ownership`), then reads it through
:mod:`plugins.ddp._dcp_reading`, which unpickles nothing that could run code.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from plugins.ddp._errors import CheckpointError, RefusedPickleError, describe
from plugins.ddp._ownership import require_private

__all__ = [
    "async_save",
    "check_complete",
    "get_state_dict",
    "load",
    "load_whole",
    "save",
    "set_state_dict",
    "tensor_shapes",
]

_SINGLE_PROCESS_WARNING = "torch.distributed is disabled"


def save(state: dict[str, Any], directory: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``directory`` (collective when a process group exists)."""
    import torch.distributed.checkpoint as dcp

    with _single_process_quiet():
        dcp.save(state, checkpoint_id=os.fspath(directory), no_dist=not dist.is_initialized())


def async_save(state: dict[str, Any], directory: str | os.PathLike[str], group: Any) -> Any:
    """Copy ``state`` to CPU memory, then write it to ``directory`` from a background thread
    over ``group`` (collective when a process group exists); return the write's future."""
    import torch.distributed.checkpoint as dcp

    # The writer thread runs after this returns: a scoped filter would no longer hold.
    warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_WARNING)
    with _single_process_quiet():
        return dcp.async_save(
            state,
            checkpoint_id=os.fspath(directory),
            process_group=group,
            no_dist=not dist.is_initialized(),
        )


def load(state: dict[str, Any], directory: str | os.PathLike[str], *, alone: bool = False) -> None:
    """Fill ``state`` in place from ``directory`` (collective unless ``alone``, or no group);
    :class:`CheckpointError` when it cannot, on every rank that took part."""
    import torch.distributed.checkpoint as dcp

    from plugins.ddp._dcp_reading import SafeReader, load_planner

    directory = Path(directory)
    require_private(directory)
    with _single_process_quiet(), _failures_as_errors(directory):
        dcp.load(
            state,
            storage_reader=SafeReader(directory),
            planner=load_planner(directory, whole=False),
            no_dist=alone or not dist.is_initialized(),
        )


def load_whole(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole checkpoint in ``directory``, nested as saved, with full tensors on the CPU
    (this process reads it alone: no template, no collective)."""
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    from plugins.ddp._dcp_reading import SafeReader, load_planner

    directory = Path(directory)
    require_private(directory)
    # What torch's own dcp_to_torch_save does: dcp.load() only fills the keys it is given.
    state: dict[str, Any] = {}
    with _single_process_quiet(), _failures_as_errors(directory):
        _load_state_dict(
            state,
            storage_reader=SafeReader(directory),
            planner=load_planner(directory, whole=True),
            no_dist=True,
        )
    return state


def get_state_dict(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and optimizer state with wrapper-free parameter names (DDP, FSDP2, TP alike)."""
    from torch.distributed.checkpoint import state_dict

    return state_dict.get_state_dict(model, optimizer)


def set_state_dict(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any],
) -> None:
    """The inverse of :func:`get_state_dict`."""
    from torch.distributed.checkpoint import state_dict

    state_dict.set_state_dict(
        model, optimizer, model_state_dict=model_state, optim_state_dict=optimizer_state
    )


def tensor_shapes(directory: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Every tensor's flattened key (``model.0.weight``) and global shape in a checkpoint."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    metadata = _read_metadata(Path(directory))
    return {
        key: tuple(meta.size)
        for key, meta in metadata.state_dict_metadata.items()
        if isinstance(meta, TensorStorageMetadata)
    }


def check_complete(directory: str | os.PathLike[str]) -> None:
    """Raise :class:`CheckpointError`, naming the file, unless ``.metadata`` reads and every data
    file it points to is there in full (a truncated shard would fail mid-load, collectively)."""
    directory = Path(directory)
    needed: dict[str, int] = {}
    for info in _read_metadata(directory).storage_data.values():
        end = info.offset + info.length
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), end)
    for name, size in sorted(needed.items()):
        file = directory / name
        actual = file.stat().st_size if file.is_file() else None
        if actual is None or actual < size:
            found = "is missing" if actual is None else f"holds {actual} of its {size} bytes"
            raise CheckpointError(f"checkpoint {directory} is incomplete: {name} {found}")


def _read_metadata(directory: Path) -> Any:
    from plugins.ddp._dcp_reading import read_metadata

    require_private(directory)
    return read_metadata(directory)


@contextlib.contextmanager
def _failures_as_errors(directory: Path) -> Iterator[None]:
    """DCP's CheckpointException (a BaseException that gathers every rank's failure) as a
    :class:`CheckpointError`, the same on every rank: a refused pickle as itself, anything else
    as a checkpoint that could not be loaded, with the first rank's cause."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        yield
    except CheckpointException as error:
        causes = [cause for cause, _ in error.failures.values()]
        refused = next((cause for cause in causes if isinstance(cause, RefusedPickleError)), None)
        if refused is not None:
            raise refused from None
        cause = causes[0] if causes else error
        raise CheckpointError(
            f"checkpoint {directory} could not be loaded: {describe(cause)}"
        ) from error


@contextlib.contextmanager
def _single_process_quiet() -> Iterator[None]:
    """Silence DCP's warning that it runs without a process group (one process, as asked)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_WARNING)
        yield
