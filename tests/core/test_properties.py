"""Property tests: random trees of plain values and registered targets.

1. They survive ``to_dict`` -> ``save_config`` -> ``load_config`` -> ``instantiate`` unchanged,
   in every file format, shared nodes included (compared with a direct evaluation of the tree).
2. On malformed trees ``instantiate`` raises nothing but ``InstantiationError``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corelib import InstantiationError, instantiate, load_config, save_config, to_dict
from corelib.registry import ENV_DISABLE_AUTOLOAD, isolated


@attrs.frozen
class Box:
    value: Any = None


@attrs.frozen
class Pair:
    left: Any
    right: Any = 0


def collect(*items: Any) -> list[Any]:
    return list(items)


def explode(value: Any = None) -> None:
    raise ValueError(f"cannot take {value!r}")


COMPONENTS = {"box": Box, "pair": Pair, "collect": collect, "explode": explode}


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """The components above, registered as ``local/<name>``, with no plugin discovery."""
    with pytest.MonkeyPatch.context() as patch, isolated() as registry:
        patch.setenv(ENV_DISABLE_AUTOLOAD, "1")
        for name, component in COMPONENTS.items():
            registry.register("models", name, component)
        yield


# -- strategies -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8).filter(lambda text: "${" not in text)  # "${" starts a reference
)
keys = st.text(max_size=5).filter(lambda key: not key.startswith("_"))


def with_targets(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    box = st.builds(
        lambda target, value: {"_target_": target, "value": value},
        st.sampled_from(["box", "local/box"]),
        inner,
    )
    pair = st.builds(
        lambda left, right: {"_target_": "local/pair", "left": left, "right": right}, inner, inner
    )
    args = st.builds(
        lambda items: {"_target_": "collect", "_args_": items}, st.lists(inner, max_size=3)
    )
    return (
        box | pair | args | st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3)
    )


trees = st.recursive(scalars, with_targets, max_leaves=12)


def evaluate(tree: Any) -> Any:
    """The objects a tree describes, by direct calls (the oracle; no sharing)."""
    if isinstance(tree, list):
        return [evaluate(item) for item in tree]
    if not isinstance(tree, dict):
        return tree
    values = {key: evaluate(value) for key, value in tree.items()}
    if "_target_" not in values:
        return values
    component = COMPONENTS[values.pop("_target_").rpartition("/")[2]]
    return component(*values.pop("_args_", []), **values)


# -- 1. round trip ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, shared=trees)
def test_trees_with_registered_targets_survive_save_load_instantiate(
    tmp_path_factory: pytest.TempPathFactory, tree: Any, shared: Any
) -> None:
    node = {"_target_": "box", "value": shared}
    cfg = {"tree": tree, "first": node, "again": [node]}
    expected = {"tree": evaluate(tree), "first": evaluate(node), "again": [evaluate(node)]}
    directory = tmp_path_factory.mktemp("properties")
    assert instantiate(cfg) == expected
    for suffix in (".yaml", ".json", ".toml"):
        loaded = load_config(save_config(to_dict(cfg), directory / f"cfg{suffix}"))
        built = instantiate(loaded)
        assert built == expected, suffix
        assert built["again"][0] is built["first"], suffix


# -- 2. malformed trees -----------------------------------------------------------------------

targets = (
    st.sampled_from(
        [
            "box",
            "local/pair",
            "collect",
            "explode",
            "nope",
            "local/nope",
            "a/b/c",
            "/",
            ":",
            "",
            "math.sqrt",
            "math:sqrt",
            "os.system",
            "posixpath.os.system",
            "no_such_mod.x",
        ]
    )
    | st.text(max_size=6)
    | scalars
    | st.lists(st.integers(), max_size=2)
)


def malformed(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    special = st.fixed_dictionaries(
        {"_target_": targets},
        optional={
            "_args_": st.lists(inner, max_size=2)
            | scalars
            | st.dictionaries(keys, inner, max_size=2),
            "_partial_": scalars,
            "_recursive_": scalars,
            "value": inner,
            "valeu": inner,
            "left": inner,
        },
    )
    return special | st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3)


malformed_trees = st.recursive(scalars | targets, malformed, max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(tree=malformed_trees, allow=st.sampled_from([(), ("math",)]))
def test_malformed_trees_raise_only_instantiation_errors(tree: Any, allow: tuple[str, ...]) -> None:
    with contextlib.suppress(InstantiationError):
        instantiate(tree, _allow_=allow)


def test_the_oracle_and_instantiate_agree_on_a_known_tree() -> None:
    cfg = {"p": {"_target_": "local/pair", "left": {"_target_": "collect", "_args_": [1, 2]}}}
    assert evaluate(cfg) == instantiate(cfg) == {"p": Pair(left=[1, 2], right=0)}
    partial = instantiate({"_target_": "box", "_partial_": True})
    assert isinstance(partial, functools.partial) and partial(value=3) == Box(3)
