"""Aligned text tables for the commands that list things."""

from __future__ import annotations

from collections.abc import Sequence

from corelib._text import printable

__all__ = ["table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> str:
    """``headers`` and ``rows`` in left-aligned columns; every cell printed escaped."""
    rows = [[printable(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
