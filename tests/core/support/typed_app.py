"""Targets whose parameters are annotated with dataclasses, TypedDicts, Literal, Enum and unions.

pydantic is not imported here (see typed_app_pydantic): tests check that corelib leaves it alone.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

from corelib import Trusted

Precision = Literal["32", "bf16"]


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclasses.dataclass
class OptimSettings:
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class TrainerSettings:
    opt: OptimSettings
    precision: Precision = "32"
    modes: list[Mode] = dataclasses.field(default_factory=list)


class Limits(TypedDict):
    steps: int
    warmup: NotRequired[int]


class Tags(TypedDict, total=False):
    name: Required[str]
    owner: str


def train(
    settings: TrainerSettings | None = None,
    precision: Precision = "32",
    precisions: list[Precision] = [],  # noqa: B006 - never mutated
    modes: dict[str, Mode] = {},  # noqa: B006 - never mutated
    limits: Limits | None = None,
    tags: Tags | None = None,
) -> dict[str, Any]:
    """Return the arguments as given, so tests can see what was structured."""
    return {
        "settings": settings,
        "precision": precision,
        "precisions": precisions,
        "modes": modes,
        "limits": limits,
        "tags": tags,
    }


@dataclasses.dataclass
class Endpoint:
    url: str
    api_key_env: Annotated[str, Trusted] = "API_KEY"


def connect(endpoint: Endpoint) -> Endpoint:
    return endpoint


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError(f"n must be positive, got {self.n}")


def positive(value: Positive) -> Positive:
    return value


class Secret(TypedDict):
    url: str
    key_env: Annotated[str, Trusted]


def unlock(secret: Secret) -> Secret:
    return secret
