"""Splitting work into consecutive pieces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of ``size`` elements (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
