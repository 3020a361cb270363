"""The ``corelib`` command line: ``main(argv) -> exit code``.

Each command module has ``add_parsers(subparsers)``; every subparser sets ``func``, a handler
``(args) -> int``. Plugins add commands through the hook ``corelib_cli_commands``, called only
when the command line is not a built-in command (see ``_plugin_subcommands``). The hidden
command ``corelib __complete WORD...`` serves the shell completion scripts (``_completion``).

Exit codes: 0 success; 2 a config or usage error (one line on stderr, the traceback only with
``--debug``); 1 an error raised by the user's code (with its traceback); 130 / 143 stopped by
SIGINT / SIGTERM (one line); 141 stdout was closed early (quietly).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn, cast

from corelib._cli import (
    _completion,
    _config_commands,
    _plugin_commands,
    _run_command,
    _shipped_commands,
)
from corelib._cli._plugin_subcommands import (
    add_plugin_commands,
    blocked_plugins,
    wants_plugin_commands,
)
from corelib._cli._report import report, report_error
from corelib._errors import CorelibError
from corelib._exit import EXIT_BROKEN_PIPE, EXIT_USAGE
from corelib._signals import Interrupted, ignore_further, restore, stop_on_sigterm
from corelib.registry import get_plugin_manager

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``corelib`` command line on ``argv`` (default: ``sys.argv[1:]``)."""
    handlers = stop_on_sigterm()
    try:
        code = _main(argv)
        if sys.stdout is not None:  # None: started with stdout closed
            sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except (KeyboardInterrupt, Interrupted) as stop:
        ignore_further(handlers)
        interrupted = stop if isinstance(stop, Interrupted) else Interrupted(signal.SIGINT)
        sys.stderr.write(f"corelib: {interrupted}\n")  # one write: workers share stderr
        return interrupted.exit_code
    finally:
        restore(handlers)


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [_completion.COMPLETE]:
        return _completion.complete_command(argv[1:], lambda: _build_parser(argv, plugins=True))
    try:
        parser = _build_parser(argv)
    except CorelibError as exc:  # CORELIB_STRICT_PLUGINS and a plugin has a problem
        return report(exc, EXIT_USAGE, traceback_shown="--debug" in argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # overrides after options ("run cfg --unsafe a=1") arrive here
            if not hasattr(args, "overrides") or any(arg.startswith("-") for arg in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides += extra
    except SystemExit as exit_:  # argparse has printed usage and the problem
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        args.block_plugin = [*args.block_plugin, *args.block_plugin_after_command]
        for name in args.block_plugin:
            get_plugin_manager(load=False).set_blocked(name)
        code: int = args.func(args)
        return code
    except BrokenPipeError as exc:
        if _stdout_closed():
            raise
        return report_error(exc, args)
    except Exception as exc:  # a CorelibError, or raised by the user's code
        return report_error(exc, args)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``corelib list | head``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), or no real stdout
        return False


def _stdout_gone() -> int:
    """End quietly: point stdout at devnull so that the final flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (an embedding, a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def _build_parser(argv: Sequence[str], *, plugins: bool = False) -> argparse.ArgumentParser:
    """The parser of the built-in commands, and of the plugins' commands where ``argv`` may
    name one (or with ``plugins``)."""
    parser = _Parser(prog="corelib", description="Build objects from configs, with plugins.")
    parser.add_argument("--version", action="version", version=f"corelib {_version()}")
    _add_global_options(parser, defaults=True)
    # Subparsers are _Parsers too (argparse uses the parent's class); typed as the base class.
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser] = cast(
        Any, parser.add_subparsers(title="commands", dest="command", required=True)
    )
    _run_command.add_parsers(subparsers)
    _config_commands.add_parsers(subparsers)
    _plugin_commands.add_parsers(subparsers)
    _shipped_commands.add_parsers(subparsers)
    _completion.add_parsers(subparsers)
    for subparser in _parsers_below(parser):
        _add_global_options(subparser, defaults=False)
    if plugins or wants_plugin_commands(argv, subparsers.choices):
        for name in blocked_plugins(argv):  # before the plugins load for their commands
            get_plugin_manager(load=False).set_blocked(name)
        add_plugin_commands(subparsers, finish=_finish_plugin_parser)
    return parser


def _parsers_below(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s commands and of their subcommands, each once."""
    below: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):  # an alias's parser: once
                below += [subparser, *_parsers_below(subparser)]
    return below


def _finish_plugin_parser(parser: argparse.ArgumentParser) -> None:
    for subparser in [parser, *_parsers_below(parser)]:
        _add_global_options(subparser, defaults=False)


class _Parser(argparse.ArgumentParser):
    """Usage errors end in ``corelib: error: ...`` (after the usage), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"corelib: error: {message}\n")


def _version() -> str:
    try:
        return version("corelib")
    except PackageNotFoundError:
        return "(version unknown: not installed)"


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Global options work before and after the command. A subcommand parses into a namespace
    # of its own that then overwrites the main one: so its --debug has no default (it cannot
    # reset the flag), and its --block-plugin names go to a list of their own, merged in main.
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--debug",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="show the traceback of config and usage errors",
    )
    group.add_argument(
        "--block-plugin",
        action="append",
        metavar="NAME",
        dest="block_plugin" if defaults else "block_plugin_after_command",
        default=[],
        help="do not load the plugin NAME (repeatable)",
    )
