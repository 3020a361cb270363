"""The ``corelib`` command line: ``main(argv) -> exit code``.

Each command module has ``add_parsers(subparsers)``; every subparser sets ``func``, a handler
``(args) -> int``. Exit codes: 0 success; 2 a config or usage error (one line on stderr, the
traceback only with ``--debug``); 1 an error raised by the user's code (with its traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from corelib._cli import _config_commands, _plugin_commands
from corelib._errors import CorelibError, InstantiationError
from corelib._text import describe_exception, printable
from corelib.registry import get_plugin_manager

__all__ = ["main"]

EXIT_USER_CODE = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``corelib`` command line on ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _build_parser()
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
    except CorelibError as exc:
        if isinstance(exc, InstantiationError) and exc.user_error:
            return _report(exc, EXIT_USER_CODE, traceback_shown=True)
        return _report(exc, EXIT_USAGE, traceback_shown=args.debug)
    except KeyboardInterrupt:
        print("corelib: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # raised by the user's code (a constructor or run())
        return _report(exc, EXIT_USER_CODE, traceback_shown=True)


def _report(exc: BaseException, code: int, *, traceback_shown: bool) -> int:
    # Messages carry text that plugins and config files control: escape it (printable).
    if traceback_shown:
        text = "".join(traceback.format_exception(exc))
        print(printable(text, newlines=True), end="", file=sys.stderr)
    message = str(exc) if isinstance(exc, CorelibError) else describe_exception(exc)
    print(f"corelib: error: {printable(message, newlines=True)}", file=sys.stderr)
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corelib", description="Build objects from configs, with plugins."
    )
    _add_global_options(parser, defaults=True)
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True)
    _config_commands.add_parsers(subparsers)
    _plugin_commands.add_parsers(subparsers)
    for subparser in subparsers.choices.values():
        _add_global_options(subparser, defaults=False)
    return parser


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
