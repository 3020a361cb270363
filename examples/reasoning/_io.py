"""Atomic file writes and JSON Lines reading for the pipeline's artifacts."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["numbered_jsonl", "read_json", "read_jsonl", "write_json", "write_jsonl", "write_text"]


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_text(path, json.dumps(data, indent=1) + "\n")


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write one JSON document per line, atomically."""
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_json(path: Path) -> Any:
    """The JSON document in ``path``."""
    return json.loads(path.read_text(encoding="utf-8"))


def numbered_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Each JSON document of ``path`` (one per non-blank line) with its line number.

    A line that is not valid JSON is a ValueError naming the file and the line.
    """
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, or an integer too long to read
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc
                raise ValueError(f"{path}, line {number}: not valid JSON ({reason})") from None
            yield number, document


def read_jsonl(path: Path) -> list[Any]:
    """The JSON documents of ``path``, one per line (see :func:`numbered_jsonl`)."""
    return [document for _, document in numbered_jsonl(path)]
