"""``check`` validates typed values without constructing them, and calls no instantiate hook.

A nested plain dict for an attrs-typed parameter is checked field by field: no ``__init__``,
``__attrs_post_init__``, validator or converter of the class runs, and a type error deep inside
the dict is reported at its own path. ``corelib_resolve_target`` hooks are asked (targets are
resolved as ``instantiate`` resolves them); ``corelib_before/after_instantiate`` never run.
"""

from __future__ import annotations

import enum

import attrs
import pytest

from corelib import check, get_plugin_manager, hookimpl, instantiate

CALLS: list[str] = []


def _record_validator(instance: object, attribute: attrs.Attribute, value: object) -> None:
    CALLS.append(f"validator {attribute.name}")


def _record_converter(value: int) -> int:
    CALLS.append("converter")
    return value


@attrs.define
class Inner:
    x: int
    checked: int = attrs.field(default=0, validator=_record_validator)
    converted: int = attrs.field(default=0, converter=_record_converter)

    def __attrs_post_init__(self) -> None:
        CALLS.append("Inner.__attrs_post_init__")


@attrs.define
class Settings:
    inner: Inner
    name: str = "run"

    def __attrs_post_init__(self) -> None:
        CALLS.append("Settings.__attrs_post_init__")


class Mode(enum.Enum):
    FAST = "fast"


class LenientMode(enum.Enum):
    FAST = "fast"

    @classmethod
    def _missing_(cls, value: object) -> LenientMode | None:
        CALLS.append("LenientMode._missing_")
        return cls.FAST if str(value).lower() == "fast" else None


def build(
    settings: Settings, modes: list[Mode] = (), lenient: LenientMode = LenientMode.FAST
) -> tuple[Settings, list[Mode]]:
    return settings, list(modes)


@pytest.fixture(autouse=True)
def empty_record() -> None:
    CALLS.clear()


def node(settings: dict, **extra: object) -> dict:
    return {"_target_": build, "settings": settings, **extra}


def test_check_reports_a_deep_type_error_at_its_path_and_constructs_nothing() -> None:
    problems = check(node({"inner": {"x": "three", "checked": 1, "converted": 2}}))
    assert [(p.path, p.message) for p in problems] == [
        ("settings.inner.x", "expected int, got str 'three'")
    ]
    assert CALLS == []


def test_a_valid_nested_dict_passes_without_being_built() -> None:
    assert check(node({"inner": {"x": 3, "checked": 1, "converted": 2}, "name": "a"})) == []
    assert CALLS == []
    built, _ = instantiate(node({"inner": {"x": 3}}))  # instantiate does build it
    assert built == Settings(Inner(3))
    assert "Inner.__attrs_post_init__" in CALLS


def test_unknown_and_missing_fields_are_problems_like_cattrs_would_find() -> None:
    [unknown] = check(node({"inner": {"x": 1, "y": 2}}))
    assert unknown.path == "settings.inner"
    assert "unknown field(s) 'y'" in unknown.message
    [missing] = check(node({"inner": {}}))
    assert missing.path == "settings.inner.x"
    assert "required field missing" in missing.message
    assert CALLS == []


def test_enum_values_are_looked_up_without_calling_the_class() -> None:
    assert check(node({"inner": {"x": 1}}, modes=["fast", "FAST"])) == []
    [problem] = check(node({"inner": {"x": 1}}, modes=["fast", "slow"]))
    assert problem.path == "modes[1]"
    # a lookup of the class's own (_missing_) is not run: check cannot know, and lets it pass
    assert check(node({"inner": {"x": 1}}, lenient="Fast")) == []
    assert CALLS == []


class HookRecorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def corelib_resolve_target(self, target: str) -> object:
        self.calls.append(f"resolve {target}")
        return build if target == "hooked:build" else None

    @hookimpl
    def corelib_before_instantiate(self, node: dict, path: str) -> None:
        self.calls.append(f"before {path}")

    @hookimpl
    def corelib_after_instantiate(self, obj: object, node: dict, path: str) -> None:
        self.calls.append(f"after {path}")


def test_check_asks_resolve_hooks_but_calls_no_instantiate_hook(fresh_registry: object) -> None:
    recorder = HookRecorder()
    get_plugin_manager().register(recorder, name="hook-recorder")
    cfg = {"job": {"_target_": "hooked:build", "settings": {"inner": {"x": "bad"}}}}
    [problem] = check(cfg)
    assert problem.path == "job.settings.inner.x"
    assert recorder.calls == ["resolve hooked:build"]
    assert CALLS == []
