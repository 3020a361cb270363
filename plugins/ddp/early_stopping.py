"""``ddp/early_stopping``: end training when a monitored metric stops improving."""

from __future__ import annotations

import sys
from typing import Any, Literal

import torch

from corelib import ConfigError, hookimpl
from plugins.ddp._monitor import Monitor

__all__ = ["EarlyStopping"]

_NAME = "ddp/early_stopping"


class EarlyStopping:
    """Stop training once ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` checks in a row. A check is each time the metric is reported: every validation
    for ``val/...`` metrics, every step for step metrics (``train/loss``).

    Rank 0 decides and every rank follows (one broadcast per check), so all ranks stop after the
    same step; the trainer then ends as at any end (final validation if due, checkpoint). The
    best value and the count of checks without improvement are saved in checkpoints, so a
    resumed run stops where the uninterrupted one would.

    Args:
        monitor: the metric's name, e.g. ``"val/loss"``.
        mode: ``"min"`` (lower is better) or ``"max"``.
        patience: checks without improvement before stopping (>= 1).
        min_delta: the least change that counts as an improvement (>= 0).
    """

    def __init__(
        self,
        monitor: str,
        *,
        mode: Literal["min", "max"] = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ConfigError(f"{_NAME}: patience must be an integer >= 1, not {patience!r}")
        self._monitor = Monitor(_NAME, monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.patience = patience
        self.best: float | None = None
        self.waited = 0
        """Checks in a row without improvement."""

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs: the best value and the checks waited since."""
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (from a checkpoint)."""
        best, waited = state.get("best"), state.get("waited")
        self.best = float(best) if isinstance(best, int | float) else None
        self.waited = waited if isinstance(waited, int) else 0

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        self._monitor.reset()
        if trainer.step == 0:  # a new run (a resumed one got its state from the checkpoint)
            self.best, self.waited = None, 0

    @hookimpl
    def ddp_step_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._check(trainer, step, metrics, validation=False)

    @hookimpl
    def ddp_validation_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._check(trainer, step, metrics, validation=True)

    def _check(
        self, trainer: Any, step: int, metrics: dict[str, float], *, validation: bool
    ) -> None:
        value = self._monitor.observe(trainer, metrics, validation=validation)
        if value is None:
            return
        if self._monitor.better(value, self.best):
            self.best, self.waited = value, 0
        else:
            self.waited += 1
        strategy = trainer.strategy
        decided = torch.tensor([float(self.waited >= self.patience)], device=strategy.device)
        if not strategy.is_main:
            decided.zero_()  # rank 0's decision, whatever this rank's copy of the metric says
        if strategy.all_reduce(decided, "max").item() == 0.0:
            return
        trainer.request_stop()
        if strategy.is_main:
            print(
                f"{_NAME}: {self.monitor} has not improved by more than "
                f"{self.min_delta:g} for {self.waited} checks (best {self.best:.6g}); "
                f"stopping after step {step}",
                file=sys.stderr,
                flush=True,
            )
