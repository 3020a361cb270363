"""Plugin subcommands: the hook ``corelib_cli_commands(subparsers)``, with installed plugins.

A plugin adds a parser and ``set_defaults(func=handler)``; ``handler(args)`` returns the exit
code. The hook runs only when the command line is not a built-in command, so ``corelib list``
and ``corelib --version`` do not pay for it. A faulty plugin loses its commands, is named with
its distribution on stderr, and the other plugins' commands keep working.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corelib._cli import main

if TYPE_CHECKING:
    from conftest import FakeDists

REPO = Path(__file__).resolve().parents[2]

HELLO = """
    from corelib import hookimpl

    def hello(args):
        print(("HELLO " if args.shout else "hello ") + args.name)
        return 3

    @hookimpl
    def corelib_cli_commands(subparsers):
        parser = subparsers.add_parser("hello", help="greet someone")
        parser.add_argument("name")
        parser.add_argument("--shout", action="store_true")
        parser.set_defaults(func=hello)
"""


FAILING = """
    from corelib import ConfigError, hookimpl

    def bad_setting(args):
        raise ConfigError("bad setting")

    def crash(args):
        raise OSError("disk")

    @hookimpl
    def corelib_cli_commands(subparsers):
        subparsers.add_parser("cfg").set_defaults(func=bad_setting)
        subparsers.add_parser("crash").set_defaults(func=crash)
