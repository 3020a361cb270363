"""Trusted-only parameters: an untrusted config (safe mode) cannot set them.

``Annotated[str, corelib.Trusted]`` marks a parameter that picks a credential or where one goes.
In safe mode only a trusted source may set it: the key paths given as ``_trusted_`` /
``trusted`` (the CLI passes the paths its overrides set) and ``instantiate``'s keyword
overrides. Python without safe mode, a ``.py`` config and defaults are fine.
"""

from __future__ import annotations

import pickle
import subprocess
import textwrap
from pathlib import Path
from typing import Annotated

import attrs
import pytest
from _corelib_cli import run_corelib

import corelib
from corelib import (
    InstantiationError,
    SafeMode,
    Trusted,
    check,
    instantiate,
    safe_mode,
)

REPO = Path(__file__).resolve().parents[2]
HERE = __name__  # the import prefix that safe mode must allow for this module's components

policies_seen: list[SafeMode | None] = []


def connect(
    host: str,
    key_env: Annotated[str, Trusted] = "TOKEN",
    *,
    vault: Annotated[str, Trusted] | None = None,
) -> tuple[str, str, str | None]:
    policies_seen.append(safe_mode())
    return host, key_env, vault


@attrs.frozen
class Account:
    name: str
    key_env: Annotated[str, Trusted] = "TOKEN"


@attrs.frozen
class Login:
    user: str
    key_env: Annotated[str, Trusted] = "TOKEN"

    def __attrs_post_init__(self) -> None:
        policies_seen.append(safe_mode())


def sign_in(login: Login | None = None, backups: list[Login] = ()) -> Login | None:
    return login


@pytest.fixture(autouse=True)
def forget() -> None:
    policies_seen.clear()


def test_trusted_is_public_and_one_object() -> None:
    assert "Trusted" in corelib.__all__ and "safe_mode" in corelib.__all__
    assert repr(Trusted) == "corelib.Trusted"
    assert pickle.loads(pickle.dumps(Trusted)) is Trusted


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"_target_": connect, "host": "h", "key_env": "AWS_SECRET"}, "key_env"),
        ({"_target_": connect, "_args_": ["h", "AWS_SECRET"]}, "_args_[1]"),
        ({"_target_": connect, "host": "h", "vault": "x"}, "vault"),  # Annotated[...] | None
        ({"_target_": connect, "host": "h", "key_env": "X", "_partial_": True}, "key_env"),
        ({"_target_": Account, "name": "a", "key_env": "AWS_SECRET"}, "key_env"),  # attrs field
        # a plain dict that would be structured into an attrs class with a trusted-only field
        ({"_target_": sign_in, "login": {"user": "u", "key_env": "X"}}, "login.key_env"),
        (
            {"_target_": sign_in, "backups": [{"user": "u"}, {"user": "v", "key_env": "X"}]},
            "backups[1].key_env",
        ),
    ],
)
def test_safe_mode_refuses_a_trusted_only_parameter_set_by_the_file(node: dict, path: str) -> None:
    cfg = {"jobs": [node]}
    with pytest.raises(InstantiationError, match="trusted-only") as refused:
        instantiate(cfg, _allow_=[HERE])
    assert refused.value.path == f"jobs[0].{path}"
    assert policies_seen == []  # refused before anything was called
    [problem] = check(cfg, allow=[HERE])
    assert problem.path == f"jobs[0].{path}"
    assert "trusted-only" in problem.message


def unresolvable(model: NotImportedHere, key_env: Annotated[str, Trusted] = "T") -> str:  # type: ignore[name-defined]  # noqa: F821
    return key_env


def test_a_mark_is_not_lost_to_an_unresolvable_annotation_beside_it() -> None:
    [problem] = check({"_target_": unresolvable, "model": 1, "key_env": "X"}, allow=[HERE])
    assert problem.path == "key_env" and "trusted-only" in problem.message


def test_defaults_python_and_unrestricted_builds_may_set_it() -> None:
    assert instantiate({"_target_": connect, "host": "h"}, _allow_=[HERE]) == ("h", "TOKEN", None)
    cfg = {"_target_": connect, "host": "h", "key_env": "MINE"}
    assert instantiate(cfg) == ("h", "MINE", None)
    assert check(cfg) == []
    assert connect("h", "MINE") == ("h", "MINE", None)


@pytest.mark.parametrize(
    "trusted", [["jobs[0].key_env"], ["jobs.0.key_env"], [("jobs", 0, "key_env")], ["jobs"], [""]]
)
def test_key_paths_named_as_trusted_may_set_it(trusted: list) -> None:
    cfg = {"jobs": [{"_target_": connect, "host": "h", "key_env": "MINE"}]}
    assert instantiate(cfg, _allow_=[HERE], _trusted_=trusted) == {"jobs": [("h", "MINE", None)]}
    assert check(cfg, allow=[HERE], trusted=trusted) == []


