"""The light types every LLM backend shares: `Completion` and the `LLM` protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen
class Completion:
    """One generated continuation of a prompt.

    ``text`` holds the generated text only (never the prompt), cut before the first stop string;
    ``token_logprobs`` has one log-probability per generated token, or is None where the backend
    has none; ``finish_reason`` is ``"stop"`` (a stop string or end of sequence) or ``"length"``.
    """

    text: str
    token_logprobs: list[float] | None
    finish_reason: str


@runtime_checkable
class LLM(Protocol):
    """A batched text generator (registry group ``llms``).

    ``generate`` returns, for each prompt, ``n`` independent completions, or an empty list where
    the prompt's request failed for good (the backend counts it in ``failures``).
    """

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """Generate ``n`` completions for each prompt."""
        ...


def check_parameters(n: int, temperature: float, top_p: float, max_new_tokens: int) -> None:
    """Raise ValueError for generation parameters outside their ranges."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
