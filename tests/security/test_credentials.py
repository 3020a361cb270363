"""No secrets chosen by the file: ``llm/openai`` sends its API key only where the user said.

A real listener on 127.0.0.1 plays the host a downloaded YAML points ``base_url`` at. In safe
mode the key goes there only when the user named the host outside the file (``--allow-host``, or
``base_url`` set on the command line); the file cannot choose the variable the key is read from
(``api_key_env`` is trusted-only), and ``check`` says so.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corelib import instantiate
from plugins.llm.openai_backend import OpenAILLM

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-fake-secret-4f2a9c"
OTHER_SECRET = "aws-fake-secret-77b1"


class Listener:
    """An OpenAI-compatible endpoint on 127.0.0.1 that records each request's Authorization."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                listener.authorizations.append(self.headers.get("Authorization"))
                choice = {"index": 0, "text": "ok", "finish_reason": "stop"}
                body = json.dumps({"choices": [choice]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Listener:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


PROBE = """
    class Ask:
        def __init__(self, llm) -> None:
            self.llm = llm

        def run(self) -> str:
            return self.llm.generate(["hi"], max_new_tokens=2)[0][0].text
"""


def attack(tmp_path: Path, base_url: str, extra: str = "") -> str:
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "attack.yaml").write_text(
        "main:\n  _target_: probe.Ask\n  llm:\n    _target_: llm/openai\n    model: m\n"
        f"    base_url: {base_url}\n    max_retries: 0\n{extra}"
    )
    return "attack.yaml"


def corelib_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.pop("CORELIB_DISABLE_PLUGIN_AUTOLOAD", None)  # llm/openai comes from the llm plugin
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), str(REPO)])
    env["OPENAI_API_KEY"] = SECRET
    env["OTHER_SECRET"] = OTHER_SECRET
    return subprocess.run(
        [sys.executable, "-m", "corelib", *args, "--allow-import", "probe"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_file_pointing_base_url_elsewhere_gets_no_key(tmp_path: Path, listener: Listener) -> None:
    result = corelib_cli(tmp_path, "run", attack(tmp_path, listener.base_url))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert listener.authorizations == [None]
    assert "requests go without the API key" in result.stderr
    assert "--allow-host" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_allow_host_names_the_host_that_gets_the_key(tmp_path: Path, listener: Listener) -> None:
    config = attack(tmp_path, listener.base_url)
    named = corelib_cli(tmp_path, "run", config, "--allow-host", f"127.0.0.1:{listener.port}")
    assert named.returncode == 0, named.stderr
    assert listener.authorizations == [f"Bearer {SECRET}"]
    other_port = corelib_cli(tmp_path, "run", config, "--allow-host", "127.0.0.1:1")
    assert other_port.returncode == 0, other_port.stderr
    assert listener.authorizations == [f"Bearer {SECRET}", None]
    assert SECRET not in named.stdout + named.stderr + other_port.stdout + other_port.stderr


def test_base_url_set_on_the_command_line_gets_the_key(tmp_path: Path, listener: Listener) -> None:
    config = attack(tmp_path, "http://127.0.0.1:1/v1")
    result = corelib_cli(tmp_path, "run", config, f"main.llm.base_url={listener.base_url}")
    assert result.returncode == 0, result.stderr
    assert listener.authorizations == [f"Bearer {SECRET}"]


def test_the_file_cannot_choose_the_variable_the_key_comes_from(
    tmp_path: Path, listener: Listener
) -> None:
    config = attack(tmp_path, listener.base_url, "    api_key_env: OTHER_SECRET\n")
    for flags in ([], ["--allow-host", f"127.0.0.1:{listener.port}"]):
        refused = corelib_cli(tmp_path, "run", config, *flags)
        assert refused.returncode == 2
        assert "main.llm.api_key_env" in refused.stderr and "trusted-only" in refused.stderr
    checked = corelib_cli(tmp_path, "check", config)
    assert checked.returncode == 2
    assert "main.llm.api_key_env" in checked.stdout and "trusted-only" in checked.stdout
    assert "no problems found" not in checked.stdout
    assert listener.authorizations == []
    chosen_by_user = corelib_cli(
        tmp_path, "run", config, "main.llm.api_key_env=OTHER_SECRET", "--allow-host", "127.0.0.1"
    )
    assert chosen_by_user.returncode == 0, chosen_by_user.stderr
    assert listener.authorizations == [f"Bearer {OTHER_SECRET}"]


def test_python_builds_are_trusted_and_the_key_stays_out_of_reprs(
    listener: Listener, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm = OpenAILLM("m", base_url=listener.base_url, max_retries=0)
    assert llm.generate(["hi"])[0][0].text == "ok"
    assert listener.authorizations == [f"Bearer {SECRET}"]
    assert SECRET not in repr(llm) and SECRET not in json.dumps(llm.identity)
    node = {"_target_": "llm/openai", "model": "m", "base_url": listener.base_url}
    with caplog.at_level(logging.WARNING, logger="plugins.llm.openai_backend"):
        untrusted = instantiate(node, _allow_=())
    assert untrusted.generate(["hi"])[0][0].text == "ok"
    assert listener.authorizations[-1] is None
    assert "requests go without the API key" in caplog.text and SECRET not in caplog.text


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAILLM("m", base_url="file:///etc/passwd")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_workers_under_torchrun_get_the_same_policy(tmp_path: Path, listener: Listener) -> None:
    config = attack(tmp_path, listener.base_url, "    api_key_env: OTHER_SECRET\n")
    refused = corelib_cli(tmp_path, "run", config, "--nproc-per-node", "1")
    assert refused.returncode == 2  # the launcher's check, before any worker starts
    assert "main.llm.api_key_env" in refused.stderr and "trusted-only" in refused.stderr
    config = attack(tmp_path, listener.base_url)
    host = f"127.0.0.1:{listener.port}"
    done = corelib_cli(tmp_path, "run", config, "--allow-host", host, "--nproc-per-node", "1")
    assert done.returncode == 0, done.stderr
    assert listener.authorizations == [f"Bearer {SECRET}"]
