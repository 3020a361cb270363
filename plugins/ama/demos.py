"""`ama/chains`: AMA-style demonstration sets shipped as data, one set of prompt chains per task.

A demonstration set is a JSON file (`plugins/ama/demos/<task>.json`, or any path): the chains'
shared settings (labels, instructions, formats, patterns; see `PromptChain`) and "chains", a
list of {"question_demos": [...], "answer_demos": [...]}, one per chain. Files are validated on
load: a malformed one is a `ConfigError` naming the file and the entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corelib import ConfigError
from plugins.ama.chains import PromptChain
from plugins.llm import LLM

__all__ = ["DEMOS_DIR", "load_demo_set", "task_chains", "tasks"]

DEMOS_DIR = Path(__file__).with_name("demos")
SETTINGS = {
    "labels": dict,
    "unknown": list,
    "question_instruction": str,
    "answer_instruction": str,
    "question_format": str,
    "answer_format": str,
    "question_template": dict,
    "answer_pattern": str,
    "claim_pattern": str,
    "answer_stop": list,
    "max_new_tokens": int,
}
"""The shared settings a file may give (each a `PromptChain` argument) and their JSON types."""
DEMO_LISTS = ("question_demos", "answer_demos")


def tasks() -> list[str]:
    """The names of the shipped demonstration sets."""
    return sorted(path.stem for path in DEMOS_DIR.glob("*.json"))


def load_demo_set(task: str | Path) -> dict[str, Any]:
    """The validated demonstration set `task`: a shipped name (see `tasks()`) or a JSON path."""
    path = Path(task)
    if path.suffix != ".json":
        if str(task) not in tasks():
            raise ConfigError(
                f"ama/chains: no demonstration set {str(task)!r}; shipped: {tasks()} "
                "(or give the path of a .json file)"
            )
        path = DEMOS_DIR / f"{task}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the demonstration set: {exc}") from None
    _check(path, data)
    return data


def _check(path: Path, data: Any) -> None:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a demonstration set is a JSON object, got {type(data).__name__}"
        )
    unknown = set(data) - set(SETTINGS) - {"description", "chains"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(SETTINGS)}")
    if "labels" not in data:
        raise ConfigError(f"{path}: 'labels' is missing (answer word -> class, e.g. yes: 1)")
    for key, kind in SETTINGS.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise ConfigError(f"{path}: {key!r} must be a JSON {kind.__name__}")
    chains = data.get("chains")
    if not isinstance(chains, list) or not chains:
        raise ConfigError(f"{path}: 'chains' must be a non-empty list of demonstration sets")
    for index, chain in enumerate(chains):
        where = f"{path}: chains[{index}]"
        if not isinstance(chain, dict) or set(chain) != set(DEMO_LISTS):
            raise ConfigError(f"{where} must be an object with exactly {list(DEMO_LISTS)}")
        for key in DEMO_LISTS:
            demos = chain[key]
            if not isinstance(demos, list):
                raise ConfigError(f"{where}.{key} must be a list")
            for number, demo in enumerate(demos):
                if not isinstance(demo, dict) or not all(
                    isinstance(value, str) for value in demo.values()
                ):
                    raise ConfigError(f"{where}.{key}[{number}] must map fields to strings")
        try:
            _chain(None, data, index, name=str(index))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _chain(llm: Any, data: dict[str, Any], index: int, **options: Any) -> PromptChain:
    settings = {key: data[key] for key in SETTINGS if key in data}
    return PromptChain(llm, **settings, **data["chains"][index], **options)


def task_chains(
    llm: LLM,
    task: str,
    *,
    chains: Sequence[int] | None = None,
    samples: int = 1,
    temperature: float = 0.0,
    agreement: float = 0.5,
    seed: int = 0,
) -> list[PromptChain]:
    """The prompt chains of demonstration set `task` on `llm`: all, or those numbered `chains`.

    Chain i's answer() samples with seed `seed + i` (with `samples > 1`; see `PromptChain`).
    """
    data = load_demo_set(task)
    count = len(data["chains"])
    picked = list(range(count)) if chains is None else list(chains)
    bad = [i for i in picked if not isinstance(i, int) or not 0 <= i < count]
    if bad or not picked:
        raise ConfigError(f"ama/chains: {task!r} has chains 0..{count - 1}; asked for {picked}")
    return [
        _chain(
            llm,
            data,
            i,
            samples=samples,
            temperature=temperature,
            agreement=agreement,
            seed=seed + i,
            name=f"{Path(task).stem}[{i}]",
        )
        for i in picked
    ]
