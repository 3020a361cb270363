"""Subcommands that plugins add through the hook ``corelib_cli_commands(subparsers)``.

The hook runs only when a command line needs it (:func:`wants_plugin_commands`): when its first
word is not a built-in command, or when there is none (``corelib --help``, a usage error), and
for completion. So ``corelib run``, ``corelib list`` and ``corelib --version`` never call it, and
their startup does not grow with the number of installed plugins.

Each plugin's implementation is called on its own. One that raises, that adds a command clashing
with a built-in one or another plugin's, or a command without a handler
(``set_defaults(func=...)``) loses every command it added; it is reported on stderr, naming the
plugin and its distribution, and the other commands keep working. Under
``CORELIB_STRICT_PLUGINS=1`` such a problem is a :class:`PluginError` instead. The help lines
that ``corelib --help`` lists for plugin commands are escaped (``printable``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from corelib._errors import PluginError
from corelib._text import describe_exception, printable
from corelib.registry import ENV_STRICT, get_plugin_manager, strict_plugins

__all__ = ["add_plugin_commands", "blocked_plugins", "wants_plugin_commands"]

_HOOK = "corelib_cli_commands"
_BLOCK = "--block-plugin"
_VERSION = "--version"


def wants_plugin_commands(argv: Sequence[str], builtins: Iterable[str]) -> bool:
    """Whether ``argv`` may name a plugin's command: its first word is not a built-in command.

    With no command word the plugin commands are wanted too (for ``--help`` and the usage of
    an error), except for ``--version``.
    """
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return next(tokens, None) not in set(builtins)
        if token == "-" or not token.startswith("-"):
            return token not in set(builtins)
        if token.startswith("--v") and _VERSION.startswith(token):
            return False
        if _takes_block_value(token):
            next(tokens, None)
    return True


def blocked_plugins(argv: Sequence[str]) -> list[str]:
    """The names given to ``--block-plugin`` anywhere in ``argv`` (before the parser runs)."""
    names = []
    for index, token in enumerate(argv):
        option, equals, value = token.partition("=")
        if equals and option.startswith("--b") and _BLOCK.startswith(option):
            names.append(value)
        elif _takes_block_value(token) and index + 1 < len(argv):
            names.append(argv[index + 1])
    return names


def _takes_block_value(token: str) -> bool:
    return token.startswith("--b") and "=" not in token and _BLOCK.startswith(token)


def add_plugin_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    finish: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Let each plugin add its commands to ``subparsers``; report and drop the faulty ones.

    ``finish`` is applied to every parser a plugin adds (corelib's global options), as part of
    that plugin's turn, so a parser that cannot take them counts against its plugin.
    """
    manager = get_plugin_manager()
    caller = getattr(manager.hook, _HOOK)
    owners = dict.fromkeys(subparsers.choices, "a built-in command")
    labels = {r.name: f"{r.distribution or '?'} {r.version or '?'}" for r in manager.reports()}
    problems = []
    for impl in caller.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue  # nothing to add: a wrapper only observes the other implementations
        label = labels.get(impl.plugin_name)
        owner = f"plugin {impl.plugin_name!r} ({label or 'registered in code'})"
        guarded = _Guarded(subparsers, owners)
        added_actions = len(subparsers._choices_actions)
        try:
            impl.function(*[{"subparsers": guarded}[arg] for arg in impl.argnames])
            if guarded.refusal is not None:  # raised again: the plugin may have caught it
                raise guarded.refusal
            for name, parser in guarded.parsers.items():
                if parser.get_default("func") is None:
                    raise _Refused(f"its command {name!r} has no handler (set_defaults(func=...))")
                finish(parser)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # SystemExit too: a plugin must not end the process
            for name in guarded.added:
                subparsers.choices.pop(name, None)
            del subparsers._choices_actions[added_actions:]
            raised = f"its hook {_HOOK} raised {describe_exception(error)}"
            why = error if isinstance(error, _Refused) else raised
            problems.append(f"{owner}: {why}; its commands are left out")
        else:
            owners.update(dict.fromkeys(guarded.added, owner))
            for line in subparsers._choices_actions[added_actions:]:  # in corelib --help
                line.help = None if line.help is None else printable(str(line.help))
    if problems and strict_plugins():
        listed = "; ".join(problems)
        raise PluginError(f"{ENV_STRICT} is set and plugin commands have problems: {listed}")
    for problem in problems:
        sys.stderr.write(f"corelib: warning: {printable(problem)}\n")


class _Refused(Exception):
    """A plugin's command that corelib will not add (a clash, no handler)."""


class _Guarded:
    """The subparsers action as one plugin sees it: ``add_parser`` refuses names already taken.

    Everything else goes to the real action, so a plugin uses it as argparse documents it.
    """

    def __init__(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        owners: dict[str, str],
    ) -> None:
        self._subparsers = subparsers
        self._owners = owners
        self.added: list[str] = []  # every name, aliases too
        self.parsers: dict[str, argparse.ArgumentParser] = {}  # by main name
        self.refusal: _Refused | None = None

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        for taken in [name, *kwargs.get("aliases", ())]:
            if taken in self._owners:
                self.refusal = _Refused(f"its command {taken!r} clashes with {self._owners[taken]}")
            elif taken in self.added:
                self.refusal = _Refused(f"it adds the command {taken!r} twice")
            if self.refusal is not None:
                raise self.refusal
        parser: argparse.ArgumentParser = self._subparsers.add_parser(name, **kwargs)
        self.added += [name, *kwargs.get("aliases", ())]
        self.parsers[name] = parser
        return parser

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._subparsers, attribute)
