"""Fault injection for the local server: which request gets which failure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

OK = "ok"
SLEEP = "sleep"  # stall ``sleep_s`` before answering (past a client's timeout)
MALFORMED = "malformed"  # answer 200 with a body that is not valid JSON
DISCONNECT = "disconnect"  # close the connection without answering
_STATUS = re.compile(r"[345]\d\d")  # answer with this HTTP status (3xx: a redirect to /v1/moved)


def _check_faults(instance: object, attribute: attrs.Attribute, faults: tuple[str, ...]) -> None:
    for fault in faults:
        if fault not in (OK, SLEEP, MALFORMED, DISCONNECT) and not _STATUS.fullmatch(fault):
            raise ValueError(
                f"FaultPlan.{attribute.name}: unknown fault {fault!r} (expected 'ok', 'sleep', "
                "'malformed', 'disconnect' or an HTTP status such as '429', '500' or '307')"
            )


def _check_by_prompt(
    instance: object, attribute: attrs.Attribute, by_prompt: Mapping[str, tuple[str, ...]]
) -> None:
    for faults in by_prompt.values():
        _check_faults(instance, attribute, tuple(faults))


def _as_tuple(faults: Iterable[str]) -> tuple[str, ...]:
    return tuple(faults)


@attrs.frozen
class FaultPlan:
    """The failures a server injects.

    ``schedule[i]`` is the fault for the server's i-th request (counting from 0, whatever its
    prompt); ``by_prompt[p][k]`` the fault for the k-th request carrying prompt ``p`` (it takes
    precedence). Requests past the end of a schedule are answered normally. ``retry_after`` (in
    seconds) is sent as ``Retry-After`` with 429 and 503 answers.
    """

    schedule: tuple[str, ...] = attrs.field(
        default=(), converter=_as_tuple, validator=_check_faults
    )
    by_prompt: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, validator=_check_by_prompt)
    retry_after: float | None = None
    sleep_s: float = 2.0

    @classmethod
    def first(cls, count: int, fault: str, **options: Any) -> FaultPlan:
        """``fault`` for the first ``count`` requests, then normal answers."""
        return cls(schedule=(fault,) * count, **options)

    def fault_for(self, request_index: int, prompt: str | None, prompt_index: int) -> str:
        """The fault for a request: the server's ``request_index``-th, the ``prompt_index``-th
        carrying ``prompt``."""
        if prompt is not None and prompt in self.by_prompt:
            faults = self.by_prompt[prompt]
            return faults[prompt_index] if prompt_index < len(faults) else OK
        return self.schedule[request_index] if request_index < len(self.schedule) else OK
