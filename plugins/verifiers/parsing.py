"""Reading reasoning paths: steps, the final answer, and each step's intermediate results.

Each reader is a small attrs class configured by a regular expression, so a config can change
it with one key; anywhere an answer extractor is accepted, a plain callable works too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable

import attrs

__all__ = ["AnswerExtractor", "RegexAnswer", "RegexResults", "StepSplitter", "normalize_number"]

AnswerExtractor = Callable[[str], Hashable | None]
"""Maps a reasoning path to its final answer, or None where it has none."""


def normalize_number(text: str) -> str:
    """Canonical spelling of a number: no thousands commas, no trailing dot or ``.0``."""
    text = text.replace(",", "").strip().rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".", 1)[0]
    return text


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc


@attrs.frozen
class RegexAnswer:
    """The final answer is the last match of ``pattern`` (its ``group``), normalized.

    A path with no match has no answer (None), so it can never win a vote.
    """

    pattern: str = r"[Tt]he answer is\s*(-?[\d,]*\.?\d+)"
    group: int = 1
    normalize: Callable[[str], str] | None = normalize_number
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.pattern))

    def __call__(self, path: str) -> str | None:
        """The answer of ``path``, or None where the pattern does not match."""
        matches = list(self._regex.finditer(path))
        if not matches:
            return None
        answer = matches[-1].group(self.group)
        if answer is None:
            return None
        return self.normalize(answer) if self.normalize is not None else answer


@attrs.frozen
class StepSplitter:
    """Splits a path into steps at each match of ``separator``; empty steps are dropped."""

    separator: str = r"\n"
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.separator))

    def __call__(self, path: str) -> list[str]:
        """The non-empty, stripped steps of ``path`` in order."""
        return [step.strip() for step in self._regex.split(path) if step.strip()]


@attrs.frozen
class RegexResults:
    """A step's intermediate results: every match of ``pattern`` (its ``group``), normalized.

    The default reads ``12 + 7 = 19`` as ``["19"]`` and ``The answer is 31.`` as ``["31"]``.
    """

    pattern: str = r"(?:=|[Tt]he answer is)\s*(-?[\d,]*\.?\d+)"
    group: int = 1
    normalize: Callable[[str], str] | None = normalize_number
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.pattern))

    def __call__(self, step: str) -> list[str]:
        """The results written in ``step``, in order (empty where it has none)."""
        found = [m.group(self.group) for m in self._regex.finditer(step)]
        values = [value for value in found if value is not None]
        return [self.normalize(v) for v in values] if self.normalize is not None else values
