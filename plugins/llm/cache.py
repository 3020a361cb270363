"""`CachedLLM`: a SQLite disk cache in front of any backend."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from plugins.llm._chunks import chunks
from plugins.llm._types import LLM, Completion

_SCHEMA = """CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    completions TEXT NOT NULL,
    created REAL NOT NULL
)"""
_SELECT_CHUNK = 500  # keys per SELECT, below SQLite's limit on bound variables


class CachedLLM:
    """Answers from the cache at ``path`` what it has seen, and asks ``llm`` for the rest.

    Keys are a hash of the backend's ``identity`` (model, base URL, chat mode, dtype; never an
    API key), the prompt and every generation parameter. New results are committed every
    ``chunk_size`` prompts, so an interrupted run resumes where it stopped; failed (empty)
    results are not stored. Sampled calls without a seed (``temperature > 0, seed=None``) draw
    fresh randomness and bypass the cache: pass a seed to cache samples. ``llm`` must have an
    ``identity`` property (a JSON-able dict), as the built-in backends do. ``hits`` counts
    prompts answered from the cache, ``misses`` distinct prompts sent to ``llm``.
    """

    def __init__(self, llm: LLM, path: str | os.PathLike[str], *, chunk_size: int = 64) -> None:
        if not isinstance(getattr(llm, "identity", None), dict):
            raise TypeError(
                f"llm/cached: {type(llm).__qualname__} has no 'identity' dict property to key the "
                "cache on (give it one naming its model and settings)"
            )
        if chunk_size < 1:
            raise ValueError(f"llm/cached: chunk_size must be >= 1, got {chunk_size}")
        self.llm = llm
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.hits = 0
        self.misses = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"CachedLLM(llm={self.llm!r}, path={str(self.path)!r})"

    @property
    def identity(self) -> dict[str, Any]:
        """The wrapped backend's identity."""
        return self.llm.identity  # type: ignore[attr-defined]

    @property
    def failures(self) -> int:
        """The wrapped backend's failure count."""
        return getattr(self.llm, "failures", 0)

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
        """Generate ``n`` completions for each prompt, from the cache where it can."""
        parameters: dict[str, Any] = dict(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            stop=stop,
            seed=seed,
        )
        if temperature > 0 and seed is None:
            return self.llm.generate(prompts, **parameters)
        keyed = dict(parameters, seed=None if temperature == 0 else seed)  # greedy ignores seeds
        identity = self.identity
        keys = {prompt: _key(identity, prompt, keyed) for prompt in prompts}
        found = self._load(list(set(keys.values())))
        missing = [prompt for prompt in dict.fromkeys(prompts) if keys[prompt] not in found]
        with self._lock:
            self.hits += sum(keys[p] in found for p in prompts)
            self.misses += len(missing)
        fresh: dict[str, list[Completion]] = {}
        for chunk in chunks(missing, self.chunk_size):
            results = dict(zip(chunk, self.llm.generate(chunk, **parameters), strict=True))
            self._store({keys[p]: r for p, r in results.items() if r})
            fresh.update(results)
        return [found[keys[p]] if keys[p] in found else fresh[p] for p in prompts]

    def close(self) -> None:
        """Close the database (the object is unusable afterwards)."""
        with self._lock:
            self._db.close()

    def _load(self, keys: list[str]) -> dict[str, list[Completion]]:
        found: dict[str, list[Completion]] = {}
        with self._lock:
            for chunk in chunks(keys, _SELECT_CHUNK):
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, completions FROM completions WHERE key IN ({marks})"
                for key, value in self._db.execute(query, chunk):
                    found[key] = [Completion(**fields) for fields in json.loads(value)]
        return found

    def _store(self, results: dict[str, list[Completion]]) -> None:
        now = time.time()
        rows = [
            (key, json.dumps([attrs.asdict(c) for c in completions]), now)
            for key, completions in results.items()
        ]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?, ?)", rows)


def _key(identity: dict[str, Any], prompt: str, parameters: dict[str, Any]) -> str:
    material = {"identity": identity, "prompt": prompt, **parameters}
    encoded = json.dumps(material, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()
