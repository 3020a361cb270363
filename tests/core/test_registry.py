"""The registry: groups, qualified and short names, lazy refs, duplicates, suggestions."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from corelib._errors import RegistryError
from corelib.registry import KINDS, Registry, isolated, register


class Net:
    pass


class Head:
    pass


@pytest.fixture
def reg() -> Registry:
    return Registry()


def test_qualified_and_short_names_resolve_to_the_object(reg: Registry) -> None:
    reg.register("models", "net", Net)
    assert reg.get("local/net") is Net
    assert reg.get("net") is Net
    entry = reg.entry("net")
    assert (entry.group, entry.name, entry.plugin) == ("models", "net", "local")
    assert entry.qualified_name == "local/net"
    assert entry.ref is None
    assert entry.target == f"{__name__}:Net"
    assert "net" in reg and "local/net" in reg and "other" not in reg


def test_entries_are_sorted_by_group_then_qualified_name(reg: Registry) -> None:
    reg.register("trainers", "b", Net, plugin="zeta")
    reg.register("models", "c", Net, plugin="alpha")
    reg.register("models", "a", Head, plugin="beta")
    assert [e.qualified_name for e in reg.entries()] == ["alpha/c", "beta/a", "zeta/b"]
    assert [e.qualified_name for e in reg.entries("models")] == ["alpha/c", "beta/a"]
    assert reg.groups() == ["models", "trainers"]
    assert len(reg) == 3


def test_unknown_group_lists_the_known_ones(reg: Registry) -> None:
    reg.register("models", "net", Net)
    with pytest.raises(RegistryError, match=r"unknown group 'model'; did you mean 'models'"):
        reg.entries("model")


def test_every_named_kind_is_a_group_even_when_empty(reg: Registry) -> None:
    assert {"trainers", "llms", "prompt_generators", "aggregators"} <= set(KINDS)
    assert {"resolvers", "configs", "sweepers", "launchers"} <= set(KINDS)  # config language, runs
    for kind in KINDS:
        assert reg.entries(kind) == []
    reg.register("aggregators", "vote", Net)
    assert [e.qualified_name for e in reg.entries("aggregators")] == ["local/vote"]


def test_a_ref_is_imported_on_first_use_only(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"lazy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("class Outer:\n    class Inner:\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg.register("models", "inner", f"{module}:Outer.Inner", plugin="mine")
    entry = reg.entry("mine/inner")
    assert entry.ref == entry.target == f"{module}:Outer.Inner"
    assert module not in sys.modules
    component = reg.get("inner")
    assert module in sys.modules
    assert component is sys.modules[module].Outer.Inner  # type: ignore[attr-defined]
    sys.modules.pop(module)


def test_a_ref_that_cannot_be_imported_names_component_and_ref(reg: Registry) -> None:
    reg.register("models", "ghost", "no_such_module_xyz:Ghost", plugin="mine")
    with pytest.raises(RegistryError) as info:
        reg.get("ghost")
    message = str(info.value)
    assert "'mine/ghost'" in message and "'no_such_module_xyz:Ghost'" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_a_missing_attribute_in_a_ref_is_reported(reg: Registry) -> None:
    reg.register("models", "bad", f"{__name__}:Missing", plugin="mine")
    with pytest.raises(RegistryError, match="AttributeError"):
        reg.get("mine/bad")


def test_ambiguous_short_name_lists_the_qualified_candidates(reg: Registry) -> None:
    reg.register("aggregators", "majority", Net, plugin="verifiers")
    reg.register("aggregators", "majority", Head, plugin="ama")
    with pytest.raises(RegistryError, match="ambiguous") as info:
        reg.get("majority")
    assert "'ama/majority', 'verifiers/majority'" in str(info.value)
    assert reg.get("ama/majority") is Head


def test_unknown_name_suggests_close_ones(reg: Registry) -> None:
    reg.register("models", "transformer", Net, plugin="llm")
    with pytest.raises(RegistryError, match=r"'transfomer'.*did you mean 'transformer'"):
        reg.get("transfomer")
    with pytest.raises(RegistryError, match=r"did you mean 'llm/transformer'"):
        reg.get("llm/transfomer")
    with pytest.raises(RegistryError, match=r"no component named 'zzz' in the registry$"):
        reg.get("zzz")


def test_a_qualified_name_registered_twice_names_both_origins(reg: Registry) -> None:
    first = reg.bind("foo", "plugin 'foo' from distribution foo-dist 1.0")
    first.register("models", "net", "foo.models:Net")
    second = reg.bind("foo", "plugin 'foo' from distribution foo-fork 2.3")
    with pytest.raises(RegistryError) as info:
        second.register("trainers", "net", "foo_fork.trainers:Net")
    message = str(info.value)
    assert "'foo/net' is registered twice" in message
    assert "foo-dist 1.0" in message and "foo-fork 2.3" in message
    assert "'foo.models:Net'" in message and "'foo_fork.trainers:Net'" in message
    assert reg.entry("foo/net").ref == "foo.models:Net"


def test_qualified_names_are_unique_across_groups(reg: Registry) -> None:
    reg.register("models", "net", Net)
    with pytest.raises(RegistryError, match=r"first in group 'models'.*then in group 'trainers'"):
        reg.register("trainers", "net", Net)


def test_registering_the_same_component_again_is_a_no_op(reg: Registry) -> None:
    reg.register("models", "net", Net)
    reg.register("models", "net", Net)
    reg.register("models", "lazy", "a.b:C", plugin="p")
    reg.register("models", "lazy", "a.b:C", plugin="p")
    assert [e.qualified_name for e in reg.entries()] == ["local/net", "p/lazy"]
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("models", "net", Head)


@pytest.mark.parametrize(
    ("group", "name", "ref", "plugin", "expected"),
    [
        ("models", "a/b", Net, "local", "invalid component name 'a/b'"),
        ("models", "a.b", Net, "local", "invalid component name 'a.b'"),
        ("", "net", Net, "local", "invalid component group ''"),
        ("models", "net", "no_colon.path", "local", "invalid ref 'no_colon.path'"),
        ("models", "net", ":attr", "local", "invalid ref ':attr'"),
        ("models", "net", Net, "a/b", "invalid plugin name 'a/b'"),
    ],
)
def test_invalid_registrations_are_refused(
    reg: Registry, group: str, name: str, ref: object, plugin: str, expected: str
) -> None:
    with pytest.raises(RegistryError, match=expected):
        reg.register(group, name, ref, plugin=plugin)


def test_discovery_runs_once_before_the_first_lookup_not_on_register() -> None:
    calls: list[int] = []
    reg = Registry(discover=lambda: calls.append(1))
    reg.register("models", "net", Net)
    assert calls == []
    reg.get("net")
    reg.entries()
    assert calls == [1]


def test_the_register_decorator_files_under_local(
    fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")

    @register("callbacks", "printer")
    class Printer:
        pass

    assert fresh_registry.get("local/printer") is Printer
    assert fresh_registry.origin("local/printer") == f"plugin 'local' (code in {__name__})"


def test_isolated_restores_what_was_registered_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    with isolated() as outer:
        outer.register("models", "kept", Net)
        with isolated() as inner:
            assert "kept" not in inner
            inner.register("models", "scratch", Head)
        assert "scratch" not in outer
        assert outer.get("kept") is Net
