"""The trainer's ``compile`` option: ``torch.compile`` the model, per block where it is sharded.

Each module the strategy names in :meth:`~plugins.ddp.strategies.Strategy.compile_units` is
compiled in place (``nn.Module.compile``) before the strategy wraps the model: the whole model
under ``ddp/single``, ``ddp/ddp`` and ``ddp/tp``; each block ``shard_modules`` selects under
``ddp/fsdp2`` and ``ddp/fsdp2_tp`` (before ``fully_shard``, as torchtitan does). Compiling in
place keeps the parameter names, so checkpoints move between compiled and plain runs.
Compilation itself happens in the first step (see :class:`WarmupClock`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from corelib import ConfigError

__all__ = ["COMPILE_KEYS", "WarmupClock", "compile_model", "compile_options"]

COMPILE_KEYS = ("backend", "mode", "fullgraph", "dynamic")
"""The keys a ``compile`` mapping may hold: ``torch.compile``'s keyword arguments, except
``options`` (inductor's settings can name the compiler it runs: a config file must not choose
that; set ``torch._inductor.config`` from Python instead)."""


def compile_options(value: bool | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``torch.compile``'s keyword arguments for the trainer's ``compile`` value (``None``: off).

    ``True`` compiles with torch's defaults (inductor); a mapping passes its keys on. Refused:
    anything else, unknown keys, and a torch without ``torch.compile``.
    """
    if value is None or value is False:
        return None
    if value is True:
        options: dict[str, Any] = {}
    elif isinstance(value, Mapping):
        unknown = sorted(str(key) for key in value if key not in COMPILE_KEYS)
        if unknown:
            raise ConfigError(
                f"ddp/trainer: compile has unknown key(s) {unknown}; expected some of "
                f"{list(COMPILE_KEYS)} (torch.compile's arguments)"
            )
        options = dict(value)
    else:
        raise ConfigError(
            f"ddp/trainer: compile must be true, false or a mapping of torch.compile's "
            f"arguments {list(COMPILE_KEYS)}, not {type(value).__name__}"
        )
    if not callable(getattr(torch, "compile", None)):
        raise ConfigError(
            f"ddp/trainer: compile needs torch.compile (torch >= 2.0); this is torch "
            f"{torch.__version__}: set compile: false"
        )
    return options


def compile_model(model: nn.Module, strategy: Any, options: Mapping[str, Any]) -> list[nn.Module]:
    """Compile, in place, each module ``strategy.compile_units(model)`` names; return them.

    Refused first (before any step): a platform torch.compile does not support, the inductor
    backend on the CPU without a C++ compiler, a strategy that cannot compile (``ddp/pipeline``).
    """
    _check_platform(options, strategy)
    units = strategy.compile_units(model)
    for unit in units:
        unit.compile(**options)
    return units


def _check_platform(options: Mapping[str, Any], strategy: Any) -> None:
    where = f"under {type(strategy).__name__} on {strategy.device}"
    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError(
            f"ddp/trainer: compile {where}: torch.compile does not support this Python or "
            "platform (torch._dynamo.is_dynamo_supported() is False); set compile: false"
        )
    backend = options.get("backend", "inductor")
    if backend == "inductor" and strategy.device.type == "cpu" and not _cpp_compiler():
        raise ConfigError(
            f"ddp/trainer: compile {where}: the inductor backend builds C++ on the CPU, and "
            "no C++ compiler was found (install g++, or set CXX before starting); or pick "
            "compile.backend: aot_eager"
        )


class WarmupClock:
    """Times the first optimizer step of a compiled run, where compilation happens.

    Its seconds are reported apart from the step times (as ``compile/warmup_s``), so that
    step-time figures describe the compiled model.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: float | None = None
        self._started = time.perf_counter()

    def stop(self) -> float:
        """Seconds since creation, after the device finished its queued work."""
        if self.seconds is None:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds = time.perf_counter() - self._started
        return self.seconds


def _cpp_compiler() -> str | None:
    try:
        from torch._inductor import config as inductor_config

        configured = inductor_config.cpp.cxx
    except Exception:  # an inductor that cannot even be imported cannot compile either
        return None
    names = configured if isinstance(configured, tuple | list) else (configured,)
    return next((found for name in names if name and (found := shutil.which(str(name)))), None)
