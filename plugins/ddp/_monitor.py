"""A watched metric (``monitor``, ``mode``, ``min_delta``), shared by ``ddp/checkpointer`` and
``ddp/early_stopping``: which value is better, and a clear error for a metric never reported."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from corelib import ConfigError

__all__ = ["Monitor"]

Mode = Literal["min", "max"]


class Monitor:
    """The metric ``name`` of the trainer's step or validation metrics, better when lower
    (``mode="min"``) or higher (``"max"``) by more than ``min_delta``."""

    def __init__(self, owner: str, name: str, mode: str, min_delta: float = 0.0) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{owner}: monitor must name a metric (e.g. 'val/loss'), not {name!r}"
            )
        if mode not in ("min", "max"):
            raise ConfigError(f"{owner}: mode must be 'min' or 'max', not {mode!r}")
        if not (isinstance(min_delta, int | float) and 0 <= min_delta < math.inf):
            raise ConfigError(f"{owner}: min_delta must be a number >= 0, not {min_delta!r}")
        self.owner, self.name, self.mode, self.min_delta = owner, name, mode, float(min_delta)
        self._names: set[str] = set()
        self._checked = False

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` improves on ``than`` (anything improves on None; NaN never does)."""
        if math.isnan(value):
            return False
        if than is None:
            return True
        if self.mode == "min":
            return value < than - self.min_delta
        return value > than + self.min_delta

    def reset(self) -> None:
        """Forget the metric names seen (a new ``fit()``)."""
        self._names.clear()
        self._checked = False

    def observe(
        self, trainer: Any, metrics: Mapping[str, float], *, validation: bool
    ) -> float | None:
        """The monitored value in ``metrics``, if there. At the first validation (the first step
        when the trainer has no validation data), :class:`ConfigError` unless the metric was
        among the metrics seen so far: a misspelt name fails at once, not at the end."""
        self._names.update(name for name in metrics if name != "step")
        if not self._checked and (validation or getattr(trainer, "val_data", None) is None):
            self._checked = True
            if self.name not in self._names:
                where = "the first validation" if validation else "the first step (no val_data)"
                raise ConfigError(
                    f"{self.owner}: monitor={self.name!r} is no metric the trainer reports; by "
                    f"{where} it reported {sorted(self._names)}"
                )
        value = metrics.get(self.name)
        return None if value is None else float(value)
