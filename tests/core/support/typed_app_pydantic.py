"""A target whose parameter is a pydantic model (pydantic is an optional dependency)."""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic

from corelib import Trusted


class Scheduler(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    kind: Literal["cosine", "linear"] = "cosine"
    warmup: int = 0
    peaks: list[float] = []


def schedule(scheduler: Scheduler) -> Scheduler:
    return scheduler


class Plan(pydantic.BaseModel):
    scheduler: Scheduler | None = None
    name: str = "plan"


def plan(plan: Plan) -> Plan:
    return plan


class Credentials(pydantic.BaseModel):
    url: str
    key_env: Annotated[str, Trusted] = "API_KEY"


def login(credentials: Credentials) -> Credentials:
    return credentials
