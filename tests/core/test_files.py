"""load_config / save_config: every format, .py configs, shared nodes, None in TOML, errors."""

from __future__ import annotations

import datetime
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from my_app import Net, Opt, Optimizer, Trainer, counted, params_of

from corelib import ConfigError, L, LazyConfig, instantiate, load_config, save_config, to_dict
from corelib._bounds import MAX_DEPTH

FORMATS = [".yaml", ".yml", ".json", ".toml"]


def seed_cfg() -> LazyConfig:
    return L(Trainer)(optimizer=L(Optimizer)(lr=0.01, algo="SGD"))


SEED_DICT = {
    "_target_": "my_app.Trainer",
    "optimizer": {"_target_": "my_app.Optimizer", "lr": 0.01, "algo": "SGD"},
}


def write(directory: Path, name: str, text: str) -> Path:
    file = directory / name
    file.write_text(textwrap.dedent(text))
    return file


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_the_seed_example_from_yaml_and_json(tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"seed{suffix}"
    file.write_text(json.dumps(SEED_DICT))  # JSON is valid YAML
    cfg = load_config(file)
    assert cfg == SEED_DICT and to_dict(cfg) == to_dict(seed_cfg()) == SEED_DICT
    assert instantiate(cfg) == Trainer(optimizer=Optimizer(lr=0.01, algo="SGD"))


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_builds_the_same_objects_and_keeps_sharing(tmp_path: Path, suffix: str) -> None:
    model = L(Net)(width=4)
    cfg = LazyConfig(
        opt=L(Opt)(params=L(params_of)(model=model), model=model),
        layers=[model, {"plain": [1, 2.5, "1e-3", True]}],
        fn=params_of,
        nothing=None,
        seed_like=seed_cfg(),
    )
    file = save_config(cfg, tmp_path / f"cfg{suffix}")
    assert file == tmp_path / f"cfg{suffix}"
    loaded = load_config(file)
    assert loaded.opt.model is loaded.opt.params.model is loaded.layers[0]
    assert loaded.nothing is None and isinstance(loaded.opt, LazyConfig)
    assert to_dict(loaded) == to_dict(cfg)
    built, expected = instantiate(loaded), instantiate(cfg)
    assert built == expected
    assert built["opt"].model is built["layers"][0]  # built once, shared
    assert built["fn"] is params_of


@pytest.mark.parametrize("suffix", FORMATS)
def test_two_equal_but_distinct_nodes_stay_two(tmp_path: Path, suffix: str) -> None:
    cfg = {"a": L(counted)(), "b": L(counted)()}
    loaded = load_config(save_config(cfg, tmp_path / f"cfg{suffix}"))
    assert loaded["a"] == loaded["b"] and loaded["a"] is not loaded["b"]


def test_json_and_toml_write_later_occurrences_as_refs(tmp_path: Path) -> None:
    block = {"w": 1}
    cfg = {"model": {"blocks": [{"x": 0}, block]}, "again": block, "more": [block]}
    text = save_config(cfg, tmp_path / "cfg.json").read_text()
    assert json.loads(text)["again"] == {"_ref_": "model.blocks[1]"}
    toml_text = save_config(cfg, tmp_path / "cfg.toml").read_text()
    assert 'again = {_ref_ = "model.blocks[1]"}' in toml_text


def test_refs_to_keys_that_a_path_cannot_spell_use_a_key_list(tmp_path: Path) -> None:
    shared = {"w": 1}
    cfg = {"a.b": {"c": shared}, "d": shared}
    file = save_config(cfg, tmp_path / "cfg.json")
    assert json.loads(file.read_text())["d"] == {"_ref_": ["a.b", "c"]}
    loaded = load_config(file)
    assert loaded["d"] is loaded["a.b"]["c"]


def test_toml_writes_none_as_a_marker_table(tmp_path: Path) -> None:
    file = save_config({"a": None, "b": [1, None], "c": {"d": None}}, tmp_path / "cfg.toml")
    text = file.read_text()
    assert "a = {_none_ = true}" in text
    assert load_config(file) == {"a": None, "b": [1, None], "c": {"d": None}}


def test_a_ref_to_nothing_is_an_error_naming_file_and_place(tmp_path: Path) -> None:
    file = write(tmp_path, "cfg.json", '{"a": {"x": 1}, "b": [{"_ref_": "a.y"}]}')
    with pytest.raises(ConfigError, match=r"cfg\.json: '_ref_' at 'b\[0\]': no node at 'a\.y'"):
        load_config(file)


def test_python_config_with_relative_imports_and_sharing(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.py",
        """
        from corelib import L
        from my_app import Net

        model = L(Net)(width=4)
        """,
    )
    file = write(
        tmp_path,
        "train.py",
        """
        import os
        from my_app import Opt, params_of
        from corelib import L
        from .base import model

        def helper():
            return 1

        class Local:
            pass

        _private = {"x": 1}
        opt = L(Opt)(params=L(params_of)(model=model), model=model)
        settings = dict(epochs=3, tags=["a"], ratio=1e-3)
        name = "run-1"
        """,
    )
    cfg = load_config(file)
    assert set(cfg) == {"model", "opt", "settings", "name"}
    assert cfg.opt.model is cfg.model and isinstance(cfg.settings, LazyConfig)
    assert cfg.settings.epochs == 3
    built = instantiate(cfg)
    assert built["opt"] == Opt(params=[4], model=Net(width=4))
    assert not [name for name in sys.modules if name.startswith("_corelib_config_")]


def test_python_config_loads_fresh_each_time(tmp_path: Path) -> None:
    file = write(tmp_path, "cfg.py", "value = {'n': 1}\n")
    first = load_config(file)
    first.value.n = 2
    assert load_config(file).value.n == 1


def test_python_config_errors_name_file_and_line(tmp_path: Path) -> None:
    syntax = write(tmp_path, "broken.py", "x = 1\ny = (\n")
    with pytest.raises(ConfigError, match=r"broken\.py:2: "):
        load_config(syntax)
    raising = write(tmp_path, "raising.py", "x = 1\ny = missing_name\n")
    with pytest.raises(ConfigError, match=r"raising\.py:2: NameError: name 'missing_name'"):
        load_config(raising)
    sibling = write(tmp_path, "sibling.py", "x = 1\nfrom .nothere import y\n")
    with pytest.raises(ConfigError, match=r"sibling\.py:2: ModuleNotFoundError") as info:
        load_config(sibling)
    assert f"No module named '{tmp_path / 'nothere'}'" in str(info.value)  # not the loader's name


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("cfg.json", '{"a": 1,\n "b": }', r"cfg\.json: line 2, column 7: Expecting value"),
        ("cfg.toml", "a = 1\nb = \n", r"cfg\.toml: .*line 2"),
        ("cfg.txt", "a: 1", r"cfg\.txt: unknown config file type '\.txt'; expected one of"),
    ],
)
def test_unparsable_files_name_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, name, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_an_empty_yaml_file_is_an_empty_config(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "empty.yaml", "")) == LazyConfig()


