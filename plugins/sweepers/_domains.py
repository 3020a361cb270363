"""The swept domains as values: what every sweeper needs from a ``range`` or an ``interval``.

A ``range`` is never expanded to find its size or its i-th value (``range(0,10**12)`` costs
nothing until a value is wanted), and float steps are added in decimal, so ``range(0,1,0.1)``
gives ``0.3``, not ``0.30000000000000004``.
"""

from __future__ import annotations

import math
from decimal import Decimal

from corelib import ConfigError
from corelib.runs import Interval, Range

__all__ = ["check_interval", "range_size", "range_text", "range_value", "text_of"]


def range_size(key: str, domain: Range) -> int:
    """How many values ``domain`` has; a ConfigError naming ``key`` when it has none."""
    bounds = (domain.start, domain.stop, domain.step)
    if not all(math.isfinite(v) for v in bounds) or domain.step == 0:
        raise ConfigError(f"{key}={_range_source(domain)}: expected finite numbers and a step ≠ 0")
    if all(isinstance(v, int) for v in bounds):
        size = len(range(*bounds))  # type: ignore[arg-type]
    else:
        start, stop, step = (_decimal(v) for v in bounds)
        size = max(0, math.ceil((stop - start) / step))
    if size == 0:
        raise ConfigError(f"{key}={_range_source(domain)}: the range has no values")
    return size


def range_value(domain: Range, index: int) -> int | float:
    """The ``index``-th value of ``domain`` (0 is ``start``), computed without expanding it."""
    if all(isinstance(v, int) for v in (domain.start, domain.step)):
        return int(domain.start) + index * int(domain.step)
    return float(_decimal(domain.start) + index * _decimal(domain.step))


def range_text(domain: Range, index: int) -> str:
    """The ``index``-th value of ``domain`` as override text."""
    return text_of(range_value(domain, index))


def text_of(value: int | float) -> str:
    """A number as override text: ``str`` for an int, ``repr(float)`` otherwise."""
    return str(value) if isinstance(value, int) else repr(float(value))


def check_interval(key: str, domain: Interval) -> None:
    """A ConfigError naming ``key`` unless ``low < high`` (finite; ``0 < low`` for ``log``)."""
    low, high = domain.low, domain.high
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or (domain.log and low <= 0):
        expected = "0 < LOW < HIGH" if domain.log else "LOW < HIGH, finite"
        raise ConfigError(
            f"{key}={'log' if domain.log else 'interval'}({low:g},{high:g}): expected {expected}"
        )


def _decimal(value: int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _range_source(domain: Range) -> str:
    return f"range({domain.start:g},{domain.stop:g},{domain.step:g})"
