"""The instantiate hooks: resolve_target first, before/after around each target node."""

import pytest
from my_app import Net

from corelib import (
    ConfigError,
    InstantiationError,
    L,
    PluginError,
    get_plugin_manager,
    hookimpl,
    instantiate,
)


class EnvTargets:
    """Claims target strings of the form ``env:NAME`` (a plugin-defined target form)."""

    @hookimpl
    def corelib_resolve_target(self, target):
        if target.startswith("env:"):
            return lambda **kwargs: ("env", target[4:], kwargs)
        return None


class Recorder:
    def __init__(self):
        self.before, self.after = [], []

    @hookimpl
    def corelib_before_instantiate(self, node, path):
        if node.get("forbidden"):
            raise PermissionError("forbidden node")
        self.before.append(path)

    @hookimpl
    def corelib_after_instantiate(self, obj, node, path):
        self.after.append((path, type(obj).__name__))


class Wrapper:
    @hookimpl
    def corelib_after_instantiate(self, obj, node, path):
        return ("wrapped", obj) if isinstance(obj, Net) else None


@pytest.fixture
def plugin_manager(fresh_registry):
    manager = get_plugin_manager()
    yield manager


def test_resolve_target_hook_claims_its_own_forms_first(plugin_manager):
    plugin_manager.register(EnvTargets(), name="env-targets")
    assert instantiate({"_target_": "env:HOME", "x": 1}) == ("env", "HOME", {"x": 1})
    assert instantiate(L("my_app.Net")(width=2)) == Net(2)  # unclaimed strings: built-in rules


def test_before_is_preorder_after_is_postorder_with_paths(plugin_manager):
    recorder = Recorder()
    plugin_manager.register(recorder, name="recorder")
    instantiate({"model": L(Net)(width=L("my_app.identity")(value=3)), "plain": {"k": 1}})
    assert recorder.before == ["model", "model.width"]
    assert recorder.after == [("model.width", "int"), ("model", "Net")]


def test_before_hook_can_refuse_a_node(plugin_manager):
    plugin_manager.register(Recorder(), name="recorder")
    with pytest.raises(InstantiationError, match="forbidden node") as info:
        instantiate({"a": [L(Net)(), {"_target_": "my_app.Net", "forbidden": True}]})
    assert info.value.path == "a[1]"


class Strict:
    """Raises corelib's own errors (not InstantiationError) from both hooks."""

    @hookimpl
    def corelib_before_instantiate(self, node, path):
        if node.get("refuse") == "before":
            raise ConfigError("not in this config")

    @hookimpl
    def corelib_after_instantiate(self, obj, node, path):
        if node.get("refuse") == "after":
            raise ConfigError("not after this")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_hook_raising_a_corelib_error_is_an_instantiation_error_with_a_path(plugin_manager, when):
    plugin_manager.register(Strict(), name="strict")
    with pytest.raises(InstantiationError, match=r"not (in this config|after this)") as info:
        instantiate({"a": {"b": {"_target_": "my_app.collect", "refuse": when}}})
    assert info.value.path == "a.b"
    assert isinstance(info.value.__cause__, ConfigError)


def test_after_hook_may_replace_the_object_and_sharing_keeps_it(plugin_manager):
    plugin_manager.register(Wrapper(), name="wrapper")
    net = L(Net)(width=1)
    built = instantiate({"a": net, "b": net})
    assert built["a"] == ("wrapped", Net(1)) and built["a"] is built["b"]


def test_new_style_wrapper_sees_the_result(plugin_manager):
    seen = []

    class Timing:
        @hookimpl(wrapper=True)
        def corelib_after_instantiate(self, obj, node, path):
            result = yield
            seen.append(path)
            return result

    plugin_manager.register(Timing(), name="timing")
    plugin_manager.register(Wrapper(), name="wrapper")
    assert instantiate(L(Net)(width=5)) == ("wrapped", Net(5))
    assert seen == [""]


def test_a_raising_resolve_hook_is_an_instantiation_error_naming_the_plugin(plugin_manager):
    class Broken:
        @hookimpl
        def corelib_resolve_target(self, target):
            raise RuntimeError("resolver bug")

    plugin_manager.register(Broken(), name="broken")
    with pytest.raises(InstantiationError) as info:
        instantiate({"a": {"_target_": "my_app.Net"}})
    assert str(info.value) == (
        "at 'a' (target 'my_app.Net'): plugin 'broken' (registered in code) "
        "hook corelib_resolve_target raised RuntimeError: resolver bug"
    )
    assert info.value.path == "a" and isinstance(info.value.__cause__, PluginError)
    assert isinstance(info.value.__cause__.__cause__, RuntimeError)
