"""Error messages quote at most a couple of hundred characters of any value.

A 1.6 KB YAML alias bomb (9 levels of 9 aliases: 9**10 leaves when expanded) must not make an
error message, or the memory to build one, explode: values are quoted with ``quote``. Nor
must a huge key (a 2 MB JSON key, a 100 KB YAML key reused at 400 levels, a 100 KB ``--entry``):
key paths cut long keys and keep the start and end of a long path.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from corelib import CorelibError, check, instantiate, load_config
from corelib._cli import main

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


PATH_MESSAGE_LIMIT = 1_500  # a path of at most ~500 characters, quoted, plus the words


def _problems_and_error(cfg: object) -> tuple[list[str], str, int]:
    """``check``'s problems and ``instantiate``'s error for ``cfg``, and the peak memory of both."""
    tracemalloc.start()
    try:
        problems = [str(problem) for problem in check(cfg)]
        with pytest.raises(CorelibError) as info:
            instantiate(cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return problems, str(info.value), peak


@pytest.mark.timeout(60)
def test_a_huge_key_reused_at_every_level_makes_a_short_path(tmp_path: Path) -> None:
    # 100 KB of file: one key, anchored once and used as the key of 400 nested mappings
    nested = "{*k : " * 400 + "{_target_: nope/x}" + "}" * 400
    source = tmp_path / "deep.yaml"
    source.write_text(f"k: &k {'K' * 100_000}\nmain: {nested}\n")
    problems, error, peak = _problems_and_error(load_config(source)["main"])
    [problem] = problems
    shortened = "K" * 40 + "…[+99960 chars]"
    assert problem.startswith(f"{shortened}.{shortened}.") and "…[+392 keys]…" in problem
    assert len(problem) < PATH_MESSAGE_LIMIT and len(error) < PATH_MESSAGE_LIMIT
    assert peak < 5 * 2**20  # spelling the whole path took 80 MB


@pytest.mark.timeout(60)
def test_a_huge_key_in_json_makes_a_short_path(tmp_path: Path) -> None:
    source = tmp_path / "wide.json"
    source.write_text(json.dumps({"in_dim": {"K" * 2_000_000: {"_target_": "nope/x"}}}))
    problems, error, peak = _problems_and_error(load_config(source))
    [problem] = problems
    assert problem.startswith(f"in_dim.{'K' * 40}…[+1999960 chars] (target 'nope/x'): ")
    assert len(problem) < PATH_MESSAGE_LIMIT and len(error) < PATH_MESSAGE_LIMIT
    assert peak < 5 * 2**20


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "entry",
    ["e" * 100_000, "e." * 50_000, "main." + "e" * 100_000],
    ids=["no such key", "malformed", "under a node"],
)
def test_a_huge_entry_makes_a_short_message(
    entry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    config = tmp_path / "ok.yaml"
    config.write_text("main: {_target_: collections.OrderedDict}\n")
    tracemalloc.start()
    try:
        code = main(["run", str(config), "--entry", entry, "--allow-import", "collections"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith("corelib: error: ")
    assert len(line) < PATH_MESSAGE_LIMIT
    assert peak < 5 * 2**20
