"""Plugins cannot take corelib down: hostile and broken plugins, as real installed distributions.

Each test installs fake distributions (``fake_dists``: real ``*.dist-info`` folders with entry
points on ``sys.path``) and loads them in process, or runs the real ``corelib`` command on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corelib import InstantiationError, PluginError, RegistryError, check, instantiate
from corelib._text import describe_exception, printable
from corelib.registry import PluginReport, Registry, get_plugin_manager

if TYPE_CHECKING:
    from conftest import FakeDists

REPO = Path(__file__).resolve().parents[2]

GREETER = """
    from corelib import hookimpl

    class Greeter:
        def __init__(self, name="world"):
            self.name = name

        def run(self):
            return f"hello {self.name}"

    @hookimpl
    def corelib_register(registry):
        registry.register("examples", "greet", f"{__name__}:Greeter")
"""


def greeting(built: object) -> str:
    return built.run()  # type: ignore[attr-defined, no-any-return]


def spy_source(fake_dists: FakeDists) -> str:
    """A plugin module whose Spy class records (in another module) every hook it gets."""
    recorder = fake_dists.module("CALLS = []\n", "recorder")
    return f"\n    from {recorder} import CALLS" + SPY


SPY = """
    from corelib import hookimpl

    class Spy:
        '''Records every hook it gets and claims every target string.'''

        @hookimpl
        def corelib_register(self, registry):
            CALLS.append("register")
            registry.register("examples", "spied", "os:getcwd")

        @hookimpl
        def corelib_resolve_target(self, target):
            CALLS.append("resolve_target")
            return lambda **kwargs: "claimed by the spy"

        @hookimpl
        def corelib_before_instantiate(self, node, path):
            CALLS.append("before")

        @hookimpl
        def corelib_after_instantiate(self, obj, node, path):
            CALLS.append("after")
            return "replaced by the spy"

        @hookimpl
        def acme_event(self):
            CALLS.append("acme_event")
            return "spy"