def test_a_trusted_field_inside_a_structured_dict_may_be_set_at_a_trusted_path() -> None:
    cfg = {"_target_": sign_in, "login": {"user": "u", "key_env": "MINE"}}
    assert instantiate(cfg, _allow_=[HERE], _trusted_=["login.key_env"]) == Login("u", "MINE")
    assert check(cfg, allow=[HERE], trusted=["login"]) == []
    assert instantiate({"_target_": sign_in, "login": {"user": "u"}}, _allow_=[HERE]).user == "u"


def test_a_trusted_path_elsewhere_does_not_cover_it() -> None:
    cfg = {"a": {"_target_": connect, "host": "h", "key_env": "X"}, "ab": 1}
    assert len(check(cfg, allow=[HERE], trusted=["ab", "a.host"])) == 1
    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(cfg, _allow_=[HERE], _trusted_=["ab", "a.host"])


def test_keyword_overrides_of_instantiate_are_trusted() -> None:
    cfg = {"_target_": connect, "host": "h"}
    assert instantiate(cfg, _allow_=[HERE], key_env="MINE") == ("h", "MINE", None)


def test_components_see_the_policy_and_which_keywords_are_trusted() -> None:
    cfg = {"_target_": connect, "host": "h", "key_env": "MINE"}
    instantiate(cfg, _allow_=[HERE], _trusted_=["key_env"], _allow_hosts_=["127.0.0.1:8000"])
    instantiate(cfg)
    expected = SafeMode(allow=(HERE,), hosts=("127.0.0.1:8000",), trusted=frozenset({"key_env"}))
    assert policies_seen == [expected, None]
    assert safe_mode() is None  # only while building


def test_policy_allows_hosts_by_host_and_port() -> None:
    policy = SafeMode(hosts=("127.0.0.1:8000", "Example.org", "[::1]:9"))
    assert policy.allows_host("http://127.0.0.1:8000/v1")
    assert not policy.allows_host("http://127.0.0.1:8001/v1")
    assert policy.allows_host("https://example.org/v1") and policy.allows_host(
        "http://EXAMPLE.org:1"
    )
    assert not policy.allows_host("https://example.org.evil.com/v1")
    assert not policy.allows_host("https://example.org@evil.com/v1")
    assert policy.allows_host("http://[::1]:9/v1")
    for bad in ("http://example.org", "[::1", "[::1]x", "a:99999999", "a:0", "a:", "a b"):
        with pytest.raises(corelib.ConfigError, match="HOST:PORT"):
            SafeMode(hosts=(bad,))


def corelib_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_corelib(cwd, *args, plugins=True)


VAULT = """
    from typing import Annotated

    from corelib import Trusted


    class Reveal:
        def __init__(self, key_env: Annotated[str, Trusted] = "TOKEN") -> None:
            self.key_env = key_env

        def run(self) -> str:
            return self.key_env
"""


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    (tmp_path / "vault.py").write_text(textwrap.dedent(VAULT))
    (tmp_path / "job.yaml").write_text("main:\n  _target_: vault.Reveal\n  key_env: STOLEN\n")
    (tmp_path / "job.py").write_text(
        "from corelib import L\n\nmain = L('vault.Reveal')(key_env='PY')\n"
    )
    return tmp_path


def test_cli_refuses_the_file_but_accepts_an_override_and_a_py_config(vault_dir: Path) -> None:
    refused = corelib_cli(vault_dir, "run", "job.yaml", "--allow-import", "vault")
    assert refused.returncode == 2, refused.stderr
    assert "main.key_env" in refused.stderr and "trusted-only" in refused.stderr
    assert refused.stderr.startswith("corelib: error: job.yaml: ")
    assert "Traceback" not in refused.stderr
    checked = corelib_cli(vault_dir, "check", "job.yaml", "--allow-import", "vault")
    assert checked.returncode == 2
    assert "main.key_env" in checked.stdout and "trusted-only" in checked.stdout
    assert "job.yaml: 1 problem(s)" in checked.stderr
    overridden = ["job.yaml", "--allow-import", "vault", "main.key_env=MINE"]
    assert corelib_cli(vault_dir, "run", *overridden).stdout == "MINE\n"
    assert corelib_cli(vault_dir, "check", *overridden).returncode == 0
    whole = ["job.yaml", "--allow-import", "vault", "main={_target_: vault.Reveal, key_env: M}"]
    assert corelib_cli(vault_dir, "run", *whole).stdout == "M\n"
    assert corelib_cli(vault_dir, "run", "job.py").stdout == "PY\n"
    assert corelib_cli(vault_dir, "run", "job.yaml", "--unsafe").stdout == "STOLEN\n"


def test_cli_refuses_a_malformed_allow_host(vault_dir: Path) -> None:
    result = corelib_cli(vault_dir, "check", "job.py", "--allow-host", "http://x/")
    assert result.returncode == 2
    assert "expected HOST or HOST:PORT" in result.stderr


def test_describe_shows_trusted_only_parameters(vault_dir: Path) -> None:
    result = corelib_cli(vault_dir, "describe", "llm/openai")
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if "api_key_env" in line]
    assert row.rstrip().endswith("trusted-only")
    lines = result.stdout.splitlines()
    [base_url] = [line for line in lines if line.strip().startswith("base_url")]
    assert "trusted-only" not in base_url
    assert "an untrusted config file (safe mode) cannot set these" in result.stdout
