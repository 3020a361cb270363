"""Verifier directories: written atomically (readers see the old one or the new one, never a
half), read back with errors that name the file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plugins.verifiers.parsing import StepSplitter

__all__ = [
    "load_weights",
    "read_verifier_config",
    "save_verifier",
    "saved_splitter",
    "splitter_spec",
    "write_directory",
]


def write_directory(target: Path, write: Callable[[Path], None]) -> Path:
    """Fill a fresh temporary sibling of ``target`` with ``write(tmp)``, then move it in place.

    An existing ``target`` is moved aside first and removed once the new one is in place; if
    ``write`` fails, ``target`` is left untouched and the temporary directory removed.
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


FORMAT = 1
"""Version of the ``verifier.json`` + ``model.pt`` layout."""


def save_verifier(directory: Path, config: dict[str, Any], model: nn.Module) -> Path:
    """Write ``verifier.json`` (``config`` plus format) and ``model.pt`` atomically; under
    torchrun only rank 0 writes (every rank holds the same trained weights)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return directory.resolve()
    state = {key: value.cpu() for key, value in model.state_dict().items()}
    text = json.dumps({"format": FORMAT, **config}, indent=1)

    def write(tmp: Path) -> None:
        (tmp / "verifier.json").write_text(text)
        torch.save(state, tmp / "model.pt")

    return write_directory(directory, write)


def read_verifier_config(directory: Path, class_name: str) -> dict[str, Any]:
    """The ``verifier.json`` in ``directory``, checked to describe a ``class_name``."""
    config_file = directory / "verifier.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{class_name}.load: cannot read {config_file}: {exc}") from exc
    if config.get("format") != FORMAT or config.get("class") != class_name:
        raise ValueError(
            f"{class_name}.load: {config_file} holds a {config.get('class')!r} (format "
            f"{config.get('format')!r}); expected a {class_name!r} (format {FORMAT})"
        )
    return dict(config)


def load_weights(model: nn.Module, directory: Path, class_name: str) -> None:
    """Load ``directory/model.pt`` into ``model``; a damaged file is a ValueError naming it."""
    weights_file = directory / "model.pt"
    try:
        weights = torch.load(weights_file, map_location="cpu", weights_only=True)
        model.load_state_dict(weights)
    except Exception as exc:  # torch.load raises many kinds on a damaged file
        raise ValueError(
            f"{class_name}.load: cannot load the weights {weights_file} for the model described "
            f"in {directory / 'verifier.json'}: {exc}"
        ) from exc


def splitter_spec(splitter: Callable[[str], list[str]]) -> dict[str, str] | None:
    """What ``verifier.json`` records of a step splitter (``None``: a custom one, not saved)."""
    if isinstance(splitter, StepSplitter):
        return {"separator": splitter.separator}
    return None


def saved_splitter(
    config: dict[str, Any],
    splitter: Callable[[str], list[str]] | None,
    directory: Path,
    class_name: str,
) -> Callable[[str], list[str]]:
    """``splitter`` when given, else the one recorded in ``config``."""
    if splitter is not None:
        return splitter
    if config["splitter"] is None:
        raise ValueError(
            f"{class_name}.load: {directory} was saved with a custom step splitter; pass splitter="
        )
    return StepSplitter(**config["splitter"])
