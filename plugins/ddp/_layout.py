"""Names on disk: where the checkpoint of a step lives, and which folders are checkpoints.

A checkpoint of step ``N`` is ``<root>/step_<N, 9 digits>``; it is written under
``.tmp-step_<N>`` and renamed into place once complete, so the rename is its completion marker.
Checkpoints on their way out are renamed to ``.trash-step_<N>`` before they are deleted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from plugins.ddp._errors import CheckpointError

__all__ = [
    "METRICS_FILE",
    "PRIVATE_DIR",
    "TEMP_PREFIX",
    "TRASH_PREFIX",
    "checkpoint_path",
    "complete_checkpoints",
    "rank_file",
    "step_of",
]

METRICS_FILE = "metrics.json"
"""Rank 0's record of the metrics a checkpoint was saved with (what ``keep_best`` ranks by)."""
PRIVATE_DIR = 0o755
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
_STEP_DIR = re.compile(r"step_(\d{9})")


def checkpoint_path(root: str | os.PathLike[str], step: int) -> Path:
    """Where the checkpoint of ``step`` lives under ``root``."""
    return Path(root) / f"step_{step:09d}"


def complete_checkpoints(root: Path) -> list[Path]:
    """The complete checkpoints under ``root``, oldest step first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_DIR.fullmatch(p.name))


def step_of(path: Path) -> int:
    """The step of the checkpoint folder ``path``."""
    match = _STEP_DIR.fullmatch(path.name)
    if match is None:
        raise CheckpointError(f"{path} is not a checkpoint folder (step_<9 digits>)")
    return int(match.group(1))


def rank_file(rank: int) -> str:
    """The name of rank ``rank``'s trainer state in a checkpoint folder."""
    return f"trainer_rank{rank}.pt"
