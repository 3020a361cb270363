"""Safe mode reaches what a component builds later: the children of a ``_recursive_: false`` node.

Such a component receives its children as written and calls ``instantiate(node)`` itself, when
it is constructed or when it runs. While a safe-mode policy is in force (``corelib.safe_mode()``)
that call builds under it: the allowlist, the private-name and deny rules, trusted-only
parameters (nothing the nested config holds is trusted) and the hosts. ``check`` reports the
problems of those children at their paths.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from _corelib_cli import run_corelib

from corelib import InstantiationError, SafeMode, check, instantiate, safe_mode

TARGETS = '''
"""Small components that build their unbuilt children themselves."""
from typing import Annotated, Any

import corelib


class BuildsNow:
    """Builds each child while it is constructed (passing on ``allow`` and ``hosts``)."""

    def __init__(self, children: dict, allow: Any = None, hosts: tuple = ()) -> None:
        self.built = {
            name: corelib.instantiate(node, _allow_=allow, _allow_hosts_=hosts)
            for name, node in children.items()
        }


class BuildsLater:
    """Keeps its children and builds them in ``run``."""

    def __init__(self, children: dict) -> None:
        self.children = children

    def run(self) -> dict:
        return {name: corelib.instantiate(node) for name, node in self.children.items()}


class Keyed:
    def __init__(self, api_key_env: Annotated[str, corelib.Trusted] = "DEFAULT", size: int = 1):
        self.api_key_env = api_key_env
        self.size = size


def policy_seen() -> Any:
    return corelib.safe_mode()


def _private() -> None:
    raise AssertionError("a private name was built")
'''


@pytest.fixture(autouse=True)
def targets(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "deferred_targets_module"
    folder.mkdir(exist_ok=True)
    (folder / "deferred_targets.py").write_text(TARGETS)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def builds_now(**children: Any) -> dict[str, Any]:
    return {"_target_": "deferred_targets.BuildsNow", "_recursive_": False, "children": children}


ALLOW = ["deferred_targets"]


def test_a_child_built_by_the_component_is_refused_by_the_deny_list(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    with pytest.raises(InstantiationError, match="denied") as raised:
        instantiate(builds_now(evil=evil), _allow_=ALLOW)
    assert raised.value.path == ""  # the component raised while it was constructed
    assert not marker.exists()


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("collections.OrderedDict", "not allowed"),
        ("deferred_targets._private", "private name"),
    ],
)
def test_a_child_built_by_the_component_meets_the_allowlist_and_private_rules(
    target: str, rule: str
) -> None:
    with pytest.raises(InstantiationError, match=rule):
        instantiate(builds_now(child={"_target_": target}), _allow_=ALLOW)


def test_without_safe_mode_the_component_builds_its_children_unrestricted() -> None:
    built = instantiate(builds_now(child={"_target_": "collections.OrderedDict", "a": 1}))
    assert built.built == {"child": {"a": 1}}
    assert instantiate(builds_now(seen={"_target_": "deferred_targets.policy_seen"})).built == {
        "seen": None
    }


def test_a_child_built_under_the_policy_sees_its_allowlist_and_hosts_and_no_trusted_names() -> None:
    cfg = builds_now(seen={"_target_": "deferred_targets.policy_seen"})
    built = instantiate(cfg, _allow_=ALLOW, _allow_hosts_=["127.0.0.1:8000"], _trusted_=[""])
    assert built.built["seen"] == SafeMode(allow=("deferred_targets",), hosts=("127.0.0.1:8000",))


def test_nothing_a_child_holds_is_trusted_even_where_the_outer_build_trusts_its_path() -> None:
    cfg = builds_now(key={"_target_": "deferred_targets.Keyed", "api_key_env": "STOLEN"})
    with pytest.raises(InstantiationError, match="trusted-only") as raised:
        instantiate(cfg, _allow_=ALLOW, _trusted_=["children.key.api_key_env"])
    assert "api_key_env" in str(raised.value)
    # the default value is always fine; unrestricted, Python may set it
    assert instantiate(builds_now(key={"_target_": "deferred_targets.Keyed"}), _allow_=ALLOW)
    assert instantiate(cfg).built["key"].api_key_env == "STOLEN"


def test_an_explicit_allow_none_inside_safe_mode_does_not_leave_it() -> None:
    cfg = builds_now(child={"_target_": "collections.OrderedDict"})
    cfg["allow"] = None  # BuildsNow passes it on as _allow_=None
    with pytest.raises(InstantiationError, match="not allowed"):
        instantiate(cfg, _allow_=ALLOW)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("allow", ["deferred_targets", "os"]), ("hosts", ["evil.example:443"])],
)
def test_a_build_inside_safe_mode_may_narrow_the_policy_but_not_widen_it(
    setting: str, value: list[str]
) -> None:
    cfg = builds_now(child={"_target_": "deferred_targets.Keyed"})
    cfg[setting] = value
    with pytest.raises(InstantiationError, match="may narrow the policy in force, not widen it"):
        instantiate(cfg, _allow_=ALLOW, _allow_hosts_=["127.0.0.1:8000"])
    narrower = {**cfg, "allow": [], "hosts": []}  # registered components only
    with pytest.raises(InstantiationError, match="not allowed"):
        instantiate(narrower, _allow_=ALLOW, _allow_hosts_=["127.0.0.1:8000"])
    seen = builds_now(seen={"_target_": "deferred_targets.policy_seen"})
    seen["hosts"] = ["127.0.0.1:8000"]
    built = instantiate(seen, _allow_=ALLOW, _allow_hosts_=["127.0.0.1"])  # any port
    assert built.built["seen"].hosts == ("127.0.0.1:8000",)


def test_recursive_false_still_passes_the_children_unbuilt_in_safe_mode() -> None:
    children = {"evil": {"_target_": "os.system", "_args_": ["true"]}}
    cfg = {"_target_": "deferred_targets.BuildsLater", "_recursive_": False, "children": children}
    built = instantiate(cfg, _allow_=ALLOW)
    assert built.children["evil"] is children["evil"]
    assert safe_mode() is None  # the policy ends with the build: see the CLI test for run()


def test_check_reports_the_problems_of_the_children_at_their_paths() -> None:
    children = {
        "evil": {"_target_": "os.system", "_args_": ["true"]},
        "private": {"_target_": "deferred_targets._private"},
        "key": {"_target_": "deferred_targets.Keyed", "api_key_env": "STOLEN", "sise": 2},
        "deeper": [{"_target_": "collections.OrderedDict"}],
        "typed": {"_target_": "deferred_targets.Keyed", "size": "two"},
        "fine": {"_target_": "deferred_targets.Keyed"},
    }
    cfg = {"_target_": "deferred_targets.BuildsLater", "_recursive_": False, "children": children}
    problems = check(cfg, allow=ALLOW, trusted=["children.key.api_key_env"])
    found = {(p.path, p.target): p.message for p in problems}
    assert "denied" in found["children.evil", "os.system"]
    assert "private name" in found["children.private", "deferred_targets._private"]
    assert "did you mean 'size'" in found["children.key", "deferred_targets.Keyed"]
    assert "trusted-only" in found["children.key.api_key_env", "deferred_targets.Keyed"]
    assert "not allowed" in found["children.deeper[0]", "collections.OrderedDict"]
    assert "expected int" in found["children.typed.size", "deferred_targets.Keyed"]
    assert len(problems) == 6
    # unrestricted, only what is wrong whoever builds it; the component may fill in arguments
    unrestricted = [str(p) for p in check(cfg)]
    assert len(unrestricted) == 2, unrestricted  # the misspelling and the type


def test_check_allows_arguments_the_component_fills_in_later() -> None:
    child = {"_target_": "deferred_targets.BuildsNow"}  # 'children' missing: filled in later
    cfg = {"_target_": "deferred_targets.BuildsLater", "_recursive_": False, "children": [child]}
    assert check(cfg, allow=ALLOW) == []
    # outside a _recursive_: false node a missing argument is still a problem
    assert [p.path for p in check({"children": [child]}, allow=ALLOW)] == ["children[0]"]


def test_the_cli_neither_passes_nor_runs_a_deferred_gadget(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent(
            f"""\
            _target_: examples.reasoning.pipeline.Pipeline
            _recursive_: false
            run_dir: {tmp_path / "runs"}
            stages: {{evil: {{_target_: os.system, _args_: ["touch {marker}"]}}}}
            """
        )
    )
    allow = ("--allow-import", "examples.reasoning.pipeline")
    checked = run_corelib(tmp_path, "check", str(job), *allow)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "stages.evil (target 'os.system'): refused" in checked.stdout
    assert "denied" in checked.stdout
    ran = run_corelib(tmp_path, "run", str(job), *allow)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "denied" in ran.stderr and "Traceback" not in ran.stderr
    assert not marker.exists()


def test_the_cli_keeps_the_policy_for_a_partial_entry_that_builds_its_children_when_called(
    tmp_path: Path,
) -> None:
    # corelib run calls a _partial_ entry node after instantiate returned: still under the policy
    (tmp_path / "deferred_targets.py").write_text(TARGETS)
    marker = tmp_path / "PWNED"
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent(
            f"""\
            _target_: deferred_targets.BuildsNow
            _partial_: true
            _recursive_: false
            children: {{evil: {{_target_: os.system, _args_: ["touch {marker}"]}}}}
            """
        )
    )
    ran = run_corelib(tmp_path, "run", str(job), "--allow-import", "deferred_targets")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "denied" in ran.stderr and "Traceback" not in ran.stderr
    assert not marker.exists()
