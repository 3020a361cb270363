"""YAML files: YAML 1.2 core-schema scalars, a safe loader only, anchors, located errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from corelib import ConfigError, LazyConfig, load_config, save_config


def load_text(tmp_path: Path, text: str) -> object:
    file = tmp_path / "cfg.yaml"
    file.write_text(text)
    return load_config(file)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-3", 0.001),  # a string for PyYAML's 1.1 resolver
        ("1E+3", 1000.0),
        (".5", 0.5),
        ("-2.", -2.0),
        ("+12", 12),
        ("010", 10),  # octal 8 in YAML 1.1
        ("0o17", 15),
        ("0x1F", 31),
        ("yes", "yes"),  # true in YAML 1.1
        ("on", "on"),
        ("No", "No"),
        ("true", True),
        ("FALSE", False),
        ("~", None),
        ("Null", None),
        ("", None),
        ("2001-12-14", "2001-12-14"),  # a date in YAML 1.1
        ("1_000", "1_000"),
        ("1:20", "1:20"),  # sexagesimal 80 in YAML 1.1
        ("0b101", "0b101"),
        ("'1e-3'", "1e-3"),
    ],
)
def test_plain_scalars_resolve_by_the_yaml_1_2_core_schema(
    tmp_path: Path, text: str, expected: object
) -> None:
    value = load_text(tmp_path, f"v: {text}\n")["v"]  # type: ignore[index]
    assert value == expected and type(value) is type(expected)


def test_special_floats(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "a: .inf\nb: -.Inf\nc: .NaN\n")
    assert cfg == {"a": math.inf, "b": -math.inf, "c": cfg["c"]}  # type: ignore[index]
    assert math.isnan(cfg["c"])  # type: ignore[index]


def test_mappings_load_as_lazy_configs_with_attribute_access(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "trainer:\n  optimizer: {lr: 1e-3}\n  layers: [{w: 1}]\n")
    assert isinstance(cfg, LazyConfig)
    assert cfg.trainer.optimizer.lr == 0.001
    assert isinstance(cfg.trainer.layers[0], LazyConfig)


def test_anchors_load_as_one_shared_object_and_merge_keys_work(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        "model: &m {_target_: my_app.Net, width: 4}\n"
        "opt: {params: *m, model: *m}\n"
        "derived:\n  <<: *m\n  width: 8\n",
    )
    assert cfg.opt.params is cfg.model and cfg.opt.model is cfg.model  # type: ignore[attr-defined]
    assert cfg.derived == {"_target_": "my_app.Net", "width": 8}  # type: ignore[attr-defined]


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml: line 2, column 10: did not find expected"):
        load_text(tmp_path, "a: 1\nb: [1, 2]]\nc: 3\n")
    with pytest.raises(ConfigError, match=r"line 4, column 1: .*started at line 2, column 4"):
        load_text(tmp_path, 'a: 1\nb: "unclosed\nc: 3\n')


def test_a_duplicate_key_is_an_error_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cfg\.yaml: line 3, column 3: found duplicate key 'lr'"):
        load_text(tmp_path, "opt:\n  lr: 1\n  lr: 2\n")


def test_python_tags_are_refused_without_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"x: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n"
    with pytest.raises(ConfigError, match=r"cfg\.yaml: line 1.*python/object/apply"):
        load_text(tmp_path, text)
    assert not marker.exists()


def test_strings_that_look_like_other_types_are_quoted_for_1_1_and_1_2_readers(
    tmp_path: Path,
) -> None:
    tricky = ["1e-3", "yes", "on", "010", "null", "true", "2001-12-14", "0x1F", ".inf", "~", ""]
    file = save_config({"values": tricky}, tmp_path / "out.yaml")
    assert load_config(file)["values"] == tricky
    assert yaml.safe_load(file.read_text())["values"] == tricky  # a YAML 1.1 reader agrees


def test_numbers_are_written_so_they_read_back_as_numbers(tmp_path: Path) -> None:
    numbers = [0.001, 1e20, -1e-300, 10, -0.0, math.inf, -math.inf, True, None]
    file = save_config({"n": numbers}, tmp_path / "out.yaml")
    loaded = load_config(file)["n"]
    assert loaded == numbers
    assert [type(x) for x in loaded] == [type(x) for x in numbers]


def test_shared_nodes_are_written_as_anchor_and_alias(tmp_path: Path) -> None:
    shared = {"_target_": "my_app.Net", "width": 4}
    file = save_config({"a": shared, "b": [shared]}, tmp_path / "out.yaml")
    text = file.read_text()
    assert text.count("&") == 1 and text.count("*") == 1
    loaded = load_config(file)
    assert loaded.b[0] is loaded.a