"""


def plugin_adding(*commands: str, handler: str = "lambda args: 0") -> str:
    """A plugin module whose hook adds ``commands`` (each with ``handler``)."""
    adds = "".join(
        f"        subparsers.add_parser({name!r}).set_defaults(func={handler})\n"
        for name in commands
    )
    return "from corelib import hookimpl\n\n@hookimpl\ndef corelib_cli_commands(subparsers):\n" + (
        adds.replace("        ", "    ") or "    pass\n"
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hello(fake_dists: FakeDists) -> FakeDists:
    fake_dists.add("hello-dist", "1.0", {"hello": HELLO})
    return fake_dists


def test_a_plugin_command_runs_its_handler_whose_result_is_the_exit_code(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "hello", "you", "--shout") == (3, "HELLO you\n", "")


def test_plugin_commands_take_the_global_options(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "hello", "you", "--debug")[:2] == (3, "hello you\n")


def test_corelib_help_lists_plugin_commands(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "hello" in out and "greet someone" in out


def test_corelib_help_escapes_what_a_plugin_says_about_its_command(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "from corelib import hookimpl\n\n@hookimpl\ndef corelib_cli_commands(subparsers):\n"
    source += "    p = subparsers.add_parser('wipe', help='\\x1b[2Jcleared')\n"
    source += "    p.set_defaults(func=lambda args: 0)\n"
    fake_dists.add("wipe-dist", "1.0", {"wipe": source})
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "\\x1b[2Jcleared" in out and "\x1b" not in out


def test_a_blocked_plugin_adds_no_command(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--block-plugin", "hello", "hello", "you")
    assert code == 2
    assert "invalid choice: 'hello'" in err


def test_a_plugin_whose_hook_raises_is_named_and_the_others_keep_working(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "from corelib import hookimpl\n\n@hookimpl\ndef corelib_cli_commands(subparsers):\n"
    source += "    subparsers.add_parser('half').set_defaults(func=lambda a: 0)\n"
    source += "    raise SystemExit('boom')\n"
    hello.add("bad-dist", "2.0", {"bad": source})
    code, out, err = run(capsys, "hello", "you")
    assert (code, out) == (3, "hello you\n")
    assert err == (
        "corelib: warning: plugin 'bad' (bad-dist 2.0): its hook corelib_cli_commands raised "
        "SystemExit: boom; its commands are left out\n"
    )
    assert "invalid choice: 'half'" in run(capsys, "half")[2]  # what it added before is gone


def test_a_command_clashing_with_a_built_in_is_left_out_with_the_plugins_others(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    hello.add("clash-dist", "0.1", {"clash": plugin_adding("extra", "run")})
    code, out, err = run(capsys, "hello", "you")
    assert (code, out) == (3, "hello you\n")
    assert err == (
        "corelib: warning: plugin 'clash' (clash-dist 0.1): its command 'run' clashes with a "
        "built-in command; its commands are left out\n"
    )
    code, _, err = run(capsys, "extra")
    assert code == 2 and "invalid choice: 'extra'" in err


def test_a_command_two_plugins_add_goes_to_the_first_and_the_second_is_named(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_dists.add("a-dist", "1.0", {"a": plugin_adding("greet", handler="lambda args: 5")})
    fake_dists.add("b-dist", "2.0", {"b": plugin_adding("greet", handler="lambda args: 6")})
    code, _, err = run(capsys, "greet")
    assert code == 5
    assert err == (
        "corelib: warning: plugin 'b' (b-dist 2.0): its command 'greet' clashes with plugin "
        "'a' (a-dist 1.0); its commands are left out\n"
    )


def test_a_clash_the_plugin_catches_is_reported_all_the_same(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "from corelib import hookimpl\n\n@hookimpl\ndef corelib_cli_commands(subparsers):\n"
    source += "    try:\n        subparsers.add_parser('hello')\n    except Exception:\n"
    source += "        subparsers.add_parser('hi').set_defaults(func=lambda args: 0)\n"
    hello.add("sly-dist", "1.0", {"sly": source})
    code, out, err = run(capsys, "hello", "you")
    assert (code, out) == (3, "hello you\n")
    assert "plugin 'sly' (sly-dist 1.0): its command 'hello' clashes with plugin 'hello'" in err
    assert "invalid choice: 'hi'" in run(capsys, "hi")[2]


def test_under_strict_plugins_a_faulty_plugin_command_is_an_error(
    hello: FakeDists, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hello.add("clash-dist", "0.1", {"clash": plugin_adding("list")})
    monkeypatch.setenv("CORELIB_STRICT_PLUGINS", "1")
    assert run(capsys, "hello", "you") == (
        2,
        "",
        "corelib: error: CORELIB_STRICT_PLUGINS is set and plugin commands have problems: "
        "plugin 'clash' (clash-dist 0.1): its command 'list' clashes with a built-in command; "
        "its commands are left out\n",
    )


def test_a_command_without_a_handler_is_left_out(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "from corelib import hookimpl\n\n@hookimpl\ndef corelib_cli_commands(subparsers):\n"
    source += "    subparsers.add_parser('idle')\n"
    fake_dists.add("idle-dist", "1.0", {"idle": source})
    code, _, err = run(capsys, "idle")
    assert code == 2
    assert "plugin 'idle' (idle-dist 1.0): its command 'idle' has no handler" in err


def test_a_handler_raising_a_corelib_error_is_a_usage_error_and_others_are_user_errors(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_dists.add("fail-dist", "1.0", {"fail": FAILING})
    assert run(capsys, "cfg") == (2, "", "corelib: error: bad setting\n")
    code, _, err = run(capsys, "crash")
    assert code == 1 and "Traceback" in err and err.endswith("corelib: error: OSError: disk\n")


def test_completion_offers_plugin_commands(
    hello: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "__complete", "he") == (0, "hello\n", "")
    assert run(capsys, "__complete", "hello", "x", "--sh") == (0, "--shout\n", "")


@pytest.mark.timeout(120)
def test_built_in_commands_never_call_the_hook(fake_dists: FakeDists, tmp_path: Path) -> None:
    """``--version`` imports no plugin; ``list`` loads plugins but does not ask for commands."""
    marker = tmp_path / "marker"
    source = f"""
        MARKER = {str(marker)!r}
        open(MARKER, "a").write("imported\\n")
        from corelib import hookimpl

        def ping(args):
            open(MARKER, "a").write("ran\\n")
            return 0

        @hookimpl
        def corelib_cli_commands(subparsers):
            open(MARKER, "a").write("hook\\n")
            subparsers.add_parser("ping").set_defaults(func=ping)
    """
    fake_dists.add("ping-dist", "1.0", {"ping": source})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORELIB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_dists.root), str(REPO)])

    def corelib(*args: str) -> str:
        command = [sys.executable, "-m", "corelib", *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return marker.read_text() if marker.exists() else ""

    assert corelib("--version") == ""
    assert corelib("list") == "imported\n"
    assert corelib("ping") == "imported\nimported\nhook\nran\n"
