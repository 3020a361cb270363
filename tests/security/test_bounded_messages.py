"""Error messages quote at most a couple of hundred characters of any value.

A 1.6 KB YAML alias bomb (9 levels of 9 aliases: 9**10 leaves when expanded) must not make an
error message, or the memory to build one, explode: values are quoted with ``quote``.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from corelib import CorelibError, check, instantiate, load_config

MESSAGE_LIMIT = 1_000  # several quoted parts of at most ~200 characters each, plus the words
MEMORY_LIMIT = 50 * 2**20


def takes_an_int(n: int) -> int:
    return n


def _bomb_yaml(main: str) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join([*lines, f"main: {main}"]) + "\n"


BOMBS = {
    "partial": "{_target_: collections.OrderedDict, _partial_: *a9}",
    "recursive": "{_target_: collections.OrderedDict, _recursive_: *a9}",
    "args": "{_target_: collections.OrderedDict, _args_: {bomb: *a9}}",
    "target": "{_target_: *a9}",
    "import": "{fn: {_import_: *a9}}",
    "typed": "{_target_: test_bounded_messages.takes_an_int, n: *a9}",
    "typed positional": "{_target_: test_bounded_messages.takes_an_int, _args_: [*a9]}",
    "unknown keyword": "{_target_: test_bounded_messages.takes_an_int, n: 1, *a9 : 2}",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_an_alias_bomb_makes_short_messages_in_little_memory(kind, tmp_path: Path):
    source = tmp_path / "bomb.yaml"
    source.write_text(_bomb_yaml(BOMBS[kind]))
    assert source.stat().st_size < 1_700
    try:
        cfg = load_config(source)["main"]
    except CorelibError as error:  # a format that refuses the bomb outright is fine too
        assert len(str(error)) < MESSAGE_LIMIT
        return
    allow = ["collections", "test_bounded_messages"]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        problems = check(cfg, allow=allow)
        with pytest.raises(CorelibError) as info:
            instantiate(cfg, _allow_=allow)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problems, "check must report the bad value"
    assert all(len(str(problem)) < MESSAGE_LIMIT for problem in problems), problems
    assert len(str(info.value)) < MESSAGE_LIMIT
    assert peak < MEMORY_LIMIT
    assert time.perf_counter() - started < 20


@pytest.mark.parametrize(
    "target",
    [
        "nosuch/" + "x" * 100_000,  # a registry name
        "nosuchpackage." + "x" * 100_000,  # an import path
        "y" * 100_000 + ".Name",  # an import path whose missing module is the long part
        "y" * 100_000 + ":Name",
    ],
)
def test_a_huge_target_string_is_quoted_short(target):
    problems = check({"_target_": target})
    assert problems and all(len(str(problem)) < MESSAGE_LIMIT for problem in problems)
    with pytest.raises(CorelibError) as info:
        instantiate({"_target_": target})
    assert len(str(info.value)) < MESSAGE_LIMIT
