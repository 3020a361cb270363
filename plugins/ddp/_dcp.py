"""``torch.distributed.checkpoint``, imported on first use.

Importing it pulls in DTensor and its sharding rules (a second or more of startup), which a run
that never saves or loads a checkpoint should not pay. Every reader here first refuses a folder
that someone else could have written (:mod:`plugins.ddp._ownership`): DCP unpickles ``.metadata``.
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

from plugins.ddp._errors import CheckpointError
from plugins.ddp._ownership import require_private

__all__ = [
    "check_complete",
    "get_state_dict",
    "load",
    "load_whole",
    "save",
    "set_state_dict",
    "tensor_shapes",
]


def save(state: dict[str, Any], directory: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``directory`` (collective when a process group exists)."""
    import torch.distributed.checkpoint as dcp

    with _single_process_quiet():
        dcp.save(state, checkpoint_id=os.fspath(directory), no_dist=not dist.is_initialized())


def load(state: dict[str, Any], directory: str | os.PathLike[str], *, alone: bool = False) -> None:
    """Fill ``state`` in place from ``directory`` (collective unless ``alone``, or no group)."""
    import torch.distributed.checkpoint as dcp

    require_private(Path(directory))
    no_dist = alone or not dist.is_initialized()
    with _single_process_quiet():
        dcp.load(state, checkpoint_id=os.fspath(directory), no_dist=no_dist)


def load_whole(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole checkpoint in ``directory``, nested as saved, with full tensors on the CPU
    (this process reads it alone: no template, no collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    require_private(Path(directory))
    # What torch's own dcp_to_torch_save does: dcp.load() only fills the keys it is given.
    state: dict[str, Any] = {}
    with _single_process_quiet():
        _load_state_dict(
            state,
            storage_reader=dcp.FileSystemReader(os.fspath(directory)),
            planner=_EmptyStateDictLoadPlanner(),
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
    import torch.distributed.checkpoint as dcp

    require_private(directory)
    if not (directory / ".metadata").is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint (no .metadata file)")
    try:
        return dcp.FileSystemReader(os.fspath(directory)).read_metadata()
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {directory} is unreadable: .metadata: {type(error).__name__}: {error}"
        ) from error


@contextlib.contextmanager
def _single_process_quiet() -> Iterator[None]:
    """Silence DCP's warning that it runs without a process group (one process, as asked)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield
