"""References: ``${a.b}``, ``${.x}``, ``${..x}``, text, ``${env:...}``, resolvers, ``\\${``.

A reference to a node is that node (built once, shared); references are resolved after
overrides, when building and checking, and stay as written through save/load.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corelib
from corelib import (
    ConfigError,
    L,
    check,
    instantiate,
    load_config,
    resolve,
    save_config,
    to_dict,
)
from corelib.registry import ENV_DISABLE_AUTOLOAD, isolated

BUILT: list[str] = []


@attrs.frozen
class Box:
    value: Any = None


@attrs.define(eq=False)
class Counted:
    """Records every construction, to count how often a node is built."""

    name: str = "x"

    def __attrs_post_init__(self) -> None:
        BUILT.append(self.name)


def unbuilt(**children: Any) -> dict[str, Any]:
    """A component that takes its children as written (``_recursive_: false``)."""
    return children


def shout(text: str, times: str = "1") -> str:
    return text.upper() * int(times)


def many(count: str) -> str:
    return "x" * int(count)


def not_scalar() -> list[int]:
    return [1, 2]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Components and two resolvers registered as ``local/<name>``; no plugin discovery."""
    monkeypatch.setenv(ENV_DISABLE_AUTOLOAD, "1")
    BUILT.clear()
    with isolated() as registry:
        for name, component in {"box": Box, "counted": Counted, "unbuilt": unbuilt}.items():
            registry.register("models", name, component)
        for name, resolver in {"shout": shout, "many": many, "not_scalar": not_scalar}.items():
            registry.register("resolvers", name, resolver)
        yield


# -- every form --------------------------------------------------------------------------------


def test_an_absolute_reference_is_the_value_at_that_path() -> None:
    cfg = {
        "model": {"dims": [{"w": 3}, {"w": 5}]},
        "a": "${model.dims[1].w}",
        "b": "${model.dims.0.w}",
    }
    assert resolve(cfg) == {**cfg, "a": 5, "b": 3}


def test_relative_references_count_from_the_node_holding_the_string() -> None:
    cfg = {"x": 1, "node": {"x": 2, "same": "${.x}", "up": "${..x}", "deep": {"v": "${...x}"}}}
    node = resolve(cfg)["node"]
    assert (node["same"], node["up"], node["deep"]["v"]) == (2, 1, 1)


def test_interpolation_puts_scalars_into_text() -> None:
    cfg = {"name": "exp", "seed": 3, "ok": True, "dir": "runs/${name}/seed${seed}-${ok}/ckpt"}
    assert resolve(cfg)["dir"] == "runs/exp/seed3-True/ckpt"


def test_a_reference_to_a_reference_is_followed_and_one_to_text_with_references_too() -> None:
    cfg = {"a": "${b}", "b": "${c}", "c": "${d}-x", "d": "${e.v}", "e": {"v": 7}}
    assert resolve(cfg)["a"] == "7-x"


def test_a_reference_into_a_node_reached_by_a_reference_works() -> None:
    cfg = {"shared": {"w": 4}, "alias": "${shared}", "width": "${alias.w}"}
    assert resolve(cfg)["width"] == 4


def test_an_escaped_reference_is_literal_text() -> None:
    cfg = {"shell": "echo \\${HOME} in ${dir}", "dir": "/tmp"}
    assert resolve(cfg)["shell"] == "echo ${HOME} in /tmp"


def test_env_reads_a_variable_or_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REF_TEST_USER", "ada")
    monkeypatch.delenv("REF_TEST_MISSING", raising=False)
    cfg = {"user": "${env:REF_TEST_USER}", "other": "${env:REF_TEST_MISSING,a,b}"}
    assert resolve(cfg) == {"user": "ada", "other": "a,b"}
    with pytest.raises(ConfigError, match=r"at 'x': .*'REF_TEST_MISSING' is not set"):
        resolve({"x": "${env:REF_TEST_MISSING}"})


def test_registered_resolvers_are_called_with_string_arguments() -> None:
    assert resolve({"a": "${shout:hi,2}!", "b": "${local/shout:yo}"}) == {"a": "HIHI!", "b": "YO"}


# -- a reference to a node is that node ----------------------------------------------------------


def test_a_referenced_node_is_built_once_and_shared() -> None:
    cfg = {
        "model": {"_target_": "counted", "name": "model"},
        "trainer": {"_target_": "box", "value": "${model}"},
        "evaluator": {"_target_": "box", "value": ["${model}", "${trainer.value}"]},
    }
    built = instantiate(cfg)
    assert BUILT == ["model"]
    assert built["trainer"].value is built["model"] is built["evaluator"].value[0]
    assert built["evaluator"].value[1] is built["model"]


def test_a_reference_to_a_node_not_yet_built_builds_it_once() -> None:
    cfg = {"first": {"_target_": "box", "value": "${later}"}, "later": {"_target_": "counted"}}
    built = instantiate(cfg)
    assert BUILT == ["x"] and built["first"].value is built["later"]


def test_resolve_keeps_shared_nodes_shared_and_copies_nothing_without_references() -> None:
    plain = {"a": {"b": [1, 2]}, "c": "text"}
    assert resolve(plain) is plain
    cfg = {"model": {"dim": 2}, "alias": "${model}", "other": {"m": "${model}"}}
    resolved = resolve(cfg)
    assert resolved["alias"] is resolved["model"] is resolved["other"]["m"] is cfg["model"]


def test_a_reference_to_a_value_inside_a_shared_node_works() -> None:
    inner = {"w": 3, "double": "${.w}${.w}"}
    cfg = {"a": inner, "b": inner, "c": "${b.double}"}
    assert resolve(cfg)["c"] == "33"


def test_node_aliases_stay_linear_no_billion_laughs() -> None:
    cfg: dict[str, Any] = {"l0": ["ha", "ha"]}
    for level in range(1, 60):  # 2**60 strings if a reference copied its node
        cfg[f"l{level}"] = [f"${{l{level - 1}}}", f"${{l{level - 1}}}"]
    start = time.process_time()
    resolved = resolve(cfg)
    assert time.process_time() - start < 5
    assert resolved["l59"][0] is resolved["l59"][1] is resolved["l58"]


# -- when references are resolved ----------------------------------------------------------------


def test_overrides_reach_every_reference_to_the_overridden_key() -> None:
    cfg = {"run_dir": "runs/x", "ckpt": "${run_dir}/ckpt", "logs": "${run_dir}/logs"}
    moved = corelib.apply_overrides(cfg, ["run_dir=/data/y"])
    assert moved["ckpt"] == "${run_dir}/ckpt"  # overrides keep references as written
    assert instantiate(moved) == {
        "run_dir": "/data/y",
        "ckpt": "/data/y/ckpt",
        "logs": "/data/y/logs",
    }


def test_keyword_overrides_of_instantiate_take_part() -> None:
    cfg = {"model": {"_target_": "box", "value": "${dim}"}, "dim": 1}
    assert instantiate(cfg, dim=5)["model"] == Box(5)
    assert instantiate(cfg, model="${dim}", dim=7) == {"model": 7, "dim": 7}


def test_instantiate_never_mutates_its_input() -> None:
    cfg = {"m": {"_target_": "box", "value": "${v}"}, "v": "${w}", "w": 5, "a": "${m}"}
    before = copy.deepcopy(cfg)
    built = instantiate(cfg)
    assert cfg == before and built["a"] is built["m"] == Box(5)


def test_a_recursive_false_subtree_reaches_its_component_resolved_but_unbuilt() -> None:
    cfg = {
        "width": 4,
        "holder": {
            "_target_": "unbuilt",
            "_recursive_": False,
            "child": {"_target_": "box", "value": "${width}"},
            "text": "cost \\${5}",
        },
    }
    children = instantiate(cfg)["holder"]
    assert children["child"] == {"_target_": "box", "value": 4}
    # a literal ${ stays escaped, so building the child later gives the text as written
    assert instantiate({"t": children["text"]}) == {"t": "cost ${5}"}
    assert cfg["holder"]["child"]["value"] == "${width}"


def test_the_target_itself_may_be_a_reference() -> None:
    assert instantiate({"kind": "box", "m": {"_target_": "${kind}", "value": 1}})["m"] == Box(1)


def test_a_lazycall_config_in_python_takes_references_too() -> None:
    cfg = corelib.LazyConfig(dim=3, model=L(Box)(value="${dim}"), alias="${model}")
    assert instantiate(cfg)["model"] == Box(3)
    resolved = resolve(cfg)
    assert type(resolved) is type(resolved.model) is corelib.LazyConfig
    assert resolved.alias is resolved.model and resolved.model.value == 3


# -- errors --------------------------------------------------------------------------------------


def test_a_dangling_reference_names_the_path_the_missing_key_and_close_matches() -> None:
    cfg = {"model": {"dim": 3}, "trainer": {"width": "${model.dimm}"}}
    with pytest.raises(ConfigError) as raised:
        instantiate(cfg)
    message = str(raised.value)
    assert "at 'trainer.width'" in message
    assert "no key 'model.dimm'" in message and "did you mean 'model.dim'?" in message


def test_a_cycle_of_references_is_named() -> None:
    with pytest.raises(ConfigError, match=r"cycle of references: 'a' -> 'b' -> 'c' -> 'a'"):
        resolve({"a": "${b}", "b": "${c}x", "c": "${a}"})


def test_a_reference_to_its_own_ancestor_is_a_cycle() -> None:
    with pytest.raises(ConfigError, match=r"at 'a\.b\[0\]': cycle: .* ancestor 'a'"):
        resolve({"a": {"b": ["${a}"]}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x ${model} y", r"'\$\{model\}' is a dict: only a string, number, boolean or null"),
        ("${os.system:ls}", r"unknown resolver 'os.system'"),
        ("${shuot:a}", r"unknown resolver 'shuot'; did you mean 'shout'"),
        ("${box:a}", r"'box' is a component of the group 'models', not a resolver"),
        ("${not_scalar:}", r"the resolver returned a list"),
        ("${....x}", r"goes 3 level\(s\) up from '<root>', above the root"),
        ("${model.dim", r"without a closing"),
        ("${}", r"an empty reference"),
        ("${a.${b}}", r"nested"),
        ("${model[9]}", r"no key 'model\[9\]'"),
        ("${model.dim.x}", r"'model.dim' is an int, not a node with keys or items"),
    ],
)
def test_bad_references_are_config_errors_naming_the_path(value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"at 'bad': .*" + expected):
        resolve({"model": {"dim": 3}, "bad": value})


def test_an_item_index_too_long_for_an_int_is_a_config_error_naming_the_path() -> None:
    for value in ("${model[" + "9" * 5000 + "]}", "${model[" + "9" * 30 + "]}"):
        with pytest.raises(ConfigError, match=r"at 'bad': '\$\{model\["):
            resolve({"model": [1], "bad": value})


def test_check_reports_every_reference_problem_at_once_with_paths() -> None:
    cfg = {
        "model": {"_target_": "box", "value": "${nope}"},
        "a": "${b}",
        "b": "${a}",
        "c": "${env:REF_TEST_NOT_ALLOWED,x}",
        "ok": {"_target_": "box", "value": "${model}"},
    }
    problems = check(cfg, allow=())
    assert [p.path for p in problems] == ["model.value", "b", "c"]
    assert "no key 'nope'" in problems[0].message and "cycle" in problems[1].message
    assert "--allow-env REF_TEST_NOT_ALLOWED" in problems[2].message


def test_chains_of_ten_thousand_references_work() -> None:
    n = 10_000
    pure: dict[str, Any] = {f"k{i}": f"${{k{i + 1}}}" for i in range(n)}
    pure[f"k{n}"] = {"_target_": "counted"}
    assert resolve(pure)["k0"] is pure[f"k{n}"]
    texts: dict[str, Any] = {f"k{i}": f"${{k{i + 1}}}." for i in range(n)}
    texts[f"k{n}"] = "end"
    assert resolve(texts)["k0"] == "end" + "." * n
    relative: Any = "leaf"
    for _ in range(n):
        relative = {"v": relative, "up": "${.v}", "top": "${..top}"}  # a chain to the root
    relative["top"] = 0
    resolved = resolve(relative)
    assert resolved["up"] is resolved["v"] and resolved["v"]["v"]["top"] == 0
    assert check(pure) == []


def test_interpolated_text_is_bounded_no_string_bomb() -> None:
    cfg: dict[str, Any] = {"s0": "x" * 1000}
    for level in range(1, 40):
        cfg[f"s{level}"] = f"${{s{level - 1}}}${{s{level - 1}}}"
    with pytest.raises(ConfigError) as raised:
        resolve(cfg)
    assert "longer than 1,000,000 characters" in str(raised.value)
    assert len(str(raised.value)) < 500
    with pytest.raises(ConfigError, match=r"returned 2,000,000 characters"):
        resolve({"big": "${many:2000000}"})


# -- safe mode: environment variables ------------------------------------------------------------


def test_safe_mode_reads_only_allowed_variables_and_a_default_does_not_bypass_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REF_TEST_SECRET", "s3cret")
    monkeypatch.setenv("REF_TEST_USER", "ada")
    cfg = {"_target_": "box", "value": "${env:REF_TEST_SECRET,fallback}"}
    with pytest.raises(ConfigError, match=r"'REF_TEST_SECRET' may not be read"):
        instantiate(cfg, _allow_=())
    with pytest.raises(ConfigError, match=r"may not be read"):
        instantiate(cfg, _allow_=(), _allow_env_=["REF_TEST_USER"])
    assert instantiate(cfg, _allow_=(), _allow_env_=["REF_TEST_SECRET"]) == Box("s3cret")
    assert instantiate(cfg) == Box("s3cret")  # outside safe mode any variable
    with pytest.raises(ConfigError, match=r"may not be read"):
        resolve({"v": "${env:REF_TEST_SECRET}"}, allow_env=[])
    assert check({"v": "${env:REF_TEST_USER}"}, allow=(), allow_env=["REF_TEST_USER"]) == []


def test_a_build_inside_safe_mode_cannot_widen_the_variables_it_may_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REF_TEST_SECRET", "s3cret")
    with corelib._trust.applying(corelib.SafeMode(env=("REF_TEST_USER",))):
        with pytest.raises(corelib.InstantiationError, match="not widen"):
            instantiate({"v": 1}, _allow_env_=["REF_TEST_SECRET"])
        with pytest.raises(ConfigError, match="may not be read"):
            instantiate({"v": "${env:REF_TEST_SECRET}"})
        with pytest.raises(ConfigError, match="only the variables the policy allows"):
            resolve({"v": "${env:REF_TEST_SECRET}"}, allow_env=["REF_TEST_SECRET"])


# -- kept as written -----------------------------------------------------------------------------

REFERENCES = {
    "model": {"_target_": "box", "value": "${dim}"},
    "dim": 3,
    "path": "runs/${name}/\\${literal}",
    "name": "exp",
    "alias": "${model}",
    "relative": {"x": 1, "y": "${.x}"},
    "env": "${env:REF_TEST_ROUND_TRIP,none}",
}


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_save_and_load_keep_references_as_written(tmp_path: Path, suffix: str) -> None:
    loaded = load_config(save_config(REFERENCES, tmp_path / f"cfg{suffix}"))
    assert to_dict(loaded) == to_dict(REFERENCES) == REFERENCES
    built = instantiate(loaded)
    assert built["alias"] is built["model"] == Box(3)
    assert built["path"] == "runs/exp/${literal}"


def test_a_python_config_takes_references_as_written(tmp_path: Path) -> None:
    (tmp_path / "cfg.py").write_text(
        "dim = 3\nname = 'exp'\npath = 'runs/${name}/\\\\${literal}'\nmodel = {'x': '${dim}'}\n"
    )
    loaded = load_config(tmp_path / "cfg.py")
    assert loaded["path"] == "runs/${name}/\\${literal}"
    assert instantiate(loaded)["path"] == "runs/exp/${literal}"
    assert instantiate(loaded)["model"] == {"x": 3}


# -- property: any config with references survives save/load and builds the same objects ------

names = st.sampled_from(["a", "b", "c", "d"])
plain_text = st.text(max_size=6).filter(lambda text: "${" not in text and not text.endswith("\\"))
leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | plain_text


def boxed(value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda v: {"_target_": "box", "value": v}, value)


@st.composite
def referring_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Top-level keys a..d holding values, nodes, and references to earlier keys only."""
    cfg: dict[str, Any] = {}
    for index, name in enumerate(["a", "b", "c", "d"]):
        earlier = ["a", "b", "c", "d"][:index]
        choices: list[st.SearchStrategy[Any]] = [leaves, boxed(leaves)]
        if earlier:
            ref = st.sampled_from(earlier).map(lambda key: f"${{{key}}}")
            choices += [ref, boxed(ref)]
            nodes = [key for key in earlier if isinstance(cfg[key], dict)]
            if nodes:
                text = st.tuples(plain_text, st.sampled_from(nodes))
                choices.append(text.map(lambda pair: f"{pair[0]}-${{{pair[1]}.value}}"))
        cfg[name] = draw(st.one_of(*choices))
    return cfg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=referring_configs())
def test_configs_with_references_survive_save_load_in_every_format(
    tmp_path_factory: pytest.TempPathFactory, cfg: dict[str, Any]
) -> None:
    try:
        expected = instantiate(cfg)
    except ConfigError:  # e.g. text interpolating a node: the same error after the round trip
        expected = ConfigError
    directory = tmp_path_factory.mktemp("references")
    for suffix in (".yaml", ".json", ".toml", ".py"):
        path = directory / f"cfg{suffix}"
        if suffix == ".py":
            path.write_text("".join(f"{k} = {v!r}\n" for k, v in cfg.items()))
        else:
            save_config(cfg, path)
        loaded = load_config(path)
        assert to_dict(loaded) == to_dict(cfg), suffix
        if expected is ConfigError:
            with pytest.raises(ConfigError):
                instantiate(loaded)
            continue
        built = instantiate(loaded)
        assert built == expected, suffix
        for key, value in cfg.items():  # a whole reference to a node is that very object
            if isinstance(value, str) and value.startswith("${") and value.count("$") == 1:
                target = value[2:-1]
                if isinstance(cfg[target], dict):
                    assert built[key] is built[target], suffix


keys_and_items = st.sampled_from(["a", "b", "_c", "0", "1", 0, 1])
trees = st.recursive(
    st.integers(0, 9) | st.just("text"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys_and_items, inner, max_size=4),
    max_leaves=12,
)
segments = st.sampled_from(["a", "b", "_c", "0", "1", "x"]).map(lambda key: "." + key) | (
    st.sampled_from(["0", "1", "2", "9" * 20]).map(lambda item: f"[{item}]")
)


@settings(max_examples=300, deadline=None)
@given(tree=trees, path=st.lists(segments, max_size=4).map("".join))
def test_an_absolute_reference_finds_what_the_same_path_from_the_root_finds(
    tree: Any, path: str
) -> None:
    """``${tree...}`` (the fast path most references take) and ``${.tree...}`` (relative to
    the root: the full lookup) agree on every path: the same object, or both an error."""
    outcomes = []
    for text in (f"${{tree{path}}}", f"${{.tree{path}}}"):
        try:
            outcomes.append(resolve({"tree": tree, "ref": text})["ref"])
        except ConfigError as error:
            outcomes.append(str(error).replace("${.tree", "${tree"))
    absolute, relative = outcomes
    assert absolute is relative or (type(absolute) is str and absolute == relative)


def test_special_keys_may_be_references_but_recursive_false_is_written_as_is() -> None:
    made = instantiate({"f": {"_target_": "box", "_partial_": "${flag}"}, "flag": True})
    assert isinstance(made["f"], functools.partial) and made["f"](value=2) == Box(2)
    with pytest.raises(corelib.InstantiationError, match="written as false, not as a reference"):
        instantiate({"f": {"_target_": "unbuilt", "_recursive_": "${no}"}, "no": False})
