"""Round trips are exact: data shaped like corelib's own forms, symlinks and permission bits.

JSON and TOML read ``{"_ref_": ...}`` as a shared node and TOML reads ``{"_none_": true}`` as
None, so ``save_config`` escapes user dicts of those shapes as ``{"_escape_": {...}}``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corelib import load_config, save_config

FORMATS = [".yaml", ".json", ".toml"]

FORM_SHAPED = {
    "ref": {"_ref_": "b"},
    "ref_list": {"_ref_": ["b", "c"]},
    "none": {"_none_": True},
    "none_null": {"_none_": None},
    "import": {"_import_": "os.path"},
    "escape": {"_escape_": {"_ref_": "b"}},
    "escape_scalar": {"_escape_": 1},
    "nested": [{"_escape_": {"_escape_": {"_none_": True}}}],
    "merge_key": {"<<": {"a": 1}},
    "b": {"c": 1},
}


@pytest.mark.parametrize("suffix", FORMATS)
def test_dicts_shaped_like_the_forms_come_back_as_they_were(tmp_path: Path, suffix: str) -> None:
    loaded = load_config(save_config(FORM_SHAPED, tmp_path / f"c{suffix}"))
    assert loaded == FORM_SHAPED
    assert loaded["b"] is not loaded["ref"]  # not turned into a reference


def test_json_writes_the_escape_form(tmp_path: Path) -> None:
    file = save_config({"a": {"_ref_": "b"}, "b": 1}, tmp_path / "c.json")
    assert json.loads(file.read_text())["a"] == {"_escape_": {"_ref_": "b"}}


def test_a_shared_node_inside_an_escaped_dict_stays_shared(tmp_path: Path) -> None:
    shared = {"x": 1}
    cfg = {"a": {"_ref_": shared}, "b": shared}
    for suffix in FORMATS:
        loaded = load_config(save_config(cfg, tmp_path / f"c{suffix}"))
        assert loaded == cfg, suffix
        assert loaded["a"]["_ref_"] is loaded["b"], suffix


_FORM_KEYS = st.sampled_from(["_ref_", "_none_", "_import_", "_escape_", "<<", "_target_"])
_keys = _FORM_KEYS | st.text(max_size=5)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | _FORM_KEYS
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(tree=st.dictionaries(_keys, _trees, max_size=4), shared=_trees, key=_keys)
def test_arbitrary_data_survives_every_format(
    tmp_path_factory: pytest.TempPathFactory, tree: dict[str, Any], shared: Any, key: str
) -> None:
    node = {key: shared}  # a one-key dict: shaped like a form whenever the key is one
    cfg = {"tree": tree, "first": node, "again": [node, {key: node}]}
    directory = tmp_path_factory.mktemp("exact")
    for suffix in FORMATS:
        loaded = load_config(save_config(cfg, directory / f"cfg{suffix}"))
        assert loaded == cfg, suffix
        assert loaded["again"][0] is loaded["first"], suffix
        assert loaded["again"][1][key] is loaded["first"], suffix


def test_saving_through_a_symlink_writes_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real" / "cfg.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    save_config({"a": 1}, link)
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert load_config(target) == {"a": 1}


def test_saving_through_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "new.yaml")
    save_config({"a": 1}, link)
    assert link.is_symlink()
    assert load_config(tmp_path / "new.yaml") == {"a": 1}


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o444])
def test_an_existing_file_keeps_its_permission_bits(tmp_path: Path, mode: int) -> None:
    file = tmp_path / "cfg.toml"
    file.write_text("")
    file.chmod(mode)
    save_config({"a": 1}, file)
    assert stat.S_IMODE(file.stat().st_mode) == mode
    assert load_config(file) == {"a": 1}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_file_gets_the_umasks_permission_bits(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        file = save_config({"a": 1}, tmp_path / "cfg.yaml")
    finally:
        os.umask(old)
    assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    save_config({"a": 1}, tmp_path / "cfg.json")
    save_config({"a": 2}, tmp_path / "cfg.json")
    assert [path.name for path in tmp_path.iterdir()] == ["cfg.json"]
