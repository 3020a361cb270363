"""The trainer's events, as hookspecs any plugin (or a callback object) can implement.

Each receives the running :class:`~plugins.ddp.trainer.Trainer` (its ``strategy`` tells the
rank; ``step`` and ``total_steps`` the progress). Hooks run on every rank, in the same order, so
an implementation may call collectives (the checkpointer does); work meant for one rank checks
``trainer.strategy.is_main``. Metrics are floats already averaged over ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from corelib import get_plugin_manager, hookspec

__all__ = ["add_trainer_hookspecs"]


@hookspec
def ddp_fit_start(trainer: Any) -> None:
    """Training is about to start (after setup and any resume; ``trainer.step`` is the start)."""


@hookspec
def ddp_step_end(trainer: Any, step: int, metrics: dict[str, float]) -> None:
    """Optimizer step ``step`` (counted from 1, across resumes) finished with ``metrics``."""


@hookspec
def ddp_validation_end(trainer: Any, step: int, metrics: dict[str, float]) -> None:
    """A validation pass after ``step`` finished with ``metrics`` (``"val/loss"``)."""


@hookspec
def ddp_checkpoint_saved(trainer: Any, step: int, path: Path) -> None:
    """A complete checkpoint of ``step`` is at ``path`` (a background save's once its write
    finished: at the next save, at a stop, or at the end of ``fit()``)."""


@hookspec
def ddp_fit_interrupted(trainer: Any, step: int) -> None:
    """SIGTERM or SIGINT arrived: training stops after ``step`` (the checkpointer saves it here)."""


@hookspec
def ddp_fit_end(trainer: Any, metrics: dict[str, float]) -> None:
    """Training finished normally with its final ``metrics``."""


def add_trainer_hookspecs() -> Any:
    """Declare the trainer's hookspecs on corelib's plugin manager (idempotent); return it."""
    manager = get_plugin_manager()
    manager.add_hookspecs(sys.modules[__name__])
    return manager
