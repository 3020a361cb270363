"""``_base_``: files that build on other files, at the root and at any node, in every format."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _corelib_cli import run_corelib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from my_app import Net

from corelib import ConfigError, InstantiationError, instantiate, load_config, save_config, to_dict

DATA = (".yaml", ".json", ".toml")
FORMATS = (*DATA, ".py")


def write(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as a config file of ``path``'s format (.py: module-level names)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".py":
        path.write_text("".join(f"{key} = {value!r}\n" for key, value in data.items()))
        return path
    return save_config(data, path)


BASE = {
    "model": {"_target_": "my_app.Net", "width": 4},
    "lr": 0.1,
    "tags": ["a", "b"],
    "kept": {"x": 1, "y": 2},
}


@pytest.mark.parametrize("top_format", FORMATS)
@pytest.mark.parametrize("base_format", FORMATS)
def test_a_root_base_is_merged_under_the_files_own_keys(tmp_path, top_format, base_format):
    write(tmp_path / f"base{base_format}", BASE)
    own = {"_base_": f"base{base_format}", "lr": 0.2, "tags": ["c"], "kept": {"y": 3}}
    cfg = load_config(write(tmp_path / f"top{top_format}", own))
    assert to_dict(cfg) == {
        "model": {"_target_": "my_app.Net", "width": 4},
        "lr": 0.2,  # scalars are replaced
        "tags": ["c"],  # so are lists
        "kept": {"x": 1, "y": 3},  # dicts merge key by key
    }
    assert instantiate(cfg.model) == Net(4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_nested_base_pulls_a_file_in_place_relative_to_the_file_naming_it(tmp_path, fmt):
    leaf = ".yaml" if fmt == ".py" else fmt  # a .py config has no root _target_
    write(tmp_path / "common" / f"net{leaf}", {"_target_": "my_app.Net", "width": 2})
    write(tmp_path / "models" / f"wide{fmt}", {"_base_": f"../common/net{leaf}", "width": 64})
    top = write(tmp_path / f"top{fmt}", {"model": {"_base_": f"models/wide{fmt}"}, "n": 1})
    cfg = load_config(top)
    assert to_dict(cfg) == {"model": {"_target_": "my_app.Net", "width": 64}, "n": 1}
    assert instantiate(cfg)["model"] == Net(64)


def test_python_configs_name_bases_as_module_names_and_node_keys(tmp_path):
    write(tmp_path / "base.yaml", {"lr": 0.1, "model": {"_target_": "my_app.Net", "width": 4}})
    write(tmp_path / "presets" / "net.json", {"_target_": "my_app.Net", "width": 32})
    (tmp_path / "top.py").write_text(
        textwrap.dedent(
            """
            from corelib import L
            from my_app import Net

            _base_ = "base.yaml"
            lr = 0.5
            model = L(Net)(_base_="presets/net.json")
            head = dict(_base_="presets/net.json", width=1)
            """
        )
    )
    cfg = load_config(tmp_path / "top.py")
    assert cfg.lr == 0.5
    assert instantiate(cfg.model) == Net(32)  # the same target: the base's keys merge in
    assert instantiate(cfg.head) == Net(1)
    assert "_base_" not in cfg and "_base_" not in cfg.model


def test_a_list_of_bases_merges_in_order_then_the_own_keys(tmp_path):
    write(tmp_path / "a.yaml", {"x": 1, "y": 1, "z": 1})
    write(tmp_path / "b.toml", {"y": 2, "z": 2})
    cfg = load_config(write(tmp_path / "top.json", {"_base_": ["a.yaml", "b.toml"], "z": 3}))
    assert to_dict(cfg) == {"x": 1, "y": 2, "z": 3}


def test_delete_replaces_instead_of_merging_and_disappears(tmp_path):
    write(tmp_path / "base.yaml", {"opt": {"lr": 0.1, "momentum": 0.9}, "other": {"a": 1}})
    top = tmp_path / "top.yaml"
    top.write_text(
        "_base_: base.yaml\nopt:\n  _delete_: true\n  lr: 0.5\nother:\n  _delete_: false\n  b: 2\n"
    )
    assert to_dict(load_config(top)) == {"opt": {"lr": 0.5}, "other": {"a": 1, "b": 2}}


def test_bases_named_over_and_over_cannot_explode(tmp_path):
    (tmp_path / "b0.yaml").write_text("x: 1\n")
    for level in range(1, 40):  # each level names the one below twice: 2**40 nodes
        below = f"b{level - 1}.yaml"
        (tmp_path / f"b{level}.yaml").write_text(
            f"l: {{_base_: {below}}}\nr: {{_base_: {below}}}\n"
        )
    with pytest.raises(ConfigError, match="expand to more than 100,000 copied nodes"):
        load_config(tmp_path / "b39.yaml")


@pytest.mark.parametrize("fmt", DATA)
def test_delete_must_be_true_or_false(tmp_path, fmt):
    top = write(tmp_path / f"top{fmt}", {"opt": {"_delete_": "yes", "lr": 1}})
    with pytest.raises(ConfigError, match=r"opt\._delete_: expected true or false, got 'yes'"):
        load_config(top)


def test_delete_speaks_of_the_bases_of_its_own_file_only(tmp_path):
    write(tmp_path / "c.yaml", {"opt": {"lr": 1, "momentum": 2}})
    (tmp_path / "b.yaml").write_text("_base_: c.yaml\nopt:\n  _delete_: true\n  lr: 3\n")
    write(tmp_path / "r.yaml", {"part": {"opt": {"eps": 4}}})
    top = write(tmp_path / "top.yaml", {"_base_": "r.yaml", "part": {"_base_": "b.yaml"}})
    # b's opt replaced c's; in top, part (b's tree) merges into r's part as usual
    assert to_dict(load_config(top)) == {"part": {"opt": {"eps": 4, "lr": 3}}}


def test_a_target_spelled_another_way_is_the_same_target(tmp_path):
    write(tmp_path / "base.yaml", {"model": {"_target_": "my_app:Net", "width": 2}})
    (tmp_path / "top.py").write_text(
        "from corelib import L\nfrom my_app import Net\n_base_ = 'base.yaml'\nmodel = L(Net)()\n"
    )
    assert instantiate(load_config(tmp_path / "top.py").model) == Net(2)


def test_a_different_target_replaces_the_base_node_without_stale_keywords(tmp_path):
    write(tmp_path / "base.yaml", {"model": {"_target_": "my_app.Opt", "params": 1, "model": 2}})
    top = write(tmp_path / "top.yaml", {"_base_": "base.yaml", "model": {"_target_": "my_app.Net"}})
    cfg = load_config(top)
    assert to_dict(cfg) == {"model": {"_target_": "my_app.Net"}}
    assert instantiate(cfg.model) == Net()


def test_shared_nodes_stay_shared_where_they_are_not_merged_into(tmp_path):
    (tmp_path / "base.yaml").write_text("a: &n {w: 1}\nb: *n\nc: &m {w: 1}\nd: *m\n")
    (tmp_path / "top.yaml").write_text("_base_: base.yaml\nc: {w: 2}\n")
    cfg = load_config(tmp_path / "top.yaml")
    assert cfg.a is cfg.b  # untouched: still one node
    assert cfg.c == {"w": 2} and cfg.d == {"w": 1}  # merged into: the other path keeps its own


def test_a_base_named_twice_gives_two_independent_nodes(tmp_path):
    write(tmp_path / "net.yaml", {"_target_": "my_app.Net", "width": 3})
    top = write(tmp_path / "top.yaml", {"a": {"_base_": "net.yaml"}, "b": {"_base_": "net.yaml"}})
    cfg = load_config(top)
    assert cfg.a is not cfg.b and cfg.a == cfg.b
    built = instantiate(cfg)
    assert built["a"] is not built["b"]


@pytest.mark.parametrize("fmt", DATA)
def test_a_cycle_of_bases_is_an_error_naming_the_chain(tmp_path, fmt):
    write(tmp_path / f"a{fmt}", {"_base_": f"b{fmt}", "x": 1})
    write(tmp_path / f"b{fmt}", {"m": {"_base_": f"c{fmt}"}})
    write(tmp_path / f"c{fmt}", {"_base_": f"a{fmt}"})
    with pytest.raises(ConfigError, match="a cycle of bases") as info:
        load_config(tmp_path / f"a{fmt}")
    chain = " -> ".join(str(tmp_path / f"{n}{fmt}") for n in "abca")
    assert chain in str(info.value)


def test_a_file_that_is_its_own_base_is_a_cycle(tmp_path):
    write(tmp_path / "a.yaml", {"m": {"_base_": "a.yaml"}})
    with pytest.raises(ConfigError, match="a cycle of bases"):
        load_config(tmp_path / "a.yaml")


def _chain(folder: Path, length: int) -> Path:
    """``c0.json`` -> ``c1.json`` -> ... each setting ``v`` and a key of its own."""
    folder.mkdir(exist_ok=True)
    for index in range(length):
        data: dict[str, Any] = {f"k{index}": index, "v": index, "node": {f"n{index}": index}}
        if index + 1 < length:
            data["_base_"] = f"c{index + 1}.json"
        (folder / f"c{index}.json").write_text(json.dumps(data))
    return folder / "c0.json"


@pytest.mark.timeout(300)
def test_a_chain_of_ten_thousand_bases_loads_without_recursion(tmp_path):
    cfg = load_config(_chain(tmp_path, 10_000))
    assert cfg.v == 0
    assert len(cfg) == 10_000 + 2 and len(cfg.node) == 10_000
    assert cfg.k9999 == 9999


@pytest.mark.timeout(300)
def test_a_chain_loads_in_time_linear_in_its_length(tmp_path):
    def seconds(length: int) -> float:
        top = _chain(tmp_path / str(length), length)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            load_config(top)
            best = min(best, time.perf_counter() - start)
        return best

    short, long = seconds(100), seconds(800)
    assert long < 8 * short * 3  # 8x the files; quadratic merging would be about 64x


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (["x.yaml", 3], "expected a file name or a list of file names"),
        ([], "expected a file name or a list of file names"),
        ("missing.yaml", r"no such file .*missing\.yaml; close matches: 'mising\.yaml'"),
        ("notes.txt", "unknown config file type"),
        ("list.yaml", "holds .*not a mapping"),
    ],
)
def test_bad_bases_are_errors_naming_the_file_key_path_and_base(tmp_path, base, message):
    (tmp_path / "mising.yaml").write_text("a: 1\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    top = write(tmp_path / "top.yaml", {"outer": {"inner": {"_base_": base}}})
    with pytest.raises(ConfigError, match=message) as info:
        load_config(top)
    assert str(top) in str(info.value) and "outer.inner._base_" in str(info.value)


def test_bases_survive_save_and_load_as_the_merged_config(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    cfg = load_config(write(tmp_path / "top.yaml", {"_base_": "base.yaml", "lr": 1.0}))
    for fmt in DATA:
        again = load_config(save_config(cfg, tmp_path / f"saved{fmt}"))
        assert to_dict(again) == to_dict(cfg)
        assert instantiate(again.model) == instantiate(cfg.model)


# Safe mode: the CLI loads YAML/JSON/TOML files as untrusted data.


def _safe_layout(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "parts").mkdir(parents=True)
    (tmp_path / "outside.yaml").write_text("width: 99\n")
    (project / "netlib.py").write_text(
        "class Net:\n    def __init__(self, width=1):\n        self.width = width\n"
        "    def __repr__(self):\n        return f'Net({self.width})'\n"
    )
    (project / "parts" / "net.yaml").write_text("_target_: netlib.Net\nwidth: 5\n")
    (project / "code.py").write_text("width = 7\n")
    (project / "parts" / "escape.yaml").symlink_to(tmp_path / "outside.yaml")
    return project


def test_safe_mode_allows_bases_in_the_folder_of_the_config_and_below(tmp_path):
    project = _safe_layout(tmp_path)
    (project / "top.yaml").write_text("main:\n  _base_: parts/net.yaml\n")
    result = run_corelib(project, "run", "top.yaml", "--allow-import", "netlib")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Net(5)"


@pytest.mark.parametrize(
    ("base", "rule"),
    [
        ("../outside.yaml", "lies outside"),
        ("parts/escape.yaml", "lies outside"),  # a symlink out of the folder
        ("code.py", "a data file cannot name a .py base"),
    ],
)
def test_safe_mode_refuses_bases_outside_the_folder_and_python_bases(tmp_path, base, rule):
    project = _safe_layout(tmp_path)
    (project / "top.yaml").write_text(f"main:\n  _target_: netlib.Net\n  _base_: {base}\n")
    result = run_corelib(project, "show", "top.yaml")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corelib: error: top.yaml: main._base_")
    assert f"base '{base}'" in lines[0] and "refused in safe mode" in lines[0] and rule in lines[0]
    trusted = run_corelib(project, "show", "top.yaml", "--unsafe")
    assert trusted.returncode == 0, trusted.stderr


def test_safe_mode_refuses_before_looking_for_the_file(tmp_path):
    project = _safe_layout(tmp_path)
    (project / "top.yaml").write_text("main:\n  _base_: ../missing.yaml\n")
    result = run_corelib(project, "show", "top.yaml")
    assert result.returncode == 2
    assert "refused in safe mode" in result.stderr and "no such file" not in result.stderr


def test_load_config_safe_applies_the_same_limits_from_python(tmp_path):
    project = _safe_layout(tmp_path)
    (project / "top.yaml").write_text("main:\n  _base_: ../outside.yaml\n")
    assert load_config(project / "top.yaml").main == {"width": 99}  # trusted by default
    with pytest.raises(ConfigError, match="refused in safe mode"):
        load_config(project / "top.yaml", safe=True)


def test_python_configs_may_name_any_base(tmp_path):
    project = _safe_layout(tmp_path)
    (project / "top.py").write_text("_base_ = '../outside.yaml'\n")
    result = run_corelib(project, "show", "top.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "width: 99\n"


def test_a_cycle_from_the_command_line_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\n")
    result = run_corelib(tmp_path, "show", "a.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "corelib: error: a.yaml: a cycle of bases: a.yaml -> b.yaml -> a.yaml"
    )


# Property: any config with bases survives save/load and builds the same objects.

_keys = st.sampled_from(["a", "b", "c", "d"])
_leaves = st.one_of(
    st.integers(-5, 5), st.text("xyz ", max_size=4), st.lists(st.integers(0, 3), max_size=3)
)
_targets = st.one_of(
    st.builds(lambda w: {"_target_": "my_app.Net", "width": w}, st.integers(0, 9)),
    st.builds(lambda lr: {"_target_": "my_app.Optimizer", "lr": lr}, st.integers(1, 9)),
)
_values = st.recursive(
    st.one_of(_leaves, _targets),
    lambda children: st.dictionaries(_keys, children, max_size=3),
    max_leaves=6,
)
_trees = st.dictionaries(_keys, _values, max_size=3)  # a root holds keys, not a target


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The rule, spelled out recursively: dicts merge unless their targets differ."""
    result = dict(base)
    for key, value in own.items():
        current = result.get(key)
        same_target = not (
            isinstance(current, dict)
            and isinstance(value, dict)
            and "_target_" in current
            and "_target_" in value
            and current["_target_"] != value["_target_"]
        )
        if isinstance(current, dict) and isinstance(value, dict) and same_target:
            result[key] = _merged(current, value)
        else:
            result[key] = value
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=_trees,
    own=_trees,
    nested=_trees,
    formats=st.tuples(*[st.sampled_from(DATA)] * 3),
)
@example(  # a key merged into a target that does not take it: fails alike everywhere
    base={"b": {"_target_": "my_app.Net", "width": 0}},
    own={"b": {"a": 0}},
    nested={},
    formats=(".yaml", ".toml", ".json"),
)
@example(  # TOML writes the table 'a' after the scalar 'b'
    base={"d": {"a": {"_target_": "my_app.Net", "width": 4}, "b": 0}},
    own={"d": {"_target_": "my_app.Net", "width": 7}},
    nested={},
    formats=(".json", ".yaml", ".toml"),
)
def test_configs_with_bases_survive_save_and_load_and_build_the_same(
    tmp_path_factory, base, own, nested, formats
):
    folder = tmp_path_factory.mktemp("prop")
    base_format, top_format, saved_format = formats
    write(folder / f"base{base_format}", base)
    write(folder / f"part{base_format}", nested)
    top = {**own, "_base_": f"base{base_format}", "part": {"_base_": f"part{base_format}"}}
    cfg = load_config(write(folder / f"top{top_format}", top))
    expected = _merged(base, {**own, "part": nested})
    assert to_dict(cfg) == expected
    again = load_config(save_config(cfg, folder / f"saved{saved_format}"))
    assert to_dict(again) == expected
    assert _built(again) == _built(cfg) == _built(expected)


def _built(cfg: Any) -> Any:
    """The objects ``cfg`` builds, or where building failed (a merged keyword may not suit the
    target: it must fail at the same node from every copy; TOML writes tables last, so the
    message may list the keywords in another order)."""
    try:
        return instantiate(cfg)
    except InstantiationError as error:
        return (error.path, error.target)
