"""``ddp/checkpointer``: when to save, in the foreground or the background, and which
checkpoints to keep (the newest, the best by a monitored metric, and a ``best`` link)."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from corelib import ConfigError, hookimpl
from plugins.ddp._layout import METRICS_FILE, complete_checkpoints, step_of
from plugins.ddp._monitor import Monitor
from plugins.ddp._saving import discard

__all__ = ["BEST_LINK", "Checkpointer"]

BEST_LINK = "best"
"""The symbolic link in the checkpoint folder to the best checkpoint (relative: ``step_<N>``)."""
_METRICS_MAX_BYTES = 1 << 20
_NAME = "ddp/checkpointer"


class Checkpointer:
    """Save a checkpoint every ``every`` steps (if set), at the end of training and, with
    ``save_on_signal``, on SIGTERM or SIGINT. The trainer resumes from ``directory`` when it has
    no ``checkpoint_dir`` of its own.

    Args:
        directory: where the ``step_<N>`` folders go.
        every: save after every N optimizer steps (after that step's validation, if any).
        keep_last: keep the newest N complete checkpoints. With ``keep_best`` too, a checkpoint
            is kept when either keeps it; with neither, every checkpoint is kept. The newest
            complete checkpoint and the best one are never deleted.
        keep_best: keep the N best checkpoints by ``monitor``.
        monitor: a metric (``val/loss``, ``train/loss``...) that ranks checkpoints and points
            the ``best`` link; a checkpoint is ranked by the metric's latest value when saved.
        mode: ``"min"`` (lower is better) or ``"max"``.
        async_save: write in the background (DCP's ``async_save``): the saving step only copies
            the state to CPU memory; the next save, a stop and the end of ``fit()`` wait for it.
        save_on_signal: save when SIGTERM or SIGINT stops training.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int | None = None,
        keep_last: int | None = 3,
        keep_best: int | None = None,
        monitor: str | None = None,
        mode: Literal["min", "max"] = "min",
        async_save: bool = False,
        save_on_signal: bool = True,
    ) -> None:
        for name, value in {"every": every, "keep_last": keep_last, "keep_best": keep_best}.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{_NAME}: {name} must be an integer >= 1 or None, not {value!r}")
        if mode not in ("min", "max"):
            raise ConfigError(f"{_NAME}: mode must be 'min' or 'max', not {mode!r}")
        if keep_best is not None and monitor is None:
            raise ConfigError(f"{_NAME}: keep_best={keep_best} needs monitor (e.g. 'val/loss')")
        self.directory = Path(directory)
        self.every = every
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.monitor = monitor
        self.mode = mode
        self._monitor = None if monitor is None else Monitor(_NAME, monitor, mode)
        self.async_save = async_save
        self.save_on_signal = save_on_signal
        self._seen: dict[str, float] = {}

    @hookimpl
    def ddp_fit_start(self) -> None:
        self._seen = {}
        if self._monitor is not None:
            self._monitor.reset()

    @hookimpl(trylast=True)  # after the other callbacks, so their state is saved up to date
    def ddp_step_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._observe(trainer, metrics, validation=False)
        if self._due(step) and not _validates_after(trainer, step):
            self._save(trainer)

    @hookimpl(trylast=True)
    def ddp_validation_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._observe(trainer, metrics, validation=True)
        if self._due(step):
            self._save(trainer)

    @hookimpl
    def ddp_checkpoint_saved(self, trainer: Any, path: Path) -> None:
        if not (trainer.strategy.is_main and path.parent == self.directory):
            return
        try:
            self._retain()
        except OSError as error:  # rank 0 alone: raising would leave the others waiting
            warnings.warn(
                f"{_NAME}: could not update the best link or delete old checkpoints in "
                f"{self.directory}: {error}",
                stacklevel=2,
            )

    @hookimpl(trylast=True)
    def ddp_fit_interrupted(self, trainer: Any) -> None:
        if self.save_on_signal:
            trainer.save_checkpoint(self.directory, metrics=self._seen)

    @hookimpl(trylast=True)
    def ddp_fit_end(self, trainer: Any) -> None:
        trainer.save_checkpoint(self.directory, metrics=self._seen)

    def _due(self, step: int) -> bool:
        return self.every is not None and step % self.every == 0

    def _save(self, trainer: Any) -> None:
        trainer.save_checkpoint(self.directory, async_save=self.async_save, metrics=self._seen)

    def _observe(self, trainer: Any, metrics: dict[str, float], *, validation: bool) -> None:
        self._seen.update((name, value) for name, value in metrics.items() if name != "step")
        if self._monitor is not None:
            self._monitor.observe(trainer, metrics, validation=validation)

    def _retain(self) -> None:
        """Point ``best`` at the best checkpoint, then delete those no rule keeps (rank 0)."""
        checkpoints = complete_checkpoints(self.directory)
        if not checkpoints:
            return
        ranked = self._ranked(checkpoints)
        if ranked:
            _point_link(self.directory / BEST_LINK, ranked[0])
        if self.keep_last is None and self.keep_best is None:
            return
        keep = {checkpoints[-1], *ranked[:1], *ranked[: self.keep_best or 0]}
        keep.update(checkpoints[-self.keep_last :] if self.keep_last else ())
        for old in checkpoints:
            if old not in keep:
                discard(old)

    def _ranked(self, checkpoints: list[Path]) -> list[Path]:
        """The checkpoints with a value of the monitored metric, best first (ties: the older)."""
        if self.monitor is None:
            return []
        sign = 1.0 if self.mode == "min" else -1.0
        scored = [
            (sign * value, step_of(path), path)
            for path in checkpoints
            if (value := _recorded(path, self.monitor)) is not None
        ]
        return [path for *_, path in sorted(scored)]


def _validates_after(trainer: Any, step: int) -> bool:
    """Whether the trainer validates after ``step`` (the save then waits for its metrics)."""
    return (
        trainer.val_data is not None and bool(trainer.val_every) and step % trainer.val_every == 0
    )


def _recorded(path: Path, name: str) -> float | None:
    """The value of metric ``name`` in a checkpoint's ``metrics.json`` (None: absent, or not a
    finite number: the file is only ever data)."""
    file = path / METRICS_FILE
    try:
        if file.stat().st_size > _METRICS_MAX_BYTES:
            return None
        value = json.loads(file.read_text()).get(name)
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _point_link(link: Path, target: Path) -> None:
    """Make ``link`` a relative symbolic link to ``target`` atomically (a new link, renamed
    over the old one: a reader sees the old target or the new, never none)."""
    if link.is_symlink() and os.readlink(link) == target.name:
        return
    temp = link.with_name(f".{link.name}-{os.getpid()}")
    temp.unlink(missing_ok=True)
    os.symlink(target.name, temp)
    os.replace(temp, link)
