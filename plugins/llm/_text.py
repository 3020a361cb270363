"""Text helpers shared by the backends."""

from __future__ import annotations


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Return ``text`` cut before the earliest stop string, and whether one was found."""
    positions = [i for s in stop or () if s and (i := text.find(s)) >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
