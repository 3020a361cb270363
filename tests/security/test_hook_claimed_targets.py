"""Safe mode applies to the objects that a plugin's ``corelib_resolve_target`` hook claims.

A hook is asked first for every target string; what it returns must be registered, or under an
allowed prefix and not denied, exactly like an import path.
"""

from __future__ import annotations

import json

import pytest

from corelib import InstantiationError, get_plugin_manager, hookimpl, instantiate, register


class ToolTargets:
    """Claims ``tool:NAME`` target strings (a plugin-defined target form)."""

    def __init__(self, tools: dict[str, object]) -> None:
        self.tools = tools

    @hookimpl
    def corelib_resolve_target(self, target: str) -> object:
        if target.startswith("tool:"):
            return self.tools[target[len("tool:") :]]
        return None


def triple(x: int) -> int:
    return 3 * x


@pytest.fixture
def claim(fresh_registry):
    """Register a ``ToolTargets`` plugin claiming the given tools."""

    def install(**tools: object) -> None:
        get_plugin_manager().register(ToolTargets(tools), name="tool-targets")

    return install


def test_a_claimed_object_outside_the_allowlist_is_refused(claim):
    claim(dumps=json.dumps)
    cfg = {"_target_": "tool:dumps", "_args_": [[1]]}
    with pytest.raises(InstantiationError, match=r"refused 'tool:dumps': not allowed.*'json'"):
        instantiate(cfg, _allow_=["collections"])
    assert instantiate(cfg) == "[1]"  # unrestricted, the claim stands


def test_a_claimed_object_under_an_allowed_prefix_is_accepted(claim):
    claim(dumps=json.dumps)
    assert instantiate({"_target_": "tool:dumps", "_args_": [[1]]}, _allow_=["json"]) == "[1]"


def test_a_claimed_registered_component_is_accepted(claim):
    register("models", "hook_claimed_triple")(triple)
    claim(triple=triple)
    assert instantiate({"_target_": "tool:triple", "x": 2}, _allow_=()) == 6


def test_a_claimed_denied_callable_is_refused_under_its_allowed_prefix(claim, tmp_path):
    import os

    marker = tmp_path / "pwned"
    claim(shell=os.system)
    cfg = {"_target_": "tool:shell", "_args_": [f"touch {marker}"]}
    with pytest.raises(InstantiationError, match=r"refused 'tool:shell': denied"):
        instantiate(cfg, _allow_=["os", "posix"])
    assert not marker.exists()
