"""Hostile config files and overrides: bounded, exact errors, never a traceback.

Non-string keys, integers over Python's 4,300-digit limit, odd YAML tags, deep nesting and
values no file can hold are each a ConfigError naming the file and the key path (or line);
through the CLI they exit 2 with one ``corelib: error:`` line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corelib import ConfigError, apply_overrides, check, instantiate, load_config, save_config
from corelib._bounds import MAX_DEPTH

REPO = Path(__file__).resolve().parents[2]
BIG = "9" * 5_000  # over Python's limit for int(str)
DEEP = 45_000


def _write(tmp_path: Path, name: str, text: str) -> Path:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return file


def _refused(file: Path, pattern: str) -> str:
    with pytest.raises(ConfigError, match=pattern) as caught:
        load_config(file)
    message = str(caught.value)
    assert message.startswith(f"{file}: ")
    assert len(message) < 700
    return message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("_target_: collections.OrderedDict\n1: 2\n", r"the top level: the key 1 \(int\)"),
        (
            "model: {_target_: collections.OrderedDict, null: 1}\n",
            r"model: the key None \(NoneType\)",
        ),
        ("a: [{true: 1}]\n", r"a\[0\]: the key True \(bool\)"),
        ("a: {1.5: x}\n", r"a: the key 1\.5 \(float\)"),
    ],
)
def test_a_yaml_key_that_is_not_a_string_names_file_and_key_path(
    tmp_path: Path, text: str, where: str
) -> None:
    _refused(_write(tmp_path, "keys.yaml", text), f"{where}.*config keys must be strings")


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("big.yaml", f"model:\n  width: {BIG}\n", "model.width: an integer of 5000 digits"),
        ("neg.yaml", f"a: [-{BIG}]\n", r"a\[0\]: an integer of 5000 digits"),
        ("hex.yaml", f"a: 0x{'f' * 4_000}\n", "a: an integer of more than 4300 digits"),
        ("tag.yaml", f"a: !!int {BIG}\n", "a: an integer of 5000 digits"),
        ("big.json", f'{{"model": {{"width": {BIG}}}}}', "model.width: an integer of 5000"),
        ("big.toml", f"[model]\nwidth = {BIG}\n", "model.width: an integer of 5000 digits"),
        ("neg.toml", f"a = [1, -{BIG}]\nb = {BIG}.5\n", r"a\[1\]: an integer of 5000 digits"),
        ("under.toml", f"x = 0x{BIG}\na = {{b = {BIG[:-2]}_99}}\n", "a.b: an integer of 5000"),
        ("hex.toml", f"a = 0x{'f' * 4_000}\n", "a: an integer of more than 4300 digits"),
    ],
)
def test_an_integer_over_the_digit_limit_names_file_and_key(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    _refused(_write(tmp_path, name, text), f"{where}.*at most 4300 digits")


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("date.toml", "[run]\nday = 1979-05-27\n", "run.day: a config file cannot hold a date"),
        ("time.toml", "at = 07:32:00\n", "at: a config file cannot hold a time"),
        ("lone.json", '{"a": ["\\udc80"]}', r"a\[0\]: '\\udc80' holds a lone surrogate"),
    ],
)
def test_values_a_file_could_not_write_back_are_refused_when_loaded(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    _refused(_write(tmp_path, name, text), where)


def test_long_digit_strings_and_floats_are_fine(tmp_path: Path) -> None:
    file = _write(tmp_path, "ok.toml", f'a = "{BIG}"\nb = {BIG}.5\n# {BIG}\n')
    assert load_config(file)["a"] == BIG


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!bool x\n", "line 1, column 4: !!bool 'x' is not true or false"),
        ("a: !!bool yes\n", "!!bool 'yes' is not true or false"),
        ("a: !!int junk\n", "!!int 'junk' is not an integer"),
        ("a: !!float junk\n", "!!float 'junk' is not a number"),
        ("a: !!null x\n", "!!null 'x' is not null"),
        ("a: !!timestamp x\n", "the tag 'tag:yaml.org,2002:timestamp' is not allowed"),
        ("a: !!timestamp 2001-12-14\n", "the tag 'tag:yaml.org,2002:timestamp' is not allowed"),
        ("a: !!binary aGk=\n", "the tag 'tag:yaml.org,2002:binary' is not allowed"),
        ("a: !!set {x}\n", "the tag 'tag:yaml.org,2002:set' is not allowed"),
        ("a: !!omap [x: 1]\n", "the tag 'tag:yaml.org,2002:omap' is not allowed"),
        ("a: !!python/name:os.system x\n", "python/name:os.system' is not allowed"),
        ("a: !mine x\n", "the tag '!mine' is not allowed"),
        ("b: 1\na: !!int [1]\n", "line 2, column 4: expected a scalar node"),
    ],
)
def test_odd_yaml_tags_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    _refused(_write(tmp_path, "tags.yaml", text), message)


def test_core_tags_that_spell_their_type_work(tmp_path: Path) -> None:
    text = "a: !!bool true\nb: !!int 0x1F\nc: !!float 1\nd: !!null ~\ne: !!str 1\n"
    assert load_config(_write(tmp_path, "ok.yaml", text)) == {
        "a": True,
        "b": 31,
        "c": 1.0,
        "d": None,
        "e": "1",
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("a=!!bool x", "!!bool 'x' is not true or false"),
        ("a=!!timestamp 2001-12-14", "timestamp' is not allowed"),
        (f"a={BIG}", "the value: an integer of 5000 digits"),
        (f"a=[1, {BIG}]", r"\]': \[1\]: an integer of 5000 digits"),
        ("a={1: 2}", r"the value: the key 1 \(int\) is not a string"),
        ("a=" + "[" * 2_000 + "]" * 2_000, "exceeded maximum nesting depth"),
    ],
)
def test_overrides_are_read_with_the_same_bounds(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        apply_overrides({"a": 1}, [override])
    assert len(str(caught.value)) < 700


def _deep_files() -> list[tuple[str, str]]:
    deep_aliases = "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, MAX_DEPTH + 2))
    return [
        ("deep.json", '{"a": ' + "[" * DEEP + "]" * DEEP + "}"),
        ("objects.json", '{"a": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"),
        ("deep.toml", "a = " + "[" * 39_000 + "]" * 39_000 + "\n"),
        ("tables.toml", "a = " + "{b = " * 39_000 + "1" + "}" * 39_000 + "\n"),
        ("dotted.toml", "[" + ".".join(["a"] * 39_000) + "]\nx = 1\n"),
        ("keys.toml", ".".join(["a"] * 39_000) + " = 1\n"),
        ("aliases.yaml", "x0: &x0 [1]\n" + deep_aliases),
        ("flow.yaml", "a: " + "[" * DEEP + "]" * DEEP + "\n"),
        ("block.yaml", "".join(" " * i + "- \n" for i in range(3_000))),
        ("just_over.json", '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"),
    ]


@pytest.mark.parametrize(("name", "text"), _deep_files())
def test_deep_nesting_is_a_config_error_never_a_recursion_error(
    tmp_path: Path, name: str, text: str
) -> None:
    pattern = f"nested deeper than {MAX_DEPTH} levels|exceeded maximum nesting depth"
    _refused(_write(tmp_path, name, text), pattern)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("cycle.json", '{"a": {"b": {"_ref_": "a"}}}'),
        ("cycle.toml", '[a.b]\nc = {_ref_ = "a"}\n'),
        ("cycle.yaml", "a: &a {b: *a}\n"),
    ],
)
def test_a_cycle_is_refused_when_loaded(tmp_path: Path, name: str, text: str) -> None:
    _refused(_write(tmp_path, name, text), "cycle: a.b.* refers back to its ancestor a")


BRACKETS = "[{" * 2_000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("strings.json", f'{{"a": "{BRACKETS}", "b\\"{BRACKETS}": ["\\\\", "{BRACKETS}"]}}'),
        (
            "strings.toml",
            f"a = \"{BRACKETS}\"\nb = '{BRACKETS}'\n# {BRACKETS}\n"
            f'c = """\n{BRACKETS}\\"""\n"""\nd = \'\'\'\n{BRACKETS}\'\'\'\n'
            f'"{BRACKETS}" = [1]  # {BRACKETS}\n',
        ),
    ],
)
def test_brackets_in_strings_and_comments_do_not_count(
    tmp_path: Path, name: str, text: str
) -> None:
    cfg = load_config(_write(tmp_path, name, text))
    assert cfg["a"] == BRACKETS


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_escapes_at_every_level_of_a_tree_at_the_limit_read_back(
    tmp_path: Path, suffix: str
) -> None:
    """Escape tables add a level to the file, not to the tree: the file still loads."""
    cfg: Any = {"_ref_": 1}
    for _ in range(MAX_DEPTH - 1):
        cfg = {"_ref_": cfg}
    assert load_config(save_config(cfg, tmp_path / f"c{suffix}")) == cfg


