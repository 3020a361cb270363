"""Targets for bench_instantiate.py: the same callables without and with annotations."""

from __future__ import annotations

from typing import Any


def leaf(x, y=0):  # deliberately unannotated: no type checks
    return (x, y)


def node(child=None, value=0):
    return (child, value)


def collect(children=(), **extra):
    return children


def typed_leaf(x: int, y: float = 0.0) -> tuple[int, float]:
    return (x, y)


def typed_node(child: Any = None, value: int = 0) -> tuple[Any, int]:
    return (child, value)


def typed_collect(children: list[Any] = (), **extra: Any) -> list[Any]:  # type: ignore[assignment]
    return children
