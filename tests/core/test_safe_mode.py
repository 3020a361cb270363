"""Safe mode: deny by default; registered components and allowlisted prefixes only."""

import subprocess
import sys

import pytest

from corelib import InstantiationError, instantiate, register


def test_os_system_is_refused_before_import_or_call(tmp_path):
    marker = tmp_path / "pwned"
    cfg = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    with pytest.raises(InstantiationError, match=r"refused 'os\.system'"):
        instantiate(cfg, _allow_=())
    assert not marker.exists()


@pytest.mark.parametrize("alias", ["logging.os.system", "posixpath.os.system"])
def test_aliases_are_refused_by_the_real_module(alias):
    prefix = alias.split(".")[0]
    with pytest.raises(InstantiationError, match="refused") as info:
        instantiate({"_target_": alias, "_args_": ["true"]}, _allow_=[prefix])
    assert "'os'" in str(info.value) or "'posix'" in str(info.value)


def test_nothing_outside_the_allowlist_is_imported():
    code = (
        "import sys\n"
        "from corelib import instantiate, InstantiationError\n"
        "assert 'wave' not in sys.modules\n"
        "try:\n"
        "    instantiate({'_target_': 'wave.open', '_args_': ['x']}, _allow_=['collections'])\n"
        "except InstantiationError:\n"
        "    pass\n"
        "print('wave' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_allowlisted_prefix_is_reachable_on_dotted_boundaries():
    assert instantiate({"_target_": "collections.OrderedDict"}, _allow_=["collections"]) == {}
    with pytest.raises(InstantiationError, match="refused"):
        instantiate({"_target_": "collections.OrderedDict"}, _allow_=["collect"])


def test_registered_components_are_reachable():
    @register("models", "safe_mode_probe")
    def probe(x: int = 1) -> int:
        return x * 2

    assert instantiate({"_target_": "local/safe_mode_probe", "x": 4}, _allow_=()) == 8


def test_import_nodes_obey_the_allowlist():
    with pytest.raises(InstantiationError, match="refused"):
        instantiate({"fn": {"_import_": "os.system"}}, _allow_=())


def test_callable_objects_obey_the_allowlist():
    import os

    with pytest.raises(InstantiationError, match="refused"):
        instantiate({"_target_": os.system, "_args_": ["true"]}, _allow_=())


def test_unrestricted_by_default():
    assert instantiate({"_target_": "os.path.join", "_args_": ["a", "b"]}) == "a/b"