def _deep_config(depth: int) -> dict[str, Any]:
    """A config ``depth`` levels deep: a target node holding nested lists."""
    value: Any = [1]
    for _ in range(depth - 4):
        value = [value]
    return {"main": {"_target_": "builtins.len", "_args_": [value]}}


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_configs_up_to_the_limit_load_override_check_build_and_save(
    tmp_path: Path, suffix: str
) -> None:
    file = save_config(_deep_config(MAX_DEPTH), tmp_path / f"deep{suffix}")
    cfg = apply_overrides(load_config(file), ["+main.extra=1", "~main.extra"])
    assert cfg == _deep_config(MAX_DEPTH)
    assert check(cfg["main"]) == []
    assert instantiate(cfg["main"]) == 1
    again = load_config(save_config(cfg, tmp_path / f"again{suffix}"))
    assert again == cfg


def test_an_override_making_a_tree_too_deep_is_refused_on_save(tmp_path: Path) -> None:
    innermost = "main._args_[0]" + "[0]" * (MAX_DEPTH - 3)  # the 1 in the deepest list
    cfg = apply_overrides(_deep_config(MAX_DEPTH), [f"{innermost}=[1]"])
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH} levels"):
        save_config(cfg, tmp_path / "c.json")


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
@pytest.mark.parametrize(
    ("cfg", "where"),
    [
        ({"a": {1, 2}}, "a: a config file cannot hold a set"),
        ({"a": [b"raw"]}, r"a\[0\]: a config file cannot hold a bytes"),
        ({"a": "bad \udc80"}, "a: 'bad \\\\udc80' holds a lone surrogate"),
        ({"a": {"k\udc80": 1}}, "a: 'k\\\\udc80' holds a lone surrogate"),
        ({"a": 10**5_000}, "a: an integer of more than 4300 digits"),
    ],
)
def test_save_refuses_what_no_file_can_hold_naming_the_key(
    tmp_path: Path, suffix: str, cfg: Any, where: str
) -> None:
    file = tmp_path / f"c{suffix}"
    with pytest.raises(ConfigError, match=f"^{file}: {where}"):
        save_config(cfg, file)
    assert not file.exists()


