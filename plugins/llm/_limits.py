"""What one request to the local server may ask for: body size, prompts, samples, tokens."""

from __future__ import annotations

from typing import Any

import attrs

from plugins.llm._wire import WireError


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"RequestLimits.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RequestLimits:
    """The server's bounds on each request; a request past one gets a 4xx naming it.

    ``max_body_bytes`` bounds the body (413 past it), ``max_prompts`` the prompts of one
    completions request, ``max_n`` the samples per prompt, ``max_tokens`` the new tokens per
    sample, ``max_stop`` the stop strings. ``max_connections`` bounds the connections served at
    once (a new one past it gets 503 and is closed), ``read_timeout_s`` each wait for a client's
    bytes (an idle or stalled connection is closed; a stalled body gets 408).
    """

    max_body_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    max_prompts: int = attrs.field(default=64, validator=_positive)
    max_n: int = attrs.field(default=64, validator=_positive)
    max_tokens: int = attrs.field(default=4096, validator=_positive)
    max_stop: int = attrs.field(default=16, validator=_positive)
    max_connections: int = attrs.field(default=64, validator=_positive)
    read_timeout_s: float = attrs.field(default=30.0, validator=_positive)

    def check(self, prompts: list[str], parameters: dict[str, Any]) -> None:
        """Raise `WireError` if a parsed request asks for more than these limits allow."""
        stop = parameters["stop"] or []
        for name, value, limit in [
            ("the number of prompts", len(prompts), self.max_prompts),
            ("'n'", parameters["n"], self.max_n),
            ("'max_tokens'", parameters["max_new_tokens"], self.max_tokens),
            ("the number of stop strings", len(stop), self.max_stop),
        ]:
            if value > limit:
                raise WireError(f"{name} is over this server's limit of {limit}")
