"""Safe mode's three target rules: "not allowed", "private name" and "denied".

An allowed prefix trusts its package to be constructed, not every callable in it: private names
need their exact path allowed, and the deny list refuses code-execution gadgets whatever the
prefix, by spelling, by real name and by identity (aliases).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corelib import InstantiationError, check, instantiate, load_config, registry
from corelib.registry._denylist import DENIED

DOCS = Path(__file__).resolve().parents[2] / "docs" / "safe-mode.md"


def _double(x: int) -> int:
    return 2 * x


def _refusal(cfg: dict, allow: list[str]) -> tuple[str, str]:
    """The refusal ``check`` reports and the one ``instantiate`` raises, for one node."""
    problems = check(cfg, allow=allow)
    assert len(problems) == 1, problems
    with pytest.raises(InstantiationError, match="refused") as info:
        instantiate(cfg, _allow_=allow)
    return problems[0].message, str(info.value)


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("torch._utils._import_dotted_name", ["torch"]),
        ("dataclasses._create_fn", ["dataclasses"]),
        ("collections.OrderedDict.__init_subclass__", ["collections"]),
        ("test_target_rules._double", ["test_target_rules"]),
    ],
)
def test_a_private_segment_is_refused_under_an_allowed_prefix(target, allow):
    if target.startswith("torch"):
        pytest.importorskip("torch")
    for message in _refusal({"_target_": target, "_args_": ["os.system"]}, allow):
        assert "private name" in message and "denied" not in message


def test_a_private_name_allowed_exactly_is_reachable():
    allow = ["test_target_rules", "test_target_rules._double"]
    assert check({"_target_": "test_target_rules._double", "x": 4}, allow=allow) == []
    assert instantiate({"_target_": "test_target_rules._double", "x": 4}, _allow_=allow) == 8


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("torch.load", ["torch"]),
        ("torch.hub.load", ["torch"]),
        ("torch.serialization.load", ["torch"]),
        ("torch.utils.cpp_extension.load_inline", ["torch"]),
        ("torch.distributed.run.main", ["torch"]),
        ("logging.config.dictConfig", ["logging"]),
        ("typing.get_type_hints", ["typing"]),
        ("typing.ForwardRef", ["typing"]),
        ("dataclasses.make_dataclass", ["dataclasses"]),
        ("pickle.loads", ["pickle"]),
        ("marshal.loads", ["marshal"]),
        ("shelve.open", ["shelve"]),
        ("importlib.import_module", ["importlib"]),
        ("runpy.run_path", ["runpy"]),
        ("code.InteractiveInterpreter", ["code"]),
        ("subprocess.run", ["subprocess"]),
        ("os.system", ["os"]),
        ("os.execv", ["os"]),
        ("pty.spawn", ["pty"]),
        ("multiprocessing.Process", ["multiprocessing"]),
        ("ctypes.CDLL", ["ctypes"]),
        ("builtins.eval", ["builtins"]),
        ("builtins.getattr", ["builtins"]),
        ("builtins.open", ["builtins"]),
        ("operator.attrgetter", ["operator"]),
        ("numpy.load", ["numpy"]),
        # Found in review: each ran a command, wrote a .pth file or read and sent a secret.
        ("numpy.testing.measure", ["numpy"]),
        ("numpy.savetxt", ["numpy"]),
        ("numpy.loadtxt", ["numpy"]),
        ("numpy.genfromtxt", ["numpy"]),
        ("numpy.fromfile", ["numpy"]),
        ("numpy.ndarray.tofile", ["numpy"]),
        ("torch.save", ["torch"]),
        ("urllib.request.urlopen", ["urllib"]),
        ("socket.create_connection", ["socket"]),
        ("zipfile.ZipFile", ["zipfile"]),
    ],
)
def test_denied_callables_are_refused_whatever_the_prefix(target, allow):
    if target.startswith(("torch", "numpy")):
        pytest.importorskip(target.partition(".")[0])
    for message in _refusal({"_target_": target, "_args_": ["x"]}, allow):
        assert "denied" in message and "private name" not in message


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("posix.system", ["posix"]),  # os.system itself, by identity
        ("io.open", ["io"]),  # builtins.open
        ("numpy.lib.npyio.load", ["numpy"]),  # numpy.load where it is defined
        ("numpy.lib._npyio_impl.savetxt", ["numpy", "numpy.lib._npyio_impl.savetxt"]),
    ],
)
def test_aliases_of_denied_callables_are_denied(target, allow):
    pytest.importorskip(target.partition(".")[0])
    for message in _refusal({"_target_": target, "_args_": ["x"]}, allow):
        assert "denied" in message


def test_a_reexport_of_a_denied_callable_is_denied(tmp_path, monkeypatch):
    (tmp_path / "friendly_helpers.py").write_text(
        "from os import system as run_step\nfrom pickle import loads as decode\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("run_step", "decode"):
        cfg = {"_target_": f"friendly_helpers.{name}", "_args_": ["x"]}
        for message in _refusal(cfg, ["friendly_helpers"]):
            assert "denied" in message


def test_check_names_the_rule_of_each_refusal():
    cfg = {
        "a": {"_target_": "wave.open"},
        "b": {"_target_": "json._default_decoder"},
        "c": {"_target_": "logging.config.fileConfig"},
        "d": {"fn": {"_import_": "json.decoder._decode_uXXXX"}},
    }
    problems = {p.path: p.message for p in check(cfg, allow=["json", "logging"])}
    assert "not allowed" in problems["a"]
    assert "private name" in problems["b"]
    assert "denied" in problems["c"]
    assert "private name" in problems["d.fn"]


def test_an_allowed_public_callable_still_builds():
    assert instantiate({"_target_": "json.dumps", "_args_": [[1]]}, _allow_=["json"]) == "[1]"


def test_import_of_a_module_is_judged_by_its_real_name():
    # os.path is the module posixpath (ntpath on Windows): allowing "os" does not allow it.
    real = __import__("os").path.__name__
    with pytest.raises(InstantiationError, match=f"not allowed.*'{real}'"):
        instantiate({"p": {"_import_": "os.path"}}, _allow_=["os"])
    with pytest.raises(InstantiationError, match="not allowed"):
        instantiate({"p": {"_import_": real}}, _allow_=["os"])
    built = instantiate({"p": {"_import_": "os.path"}}, _allow_=["os", real])
    assert built["p"].__name__ == real


def test_denied_and_private_names_are_refused_before_import():
    code = textwrap.dedent(
        """
        import sys
        from corelib import instantiate, InstantiationError
        for target, allow in [("pty.spawn", ["pty"]), ("wave._private", ["wave"])]:
            try:
                instantiate({"_target_": target}, _allow_=allow)
            except InstantiationError:
                pass
        print("pty" in sys.modules, "wave" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]