@pytest.mark.parametrize("root", [{1, 2}, b"raw", 1j])
@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_save_refuses_a_root_no_file_can_hold(tmp_path: Path, suffix: str, root: Any) -> None:
    with pytest.raises(
        ConfigError, match=f"the top level: a config file cannot hold a {type(root).__name__}"
    ):
        save_config(root, tmp_path / f"c{suffix}")


def test_messages_quote_at_most_a_few_hundred_characters(tmp_path: Path) -> None:
    long_key = "k" * 100_000
    file = _write(tmp_path, "long.yaml", f"a: !{long_key} x\n")
    _refused(file, "is not allowed")
    with pytest.raises(ConfigError) as caught:
        apply_overrides({"a": {}}, [f"a.{long_key}=1"])
    assert len(str(caught.value)) < 700


# Through the real CLI: exit 2, one "corelib: error:" line naming the file, no traceback.


def _corelib(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "corelib", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "name", "text", "overrides"),
    [
        ("show", "keys.yaml", "_target_: collections.OrderedDict\n1: 2\n", []),
        ("check", "big.json", f'{{"a": {BIG}}}', []),
        ("run", "big.toml", f"a = {BIG}\n", []),
        ("show", "tags.yaml", "a: !!bool x\n", []),
        ("check", "deep.json", '{"a": ' + "[" * DEEP + "]" * DEEP + "}", []),
        ("show", "deep.toml", "a = " + "[" * 39_000 + "]" * 39_000 + "\n", []),
        ("show", "d600.json", '{"a": ' + "[" * 600 + "]" * 600 + "}", []),
        ("show", "ok.yaml", "a: 1\n", ["a=!!bool x"]),
        ("show", "ok.yaml", "a: 1\n", [f"a={BIG}"]),
    ],
)
def test_the_cli_exits_2_with_one_error_line(
    tmp_path: Path, command: str, name: str, text: str, overrides: list[str]
) -> None:
    file = _write(tmp_path, name, text)
    result = _corelib(command, file, *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("corelib: error: "), lines
    assert str(file) in lines[0] or "override" in lines[0]


def test_the_cli_shows_a_config_just_under_the_limit(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1
    file = _write(tmp_path, "d499.json", '{"a": ' + "[" * depth + "]" * depth + "}")
    result = _corelib("show", file, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a:")
