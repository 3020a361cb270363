"""The seed example's application module: targets used by the core tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import attrs


@dataclasses.dataclass
class Optimizer:
    lr: float
    algo: str = "SGD"


@dataclasses.dataclass
class Trainer:
    optimizer: Optimizer
    seed: int = 0


@dataclasses.dataclass
class Net:
    width: int = 8


def params_of(model: Net) -> list[int]:
    return [model.width]


@dataclasses.dataclass
class Opt:
    params: Any
    model: Net


class Exploding:
    def __init__(self, reason: str = "boom") -> None:
        raise ValueError(reason)


def collect(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def identity(value: Any) -> Any:
    return value


@attrs.define
class Block:
    width: int
    dropout: float = 0.0


@attrs.define
class Model:
    block: Block
    depth: int = 2
    names: list[str] = attrs.Factory(list)


counter = {"calls": 0}


def counted() -> object:
    counter["calls"] += 1
    return object()


NOT_CALLABLE = 42
