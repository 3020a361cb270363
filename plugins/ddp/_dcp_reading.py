"""Read a ``torch.distributed.checkpoint`` folder without unpickling anything that runs code.

DCP (torch 2.13) unpickles two things from a checkpoint: ``.metadata`` with plain ``pickle``
(``FileSystemReader.read_metadata``), and every non-tensor value (an optimizer's ``lr``, its
``params`` list) with ``torch.load(weights_only=False)`` (``DefaultLoadPlanner.load_bytes``);
tensors are read with ``weights_only=True``. Here ``.metadata`` is unpickled once, by an
unpickler that knows only the classes DCP's metadata is made of, and the reader hands DCP that
object (no second read of the file, so nothing can change in between); a non-tensor value is
unpickled only after it read as plain values under ``weights_only=True``. Anything else is a
:class:`~plugins.ddp._errors.RefusedPickleError` naming the folder, the file and what it held.
A ``.metadata`` that names a data file outside its folder is unreadable.

This module imports DCP: :mod:`plugins.ddp._dcp` imports it on first use.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.default_planner import (
    DefaultLoadPlanner,
    _EmptyStateDictLoadPlanner,
)
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import LoadPlanner, ReadItem

from plugins.ddp._errors import (
    CheckpointError,
    RefusedPickleError,
    describe,
    refused_pickle_reason,
)

__all__ = ["SafeReader", "load_planner", "read_metadata"]

METADATA_FILE = ".metadata"
# Every global a DCP .metadata refers to (torch 2.13): its own dataclasses, the filesystem
# writer's storage info, torch.Size, dtypes and layouts, and the path it was saved to.
_ALLOWED_GLOBALS: dict[str, frozenset[str]] = {
    "torch.distributed.checkpoint.metadata": frozenset(
        {
            "BytesStorageMetadata",
            "ChunkStorageMetadata",
            "Metadata",
            "MetadataIndex",
            "StorageMeta",
            "TensorProperties",
            "TensorStorageMetadata",
            "_MEM_FORMAT_ENCODING",
        }
    ),
    "torch.distributed.checkpoint.filesystem": frozenset({"_StorageInfo"}),
    "torch.serialization": frozenset({"_get_layout"}),  # how a torch.layout pickles
    "torch": frozenset({"Size"}),  # and every torch.dtype (below)
    "pathlib": frozenset({"PosixPath"}),  # StorageMeta.checkpoint_id
}
_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}


class _MetadataUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED_GLOBALS` and torch dtypes; persistent ids are refused by
    :class:`pickle.Unpickler` itself."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        raise _Refused(f"{module}.{name}")


class _Refused(pickle.UnpicklingError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def read_metadata(directory: Path) -> Metadata:
    """The ``.metadata`` of the checkpoint in ``directory``, unpickled without running code."""
    file = directory / METADATA_FILE
    if not file.is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint (no .metadata file)")
    try:
        with file.open("rb") as stream:
            metadata = _MetadataUnpickler(stream).load()
    except _Refused as refused:
        raise RefusedPickleError(
            f"refusing to load checkpoint {directory}: {METADATA_FILE} holds a reference to "
            f"{repr(refused.name[:200])[1:-1]}, which a DCP checkpoint never does (it was not "
            "written by torch.distributed.checkpoint, or was changed since)"
        ) from None
    except Exception as error:
        problem: str | None = describe(error)
    else:
        problem = _metadata_problem(metadata)
    if problem:
        raise CheckpointError(f"checkpoint {directory} is unreadable: {METADATA_FILE}: {problem}")
    return metadata


def _metadata_problem(metadata: Any) -> str | None:
    """What is wrong with an unpickled ``.metadata``; a data file it names must lie directly in
    the checkpoint folder (DCP would read ``../x`` or ``/x`` as given)."""
    if not isinstance(metadata, Metadata):
        return f"expected DCP's Metadata, found {type(metadata).__name__}"
    if not isinstance(metadata.storage_data, dict):
        return f"expected a dict of data files, found {type(metadata.storage_data).__name__}"
    for info in metadata.storage_data.values():
        name = getattr(info, "relative_path", None)
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            shown = repr(name)[:200]
            return f"it names the data file {shown}, which is not a file in the checkpoint folder"
    return None


class SafeReader(FileSystemReader):
    """A :class:`FileSystemReader` whose ``.metadata`` is read by :func:`read_metadata` when it
    is made (a refusal is raised there, before DCP starts) and never again."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory)
        self._metadata = read_metadata(Path(directory))

    def read_metadata(self) -> Metadata:
        # No **kwargs: DCP then never falls back to a rank's own __<rank>.metadata file.
        if self._metadata.storage_meta is None:
            self._metadata.storage_meta = StorageMeta()
        self._metadata.storage_meta.load_id = self.load_id
        return self._metadata


class _SafeLoadPlanner(DefaultLoadPlanner):
    """Unpickles a non-tensor value (DCP does it with ``weights_only=False``) only after it
    read as tensors and plain values with ``weights_only=True``."""

    directory: Path

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.load(value, weights_only=True)
        except pickle.UnpicklingError as error:
            key = read_item.dest_index.fqn
            storage = self.metadata.storage_data if self.metadata else {}
            where = getattr(storage.get(read_item.storage_index), "relative_path", "its data file")
            raise RefusedPickleError(
                f"refusing to load checkpoint {self.directory}: the value of {key[:200]} in "
                f"{where} is not made of tensors and plain values, which a DCP checkpoint of "
                f"corelib's never holds ({refused_pickle_reason(error)})"
            ) from None
        value.seek(0)
        super().load_bytes(read_item, value)


class _SafeWholeLoadPlanner(_SafeLoadPlanner, _EmptyStateDictLoadPlanner):
    """DCP's planner that loads every key of a checkpoint, with non-tensor values checked."""


def load_planner(directory: Path, *, whole: bool) -> LoadPlanner:
    """DCP's planner (``whole``: the one that loads every key), with non-tensor values checked."""
    planner = _SafeWholeLoadPlanner() if whole else _SafeLoadPlanner()
    planner.directory = directory
    return planner