def test_unwritable_values_name_file_and_key_path_and_leave_the_old_file(tmp_path: Path) -> None:
    file = save_config({"ok": 1}, tmp_path / "cfg.yaml")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: model\.act"):
        save_config({"model": L(Net)(act=lambda x: x)}, file)

    class Local:
        pass

    with pytest.raises(ConfigError, match=r"blocks\[0\]\._target_"):
        save_config({"blocks": [L(Local)()]}, tmp_path / "cfg.json")
    assert load_config(file) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # no temp files left


@pytest.mark.parametrize(
    ("name", "cfg", "message"),
    [
        ("cfg.py", {"a": 1}, r"cannot write '\.py'; expected one of \.yaml"),
        ("cfg", {"a": 1}, r"cannot write 'files without a suffix'"),
        ("cfg.toml", [1, 2], r"TOML needs a mapping at the top"),
    ],
)
def test_save_refuses_what_it_cannot_write(
    tmp_path: Path, name: str, cfg: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        save_config(cfg, tmp_path / name)


def test_save_creates_parent_directories(tmp_path: Path) -> None:
    file = save_config(seed_cfg(), tmp_path / "runs" / "a" / "cfg.toml")
    assert instantiate(load_config(file)) == instantiate(seed_cfg())


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
)
_keys = st.text(max_size=6).filter(lambda key: not key.startswith("_"))
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=25, deadline=None)
@given(tree=st.dictionaries(_keys, _trees, min_size=1, max_size=4), shared=_trees)
def test_random_trees_with_a_shared_node_survive_every_format(
    tmp_path_factory: pytest.TempPathFactory, tree: dict[str, Any], shared: Any
) -> None:
    node = {"payload": shared}
    cfg = {"first": node, "tree": tree, "again": [node]}
    directory = tmp_path_factory.mktemp("roundtrip")
    for suffix in FORMATS:
        loaded = load_config(save_config(cfg, directory / f"cfg{suffix}"))
        assert loaded == cfg, suffix
        assert loaded["again"][0] is loaded["first"], suffix


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
@pytest.mark.parametrize(
    "value", [object(), Path("x"), datetime.date(2020, 1, 1), {1, 2}, b"raw", 1j]
)
def test_values_no_file_can_hold_are_config_errors_naming_the_key_path(
    tmp_path: Path, suffix: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=r"model\.opts\[1\]: a config file cannot hold a"):
        save_config({"model": {"opts": [1, value]}}, tmp_path / f"c{suffix}")


def test_non_string_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keys must be strings"):
        save_config({"a": {1: "one"}}, tmp_path / "c.json")


def _chain(depth: int) -> Any:
    cfg: Any = L("my_app.identity")(value=0)
    for _ in range(depth):
        cfg = L("my_app.identity")(value=cfg)
    return cfg


@pytest.mark.parametrize("suffix", FORMATS)
def test_chains_as_deep_as_the_limit_round_trip(tmp_path: Path, suffix: str) -> None:
    loaded = load_config(save_config(_chain(MAX_DEPTH - 1), tmp_path / f"deep{suffix}"))
    assert instantiate(loaded) == 0


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_tree_deeper_than_the_limit_is_refused_before_writing(
    tmp_path: Path, suffix: str
) -> None:
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH} levels"):
        save_config(_chain(MAX_DEPTH), tmp_path / f"deep{suffix}")
    assert not (tmp_path / f"deep{suffix}").exists()


def test_duplicate_json_keys_are_an_error(tmp_path: Path) -> None:
    file = tmp_path / "dup.json"
    file.write_text('{"a": 1, "a": 2}')
    with pytest.raises(ConfigError, match=r"dup\.json: duplicate key 'a'"):
        load_config(file)
