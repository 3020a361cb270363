"""Plugin discovery through real entry points of fake distributions on ``sys.path``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corelib._errors import PluginError, RegistryError
from corelib.registry import PluginReport, Registry, get_plugin_manager

if TYPE_CHECKING:
    from conftest import FakeDists

REPO = Path(__file__).resolve().parents[2]


def plugin_source(*registrations: str, body: str = "") -> str:
    """A plugin module whose ``corelib_register`` makes ``registrations`` (Python lines)."""
    lines = "\n".join(f"    {line}" for line in registrations) or "    pass"
    return (
        f"from corelib.hooks import hookimpl\n{body}\n"
        f"@hookimpl\ndef corelib_register(registry):\n{lines}\n"
    )


def reports_of(names: set[str]) -> list[PluginReport]:
    return [r for r in get_plugin_manager().reports() if r.name in names]


def test_plugins_register_lazily_under_their_entry_point_name(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    components = fake_dists.module("class Net:\n    pass\n")
    fake_dists.add(
        "acme-plugins",
        "1.2.0",
        {"acme": plugin_source(f"registry.register('models', 'net', '{components}:Net')")},
    )
    entry = fresh_registry.entry("acme/net")
    assert (entry.group, entry.plugin, entry.ref) == ("models", "acme", f"{components}:Net")
    assert components not in sys.modules
    assert reports_of({"acme"}) == [
        PluginReport("acme", "acme-plugins", "1.2.0", "loaded", 1, fake_dists.modules[-1])
    ]
    assert fresh_registry.get("net") is sys.modules[components].Net  # type: ignore[attr-defined]
    assert "from distribution acme-plugins 1.2.0" in fresh_registry.origin("acme/net")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_work(
    fake_dists: FakeDists, fresh_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    fake_dists.add("broken-dist", "0.1", {"broken": "import no_such_dependency_xyz\n"})
    fake_dists.add(
        "good-dist", "2.0", {"good": plugin_source("registry.register('models', 'net', 'x.y:Net')")}
    )
    broken, good = reports_of({"broken", "good"})
    assert (broken.status, broken.distribution, broken.version) == ("failed", "broken-dist", "0.1")
    assert broken.error == "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"
    assert (good.status, good.components) == ("loaded", 1)
    assert fresh_registry.entry("net").qualified_name == "good/net"
    (warning,) = [r for r in caplog.records if r.name == "corelib.registry._plugins"]
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith("plugin 'broken' from distribution broken-dist 0.1")

    with pytest.raises(PluginError) as info:
        fresh_registry.get("broken/net")
    assert "plugin 'broken' from distribution broken-dist 0.1 failed to import" in str(info.value)
    assert "no_such_dependency_xyz" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(
        PluginError, match=r"may belong to an unavailable plugin: plugin .broken. from"
    ):
        fresh_registry.get("unknown_component")


def test_a_plugin_that_fails_in_register_is_rolled_back(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    source = plugin_source(
        "registry.register('models', 'first', 'x.y:First')",
        "raise RuntimeError('database unreachable')",
    )
    fake_dists.add("half-dist", "3.1", {"half": source})
    (report,) = reports_of({"half"})
    assert (report.status, report.components) == ("failed", 0)
    assert report.error == "RuntimeError: database unreachable"
    with pytest.raises(PluginError, match=r"half-dist 3\.1 failed to register") as info:
        fresh_registry.get("half/first")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert get_plugin_manager().get_plugin("half") is None


def test_a_duplicate_registration_fails_the_plugin_naming_its_distribution(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    source = plugin_source(
        "registry.register('models', 'net', 'x.y:Net')",
        "registry.register('trainers', 'net', 'x.y:Trainer')",
    )
    fake_dists.add("dup-dist", "1.0", {"dup": source})
    (report,) = reports_of({"dup"})
    assert report.status == "failed"
    assert report.error is not None
    assert "'dup/net' is registered twice" in report.error
    assert report.error.count("from distribution dup-dist 1.0") == 2


def test_same_named_entry_points_of_two_distributions_are_a_conflict(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    modules_a = fake_dists.add(
        "zeta-dist", "1.0", {"shared": plugin_source("registry.register('models', 'net', 'a:Net')")}
    )
    modules_b = fake_dists.add(
        "alpha-dist",
        "2.0",
        {"shared": plugin_source("registry.register('models', 'net', 'b:Net')")},
    )
    reports = reports_of({"shared"})
    assert [(r.distribution, r.status) for r in reports] == [
        ("alpha-dist", "conflict"),
        ("zeta-dist", "conflict"),
    ]
    for report in reports:
        assert report.error is not None
        assert "alpha-dist 2.0 and zeta-dist 1.0" in report.error
    with pytest.raises(PluginError, match=r"alpha-dist 2\.0 and zeta-dist 1\.0"):
        fresh_registry.get("shared/net")
    assert modules_a["shared"] not in sys.modules and modules_b["shared"] not in sys.modules


def test_plugins_load_in_name_order_whatever_the_install_order(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    calls = fake_dists.module("order = []\n", "calls")
    for name in ("charlie", "alpha", "bravo"):
        source = plugin_source(f"import {calls}; {calls}.order.append('{name}')")
        fake_dists.add(f"{name}-dist", "1.0", {name: source})
    names = {"alpha", "bravo", "charlie"}
    assert [r.name for r in reports_of(names)] == ["alpha", "bravo", "charlie"]
    assert sys.modules[calls].order == ["alpha", "bravo", "charlie"]  # type: ignore[attr-defined]


def test_blocking_by_environment_keeps_the_plugin_from_being_imported(
    fake_dists: FakeDists, fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = fake_dists.add(
        "acme-dist", "1.0", {"acme": plugin_source("registry.register('models', 'net', 'a:Net')")}
    )
    fake_dists.add(
        "other-dist",
        "1.0",
        {"other": plugin_source("registry.register('models', 'other', 'a:Net')")},
    )
    monkeypatch.setenv("CORELIB_BLOCK_PLUGINS", " acme , unknown_name")
    assert [(r.name, r.status) for r in reports_of({"acme", "other"})] == [
        ("acme", "blocked"),
        ("other", "loaded"),
    ]
    assert modules["acme"] not in sys.modules
    with pytest.raises(PluginError, match="plugin 'acme' is blocked"):
        fresh_registry.get("acme/net")


def test_blocking_from_code_before_and_after_loading(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    modules = fake_dists.add(
        "acme-dist", "1.0", {"acme": plugin_source("registry.register('models', 'net', 'a:Net')")}
    )
    fake_dists.add(
        "other-dist",
        "1.0",
        {"other": plugin_source("registry.register('models', 'other', 'a:Net')")},
    )
    get_plugin_manager(load=False).set_blocked("acme")
    assert "acme/net" not in fresh_registry
    assert modules["acme"] not in sys.modules

    manager = get_plugin_manager()
    assert "other/other" in fresh_registry
    manager.set_blocked("other")
    assert "other/other" not in fresh_registry
    assert manager.get_plugin("other") is None
    assert [r.status for r in reports_of({"acme", "other"})] == ["blocked", "blocked"]


def test_disabling_autoload_skips_discovery_but_code_registrations_work(
    fake_dists: FakeDists, fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = fake_dists.add(
        "acme-dist", "1.0", {"acme": plugin_source("registry.register('models', 'net', 'a:Net')")}
    )
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    fresh_registry.register("models", "mine", "a:Mine")
    assert get_plugin_manager().reports() == []
    assert [e.qualified_name for e in fresh_registry.entries()] == ["local/mine"]
    assert modules["acme"] not in sys.modules


def test_strict_mode_makes_a_broken_plugin_fatal(
    fake_dists: FakeDists, fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists.add("broken-dist", "0.1", {"broken": "raise ValueError('bad plugin')\n"})
    monkeypatch.setenv("CORELIB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"broken \(broken-dist 0.1\): ValueError: bad plugin"):
        get_plugin_manager()
    with pytest.raises(PluginError, match="CORELIB_STRICT_PLUGINS"):
        fresh_registry.get("anything")


def test_a_plugin_can_add_hookspecs_that_other_plugins_implement(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    # "impl" loads before "specs" (name order): pluggy accepts the implementation first and
    # validates it when the spec arrives; adding the same specs twice is harmless.
    specs = """
        import sys
        from corelib.registry import get_plugin_manager
        from corelib.hooks import hookimpl, hookspec

        @hookspec(firstresult=True)
        def acme_on_step(step):
            '''Called after each step.'''

        get_plugin_manager().add_hookspecs(sys.modules[__name__])

        @hookimpl
        def corelib_register(registry):
            get_plugin_manager().add_hookspecs(sys.modules[__name__])
    """
    impl = """
        from corelib.hooks import hookimpl

        @hookimpl
        def acme_on_step(step):
            return step * 10
    """
    fake_dists.add("acme-dist", "1.0", {"specs": specs, "impl": impl})
    manager = get_plugin_manager()
    assert [r.status for r in reports_of({"specs", "impl"})] == ["loaded", "loaded"]
    assert manager.hook.acme_on_step(step=4) == 40


def test_a_plugin_registered_from_code_runs_its_register_hook(fresh_registry: Registry) -> None:
    from corelib.hooks import hookimpl

    class InlinePlugin:
        @hookimpl
        def corelib_register(self, registry: object) -> None:
            registry.register("models", "inline", "a.b:Inline")  # type: ignore[attr-defined]

    manager = get_plugin_manager()
    plugin = InlinePlugin()
    manager.register(plugin, name="inline")
    assert fresh_registry.entry("inline").qualified_name == "inline/inline"
    assert "(registered in code)" in fresh_registry.origin("inline/inline")
    manager.unregister(plugin)
    assert "inline/inline" not in fresh_registry
    manager.register(plugin, name="inline")
    manager.unregister(name="inline")
    assert "inline/inline" not in fresh_registry


def test_the_name_local_is_reserved(fake_dists: FakeDists, fresh_registry: Registry) -> None:
    fake_dists.add("sneaky-dist", "1.0", {"local": plugin_source()})
    (report,) = reports_of({"local"})
    assert report.status == "failed"
    assert report.error == "ValueError: the plugin name 'local' is reserved for code"


@pytest.mark.timeout(60)
def test_import_corelib_discovers_no_plugin_and_imports_nothing_heavy(
    fake_dists: FakeDists,
) -> None:
    modules = fake_dists.add("acme-dist", "1.0", {"acme": plugin_source()})
    code = (
        "import sys, corelib\n"
        "from corelib.registry import _global\n"
        "assert _global._manager is None, 'plugin manager created at import'\n"
        f"assert {modules['acme']!r} not in sys.modules, 'plugin imported'\n"
        "heavy = {'torch', 'numpy', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "corelib.registry.entries()\n"
        f"assert {modules['acme']!r} in sys.modules, 'plugin not discovered on first lookup'\n"
    )
    path = os.pathsep.join([str(fake_dists.root), str(REPO)])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_lookups_of_a_failed_plugin_are_registry_errors(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    fake_dists.add("broken-dist", "0.1", {"broken": "1 / 0\n"})
    with pytest.raises(RegistryError, match="ZeroDivisionError"):
        fresh_registry.entry("broken/x")


def test_a_config_naming_a_component_of_a_broken_plugin_gets_its_import_error(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    from corelib import InstantiationError, instantiate

    fake_dists.add("broken-dist", "0.1", {"broken": "import no_such_dependency_xyz\n"})
    with pytest.raises(InstantiationError) as info:
        instantiate({"model": {"_target_": "broken/net", "width": 3}})
    message = str(info.value)
    assert info.value.path == "model"
    assert "plugin 'broken' from distribution broken-dist 0.1 failed to import" in message
    assert "No module named 'no_such_dependency_xyz'" in message