def test_logging_config_cannot_run_a_command_from_a_yaml(tmp_path: Path):
    marker = tmp_path / "pwned"
    config = tmp_path / "attack.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            _target_: logging.config.dictConfig
            config:
              version: 1
              handlers:
                h: {{"()": os.system, command: "touch {marker}"}}
            """
        )
    )
    assert "denied" in check(load_config(config), allow=["logging"])[0].message
    result = subprocess.run(
        [sys.executable, "-m", "corelib", "run", str(config), "--allow-import", "logging"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "denied" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_the_docs_list_the_whole_deny_list():
    documented = DOCS.read_text()
    assert [name for name in DENIED if f"`{name}`" not in documented] == []


def test_a_narrow_torch_prefix_does_not_reach_an_unpickling_decoder():
    # torch.utils.data holds datapipe decoders that pickle.loads bytes (a YAML !!binary value).
    pytest.importorskip("torch")
    cfg = {
        "_target_": "torch.utils.data.datapipes.utils.decoder.basichandlers",
        "_args_": ["pickle", pickle.dumps("x")],
    }
    for message in _refusal(cfg, ["torch.utils.data"]):
        assert "denied" in message


def test_a_registered_import_path_is_trusted_under_an_allowed_prefix(fresh_registry):
    registry.register("models", "private_double", "test_target_rules:_double")
    for spelled in ("test_target_rules._double", "test_target_rules:_double"):
        cfg = {"_target_": spelled, "x": 5}
        assert check(cfg, allow=["test_target_rules"]) == []
        assert instantiate(cfg, _allow_=["test_target_rules"]) == 10


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("logging.os.system", ["logging"]),  # logging does `import os`
        ("dataclasses.builtins.eval", ["dataclasses"]),
        ("typing.sys.settrace", ["typing"]),
    ],
)
def test_an_alias_through_an_allowed_module_is_both_denied_and_not_allowed(target, allow):
    for message in _refusal({"_target_": target, "_args_": ["x"]}, allow):
        assert "denied" in message and "not allowed" in message
