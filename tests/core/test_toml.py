"""The TOML writer: every tree of dicts, lists and scalars reads back unchanged through tomllib."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corelib._toml import dumps_toml

TREE = {
    "name": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode é ☃',
    "count": -3,
    "big": 2**62,
    "ratio": 1e-20,
    "neg_zero": -0.0,
    "flags": [True, False],
    "mixed": [1, 2.5, "s", [1, [2]], {"k": 1, "inner": {"q": []}}],
    "empty_list": [],
    "inf": math.inf,
    "ninf": -math.inf,
    "ref": {"_ref_": "model"},
    "weird key": {"1": 2, "a.b": 3, "": 4},
    "model": {
        "_target_": "my_app.Net",
        "sub": {"deep": {"deeper": 1}},
        "blocks": [
            {"w": 1, "act": {"kind": "relu", "slope": 0.1}, "more": [{"z": 1}, {"z": 2}]},
            {"w": 2},
        ],
        "refs": [{"_ref_": "x"}, {"_ref_": "y"}],
    },
    "empty_table": {},
}


def test_a_varied_tree_reads_back_unchanged() -> None:
    assert tomllib.loads(dumps_toml(TREE)) == TREE


def test_nan_is_written_as_nan() -> None:
    assert math.isnan(tomllib.loads(dumps_toml({"x": math.nan}))["x"])


def test_layout_uses_tables_arrays_of_tables_and_short_inline_tables() -> None:
    text = dumps_toml(TREE)
    assert "\n[model]\n" in text
    assert "\n[model.blocks.act]\n" in text
    assert text.count("\n[[model.blocks]]\n") == 2
    assert 'ref = {_ref_ = "model"}' in text
    assert '"weird key"' in text


@pytest.mark.parametrize(
    ("tree", "where"),
    [
        ({"a": {"b": None}}, "a.b"),
        ({"a": [1, None]}, "a.1"),
        ({"a": {1: "x"}}, "key 1"),
        ({"a": object()}, "a: TOML cannot hold"),
    ],
)
def test_values_toml_cannot_hold_are_errors_naming_the_path(tree: Any, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        dumps_toml(tree)


_keys = st.text(min_size=0, max_size=8)
_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=5))
@example({"0\n": {}})  # a key ending in a newline once passed for a bare key ("$" before "\n")
@example({"0\n": []})
def test_random_trees_read_back_unchanged(tree: dict[str, Any]) -> None:
    assert tomllib.loads(dumps_toml(tree)) == tree