"""


def reports_of(*names: str) -> list[PluginReport]:
    return [r for r in get_plugin_manager().reports() if r.name in names]


def corelib(
    fake_dists: FakeDists, *argv: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the real ``corelib`` command with the fake distributions installed."""
    path = os.pathsep.join([str(fake_dists.root), str(REPO)])
    return subprocess.run(
        [sys.executable, "-m", "corelib", *argv],
        env={**os.environ, "PYTHONPATH": path, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def status_of(table: str, plugin: str) -> str:
    """The STATUS column of ``plugin``'s row in ``corelib plugins`` output."""
    rows = table.split("\n\n")[0].splitlines()
    (row,) = [line.split() for line in rows if line.startswith(f"{plugin} ")]
    return row[3]


# -- 1. whatever a plugin raises while loading, the others keep working --------------------------


class Doom(BaseException):
    """A custom BaseException subclass, as a hostile plugin might raise."""


@pytest.mark.parametrize(
    ("raising", "reported"),
    [
        ("raise SystemExit(3)", "SystemExit: 3"),
        ("raise SystemExit", "SystemExit"),
        ("raise GeneratorExit('stop')", "GeneratorExit: stop"),
        ("class Doom(BaseException): pass\nraise Doom('doom')", "Doom: doom"),
    ],
)
@pytest.mark.parametrize("when", ["import", "register"])
def test_a_plugin_raising_any_base_exception_is_reported_and_skipped(
    fake_dists: FakeDists, fresh_registry: Registry, raising: str, reported: str, when: str
) -> None:
    if when == "import":
        source = raising + "\n"
    else:
        body = raising.replace("\n", "\n    ")
        source = (
            "from corelib import hookimpl\n"
            f"@hookimpl\ndef corelib_register(registry):\n    {body}\n"
        )
    fake_dists.add("evil-dist", "6.6", {"evil": source})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    evil, good = reports_of("evil", "good")
    assert (evil.status, evil.distribution, evil.version, evil.error) == (
        "failed",
        "evil-dist",
        "6.6",
        reported,
    )
    assert (good.status, good.components) == ("loaded", 1)
    assert greeting(instantiate({"_target_": "greet", "name": "you"})) == "hello you"
    with pytest.raises(PluginError, match=f"evil-dist 6.6 failed to {when}: {reported}"):
        fresh_registry.get("evil/anything")


def test_keyboard_interrupt_while_loading_goes_through(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    fake_dists.add("evil-dist", "1.0", {"evil": "raise KeyboardInterrupt\n"})
    with pytest.raises(KeyboardInterrupt):
        get_plugin_manager()


def test_a_plugin_whose_error_cannot_be_printed_is_still_reported(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    source = """
        class Unprintable(Exception):
            def __str__(self):
                raise SystemExit(9)

        raise Unprintable()
    """
    fake_dists.add("evil-dist", "1.0", {"evil": source})
    (report,) = reports_of("evil")
    assert (report.status, report.error) == ("failed", "Unprintable: <str() failed: SystemExit>")


@pytest.mark.timeout(120)
def test_cli_plugins_list_and_run_survive_a_plugin_calling_sys_exit(
    fake_dists: FakeDists, tmp_path: Path
) -> None:
    fake_dists.add("evil-dist", "6.6", {"evil": "import sys\nsys.exit(7)\n"})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})

    plugins = corelib(fake_dists, "plugins")
    assert plugins.returncode == 0, plugins.stderr
    assert "evil (evil-dist 6.6): SystemExit: 7" in plugins.stdout
    assert (status_of(plugins.stdout, "evil"), status_of(plugins.stdout, "good")) == (
        "failed",
        "loaded",
    )

    listed = corelib(fake_dists, "list", "examples")
    assert listed.returncode == 0, listed.stderr
    assert "good/greet" in listed.stdout

    config = tmp_path / "greet.yaml"
    config.write_text("_target_: greet\nname: corelib\n")
    ran = corelib(fake_dists, "run", str(config))
    assert (ran.returncode, ran.stdout) == (0, "hello corelib\n"), ran.stderr

    config.write_text("_target_: evil/anything\n")
    refused = corelib(fake_dists, "run", str(config))
    assert refused.returncode == 2
    assert "plugin 'evil' from distribution evil-dist 6.6 failed to import: SystemExit: 7" in (
        refused.stderr
    )


def write_dist_info(fake_dists: FakeDists, metadata: bytes, entry_points: bytes) -> None:
    dist_info = fake_dists.root / "rough_dist-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_bytes(metadata)
    (dist_info / "entry_points.txt").write_bytes(entry_points)


def test_a_distribution_with_a_broken_entry_points_file_fails_alone(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    metadata = b"Metadata-Version: 2.1\nName: rough-dist\nVersion: 1.0\n"
    write_dist_info(fake_dists, metadata, b"[corelib.plugins]\nno equals sign here\n")
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    (report,) = reports_of("(rough-dist)")
    assert (report.status, report.distribution, report.version) == ("failed", "rough-dist", "1.0")
    assert report.error is not None
    assert report.error.startswith("its entry_points.txt cannot be read: TypeError")
    assert greeting(instantiate({"_target_": "greet"})) == "hello world"


def test_a_distribution_with_unreadable_metadata_still_loads_as_unknown(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    module = fake_dists.module(GREETER, "rough")
    write_dist_info(
        fake_dists, b"\xff\xfe\x00garbage", f"[corelib.plugins]\nrough = {module}\n".encode()
    )
    (report,) = reports_of("rough")
    assert (report.status, report.distribution, report.version) == ("loaded", None, None)
    assert greeting(instantiate({"_target_": "rough/greet"})) == "hello world"


def test_a_component_module_calling_sys_exit_on_first_use_is_a_registry_error(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    components = fake_dists.module("import sys\nsys.exit(5)\n", "exiting")
    plugin = f"""
        from corelib import hookimpl

        @hookimpl
        def corelib_register(registry):
            registry.register("examples", "exiting", "{components}:Thing")
    """
    fake_dists.add("acme-dist", "1.0", {"acme": plugin})
    with pytest.raises(RegistryError, match=r"could not be loaded from .*: SystemExit: 5"):
        fresh_registry.get("acme/exiting")
    with pytest.raises(InstantiationError, match="SystemExit: 5") as info:
        instantiate({"a": {"_target_": "acme/exiting"}})
    assert info.value.path == "a"


# -- 2. a plugin that fails is fully unregistered ------------------------------------------------


def spy_calls(fake_dists: FakeDists) -> list[str]:
    (recorder,) = [m for m in fake_dists.modules if m.endswith("_recorder")]
    return sys.modules[recorder].CALLS  # type: ignore[attr-defined, no-any-return]


def assert_no_hook_of_the_spy_runs(fresh_registry: Registry) -> None:
    assert greeting(instantiate({"a": {"_target_": "greet"}})["a"]) == "hello world"
    acme_event = getattr(get_plugin_manager().hook, "acme_event", None)
    assert acme_event is None or acme_event() == []
    assert "spied" not in fresh_registry
    assert "first" not in fresh_registry


def test_a_plugin_with_an_invalid_entry_point_name_is_never_imported(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    module = fake_dists.module(spy_source(fake_dists) + "\n    Spy = Spy()\n", "odd")
    dist_info = fake_dists.root / "odd_dist-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: odd-dist\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[corelib.plugins]\nodd/name = {module}:Spy\n")
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    (report,) = reports_of("odd/name")
    assert report.status == "failed"
    assert report.error is not None and "invalid plugin name 'odd/name'" in report.error
    assert module not in sys.modules
    assert_no_hook_of_the_spy_runs(fresh_registry)


@pytest.mark.parametrize("raising", ["RuntimeError('half-way')", "SystemExit(1)"])
def test_a_plugin_failing_in_register_after_adding_hooks_leaves_nothing_behind(
    fake_dists: FakeDists, fresh_registry: Registry, raising: str
) -> None:
    # The entry module registers a helper object with hooks of its own (and the helper's
    # corelib_register adds a component), then fails: the helper goes with it.
    source = (
        spy_source(fake_dists)
        + f"""
    from corelib import get_plugin_manager

    @hookimpl
    def corelib_register(registry):
        registry.register("examples", "first", "os:getcwd")
        get_plugin_manager().register(Spy(), name="spy-helper")
        raise {raising}
    """
    )
    fake_dists.add("spy-dist", "1.0", {"spy": source})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    (report,) = reports_of("spy")
    assert report.status == "failed"
    assert spy_calls(fake_dists) == ["register"]  # the helper's register ran, then failed
    manager = get_plugin_manager()
    assert manager.get_plugin("spy") is None and manager.get_plugin("spy-helper") is None
    assert_no_hook_of_the_spy_runs(fresh_registry)
    assert spy_calls(fake_dists) == ["register"]


def test_a_plugin_failing_at_import_after_registering_hooks_and_components_leaves_nothing(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    source = (
        spy_source(fake_dists)
        + """
    from corelib import get_plugin_manager, register

    get_plugin_manager().register(Spy(), name="spy-helper")
    register("examples", "sneaky")(len)
    raise SystemExit(4)
    """
    )
    fake_dists.add("spy-dist", "1.0", {"spy": source})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    (report,) = reports_of("spy")
    assert (report.status, report.error) == ("failed", "SystemExit: 4")
    assert "local/sneaky" not in fresh_registry
    assert_no_hook_of_the_spy_runs(fresh_registry)
    assert spy_calls(fake_dists) == ["register"]


# -- 3. a hook that raises names its plugin ------------------------------------------------------


def raising_hook(hook: str, signature: str) -> str:
    return f"""
        from corelib import hookimpl

        @hookimpl
        def {hook}({signature}):
            raise ValueError("plugin bug")
    """


@pytest.mark.parametrize(
    ("hook", "signature"),
    [
        ("corelib_resolve_target", "target"),
        ("corelib_before_instantiate", "node, path"),
        ("corelib_after_instantiate", "obj, node, path"),
    ],
)
def test_a_raising_hook_names_its_plugin_and_distribution(
    fake_dists: FakeDists, fresh_registry: Registry, hook: str, signature: str
) -> None:
    fake_dists.add("acme-dist", "1.0", {"acme": raising_hook(hook, signature)})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    with pytest.raises(InstantiationError) as info:
        instantiate({"a": {"_target_": "greet"}})
    assert info.value.path == "a"
    assert str(info.value).endswith(
        f"plugin 'acme' (acme-dist 1.0) hook {hook} raised ValueError: plugin bug; "
        "to run without it: --block-plugin acme"
    )
    assert [r.status for r in reports_of("acme")] == ["loaded"]  # it stays loaded: see docs


def test_check_reports_a_raising_resolve_hook_by_plugin_for_every_node(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    fake_dists.add("acme-dist", "1.0", {"acme": raising_hook("corelib_resolve_target", "target")})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    problems = check({"a": {"_target_": "greet"}, "b": {"_target_": "greet"}})
    assert [str(p.path) for p in problems] == ["a", "b"]
    for problem in problems:
        assert "plugin 'acme' (acme-dist 1.0) hook corelib_resolve_target raised" in str(problem)


def test_the_plugin_whose_hook_raised_is_blamed_not_the_wrapper_around_it(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    wrapper = """
        from corelib import hookimpl

        @hookimpl(wrapper=True)
        def corelib_before_instantiate(node, path):
            return (yield)

        @hookimpl
        def corelib_after_instantiate(obj, node, path):
            return None
    """
    fake_dists.add("outer-dist", "2.0", {"outer": wrapper})
    fake_dists.add(
        "inner-dist", "1.0", {"inner": raising_hook("corelib_before_instantiate", "node, path")}
    )
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    with pytest.raises(InstantiationError, match=r"plugin 'inner' \(inner-dist 1\.0\) hook"):
        instantiate({"_target_": "greet"})


@pytest.mark.timeout(120)
def test_cli_run_names_the_plugin_whose_hook_raised_and_block_plugin_is_the_way_out(
    fake_dists: FakeDists, tmp_path: Path
) -> None:
    fake_dists.add("acme-dist", "1.0", {"acme": raising_hook("corelib_resolve_target", "target")})
    fake_dists.add("good-dist", "1.0", {"good": GREETER})
    config = tmp_path / "greet.yaml"
    config.write_text("_target_: greet\n")
    failed = corelib(fake_dists, "run", str(config))
    assert failed.returncode == 2
    assert failed.stderr == (  # the CLI names the config file before the key path
        f"corelib: error: {config}: at the root (target 'greet'): plugin 'acme' (acme-dist 1.0) "
        "hook "
        "corelib_resolve_target raised ValueError: plugin bug; "
        "to run without it: --block-plugin acme\n"
    )
    blocked = corelib(fake_dists, "run", str(config), "--block-plugin", "acme")
    assert (blocked.returncode, blocked.stdout) == (0, "hello world\n"), blocked.stderr


# -- 4. misspelled corelib_* hooks are reported ---------------------------------------------------

TYPO = """
    from corelib import hookimpl

    @hookimpl
    def corelib_regster(registry):
        registry.register("examples", "never", "os:getcwd")

    @hookimpl
    def acme_later(step):
        '''Not corelib's: a hook some plugin may declare later.'''
"""


def test_a_misspelled_corelib_hook_is_a_warning_with_a_close_match(
    fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    optional = """
        from corelib import hookimpl

        @hookimpl(optionalhook=True)
        def corelib_maybe_declared_one_day(x): ...
    """
    fake_dists.add("typo-dist", "0.1", {"typo": TYPO, "optional": optional})
    optional_report, report = reports_of("typo", "optional")  # in loading (name) order
    assert optional_report.status == "loaded"
    assert (report.status, report.error, report.components) == ("warning", None, 0)
    assert report.warning == (
        "unknown hook corelib_regster (did you mean corelib_register?): "
        "no hookspec declares it, so it never runs"
    )


def test_strict_mode_makes_a_misspelled_corelib_hook_an_error(
    fake_dists: FakeDists, fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists.add("typo-dist", "0.1", {"typo": TYPO})
    monkeypatch.setenv("CORELIB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"typo: unknown hook corelib_regster \(did you mean"):
        get_plugin_manager()


def test_corelib_hookspecs_a_plugin_declares_while_loading_or_later_are_known(
    fake_dists: FakeDists, fresh_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "impl" loads before "specs" (name order); the specs module declares corelib_on_fit at
    # import and corelib_on_end only when it is first needed (after loading).
    specs = """
        import sys
        from corelib import get_plugin_manager, hookspec

        @hookspec
        def corelib_on_fit(step): ...

        get_plugin_manager().add_hookspecs(sys.modules[__name__])

        class Later:
            @hookspec
            def corelib_on_end(self): ...
    """
    impl = """
        from corelib import hookimpl

        @hookimpl
        def corelib_on_fit(step): ...

        @hookimpl
        def corelib_on_end(): ...
    """
    modules = fake_dists.add("acme-dist", "1.0", {"specs": specs, "impl": impl})
    monkeypatch.setenv("CORELIB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"impl: unknown hook corelib_on_end\b") as info:
        get_plugin_manager()
    assert "unknown hook corelib_on_fit" not in str(info.value)
    manager = get_plugin_manager(load=False)
    manager.add_hookspecs(sys.modules[modules["specs"]].Later)  # type: ignore[attr-defined]
    assert [(r.name, r.status) for r in manager.reports() if r.name in ("impl", "specs")] == [
        ("impl", "loaded"),
        ("specs", "loaded"),
    ]


@pytest.mark.timeout(120)
def test_cli_plugins_shows_the_misspelled_hook_and_strict_mode_exits_2(
    fake_dists: FakeDists,
) -> None:
    fake_dists.add("typo-dist", "0.1", {"typo": TYPO})
    shown = corelib(fake_dists, "plugins")
    assert shown.returncode == 0, shown.stderr
    assert status_of(shown.stdout, "typo") == "warning"
    assert (
        "typo (typo-dist 0.1): unknown hook corelib_regster (did you mean corelib_register?)"
        in shown.stdout
    )
    strict = corelib(fake_dists, "plugins", CORELIB_STRICT_PLUGINS="1")
    assert strict.returncode == 2
    assert status_of(strict.stdout, "typo") == "warning"  # the table is shown, then the error
    assert strict.stderr.startswith("corelib: error: CORELIB_STRICT_PLUGINS is set and plugins")


# -- 5. text that plugins produce is printed escaped ----------------------------------------------


def test_printable_escapes_control_format_and_surrogate_characters() -> None:
    assert printable("a\x1b[2Jb\u202ec\ud800d\te\rf\ng é 中") == (
        "a\\x1b[2Jb\\u202ec\\ud800d\\te\\rf\\ng é 中"
    )
    assert printable("one\ntwo\x07", newlines=True) == "one\ntwo\\x07"
    assert printable("plain text") == "plain text"


def test_describe_exception_bounds_the_message() -> None:
    assert describe_exception(ValueError("x" * 10_000)) == "ValueError: " + "x" * 495 + "[...]"
    assert describe_exception(SystemExit()) == "SystemExit"


CLEAR = "\x1b[2J"
HOSTILE = f"""
    from corelib import hookimpl

    def thing(size: int = 1):
        '''Does a thing.{CLEAR}\u202e'''

    @hookimpl
    def corelib_register(registry):
        registry.register("examples", "thing", f"{{__name__}}:thing")
        registry.register("examples", "x{CLEAR}y", f"{{__name__}}:thing")
"""


@pytest.mark.timeout(120)
def test_cli_output_escapes_terminal_escapes_from_plugins(fake_dists: FakeDists) -> None:
    fake_dists.add("hostile-dist", f"1.0{CLEAR}", {"hostile": HOSTILE})
    fake_dists.add("broken-dist", "0.1", {"broken": f"raise ValueError('boom{CLEAR}')\n"})
    results = [
        corelib(fake_dists, "plugins"),
        corelib(fake_dists, "list"),
        corelib(fake_dists, "describe", "hostile/thing"),
        corelib(fake_dists, "describe", "broken/thing"),
        corelib(fake_dists, "--debug", "describe", "broken/thing"),
    ]
    for result in results:
        assert "\x1b" not in result.stdout + result.stderr
        assert "\u202e" not in result.stdout + result.stderr
    plugins, listed, described, failed, traced = results
    assert plugins.returncode == 0
    assert "1.0\\x1b[2J" in plugins.stdout and "boom\\x1b[2J" in plugins.stdout
    assert "hostile/x\\x1b[2Jy" in listed.stdout
    assert "Does a thing.\\x1b[2J\\u202e" in described.stdout
    assert "hostile-dist 1.0\\x1b[2J" in described.stdout
    assert failed.returncode == 2
    assert failed.stderr.count("corelib: error: ") == 1
    assert "ValueError: boom\\x1b[2J" in failed.stderr
    assert "Traceback (most recent call last)" in traced.stderr
