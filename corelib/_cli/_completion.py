"""``corelib completion bash|zsh|fish`` and the hidden ``corelib __complete WORD...``.

The scripts are thin: on each TAB they call ``corelib __complete`` with the words after
``corelib`` (the last one is the word being completed, maybe empty), which prints one candidate
a line. The candidates come from the parser itself (commands, subcommands, flags, choices,
plugin commands included) and, by the argument's ``dest``, from elsewhere: config files for
``config``, the key paths of the config on the line for ``overrides`` (and its mappings for
``entry``), registered names for
``name`` (``describe``), groups for ``group``, plugin names for ``--block-plugin``, folders for
``dir``.

Completing never builds or imports anything a config names: the keys come from a YAML, JSON or
TOML file read as data (at most ``MAX_CONFIG_BYTES``); a ``.py`` config is code, so it is not
run for a completion. Only candidates made of plain characters (letters, digits, ``._-/@%+,~``)
are offered, since bash inserts them into the command line as they are.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from corelib._errors import CorelibError
from corelib._files import _LOADABLE, load_config
from corelib._overrides import split_path
from corelib._shipped import find_config, shipped_configs
from corelib.registry import KINDS, Entry, get_plugin_manager, registry

__all__ = ["COMPLETE", "MAX_CONFIG_BYTES", "add_parsers", "candidates", "complete_command"]

COMPLETE = "__complete"
MAX_CONFIG_BYTES = 1 << 20
"""A config file larger than this is not read to complete its keys (a TAB stays fast)."""

_OFFERABLE = re.compile(r"[\w./@%+,~-]+=?")
_KEY = re.compile(r"[\w-]+")  # a key an override can spell between dots
_WORD_BREAKS = frozenset("=:")  # bash splits words at these (COMP_WORDBREAKS)
_SIGILS = ("++", "+", "~")


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``completion`` command."""
    completion = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print the completion script for SHELL. Load it with "
        'eval "$(corelib completion bash)" in ~/.bashrc, eval "$(corelib completion zsh)" '
        "in ~/.zshrc (after compinit), or corelib completion fish | source.",
    )
    completion.add_argument("shell", choices=sorted(_SCRIPTS), help="the shell")
    completion.set_defaults(func=_print_script)


def _print_script(args: argparse.Namespace) -> int:
    print(_SCRIPTS[args.shell], end="")
    return 0


def complete_command(words: list[str], build_parser: Callable[[], argparse.ArgumentParser]) -> int:
    """``corelib __complete WORD...``: print the candidates for the last word; always exit 0.

    A broken config or plugin gives no candidates rather than an error in the user's prompt.
    """
    try:
        found = candidates(build_parser(), words)
    except (CorelibError, OSError):
        found = []
    for candidate in found:
        print(candidate)
    return 0


def candidates(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What may replace the last of ``words`` (the words after ``corelib``) on this line."""
    words = _rejoin(words) or [""]
    *before, current = words
    state = _walk(parser, before)
    if state is None:
        return []
    if state.pending is not None:
        found = _values(state.pending, current, state)
    elif current.startswith("-"):
        found = [option for option in _options(state.parser) if option.startswith(current)]
    else:
        action = state.positional()
        found = [] if action is None else _values(action, current, state)
    return [c for c in dict.fromkeys(found) if c.startswith(current) and _OFFERABLE.fullmatch(c)]


def _rejoin(words: list[str]) -> list[str]:
    """Undo bash's split at ``=`` and ``:``: ``["lr", "=", "0.1"]`` is ``lr=0.1`` again."""
    joined: list[str] = []
    glue = False
    for word in words:
        breaks = bool(word) and set(word) <= _WORD_BREAKS
        if joined and (breaks or (glue and word)):
            joined[-1] += word
        else:
            joined.append(word)
        glue = breaks
    return joined


@attrs.define
class _State:
    """Where the words before the current one have led: a parser and its next positional."""

    parser: argparse.ArgumentParser
    position: int = 0
    values: dict[str, list[str]] = attrs.field(factory=dict)
    pending: argparse.Action | None = None  # an option whose value is the next word

    def positional(self) -> argparse.Action | None:
        positionals = [a for a in self.parser._actions if not a.option_strings]
        return positionals[self.position] if self.position < len(positionals) else None


def _walk(parser: argparse.ArgumentParser, words: list[str]) -> _State | None:
    state = _State(parser)
    for word in words:
        if state.pending is not None:
            state.values.setdefault(state.pending.dest, []).append(word)
            state.pending = None
        elif word.startswith("-") and word != "-":
            option, equals, _ = word.partition("=")
            action = state.parser._option_string_actions.get(option)
            if action is not None and action.nargs != 0 and not equals:
                state.pending = action
        elif (action := state.positional()) is None:
            continue  # an extra word: argparse would refuse it, nothing to complete from it
        elif isinstance(action, argparse._SubParsersAction):
            if word not in action.choices:
                return None
            state = _State(action.choices[word])
        else:
            state.values.setdefault(action.dest, []).append(word)
            if action.nargs not in ("*", "+", argparse.REMAINDER):
                state.position += 1
    return state


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
    ]


def _values(action: argparse.Action, current: str, state: _State) -> list[str]:
    if action.choices is not None:
        return [str(choice) for choice in action.choices]
    by_dest = _BY_DEST.get(action.dest)
    return [] if by_dest is None else list(by_dest(current, state))


def _config_files(current: str, state: _State) -> Iterator[str]:
    """Config files and folders; where none matches, the registered configs' names."""
    paths = [path for path in _paths(current, suffixes=_LOADABLE) if path.startswith(current)]
    return iter(paths) if paths else _names(shipped_configs())


def _folders(current: str, state: _State) -> Iterator[str]:
    return _paths(current, suffixes=())


def _paths(current: str, *, suffixes: tuple[str, ...]) -> Iterator[str]:
    """Folders (ending in ``/``) and files with one of ``suffixes`` that start with ``current``."""
    folder, slash, stem = current.rpartition("/")
    listed = Path(os.path.expanduser(folder + slash or "."))
    try:
        entries = sorted(os.scandir(listed), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name[:1] == "." and stem[:1] != "."):
            continue
        text = folder + slash + entry.name
        try:
            if entry.is_dir():
                yield text + "/"
            elif Path(entry.name).suffix.lower() in suffixes:
                yield text
        except OSError:
            continue


def _override_keys(current: str, state: _State) -> Iterator[str]:
    """Key paths of the config on the line, one level at a time: ``a.b.`` for a node,
    ``a.b.lr=`` for a value (``~a.b`` to delete)."""
    sigil = next((s for s in _SIGILS if current.startswith(s)), "")
    written = current[len(sigil) :]
    if "=" in written:
        return
    for path, value in _children(written, state):
        inner = isinstance(value, (dict, list)) and bool(value)
        if inner:
            yield f"{sigil}{path}."
        if sigil == "~":
            yield f"{sigil}{path}"
        elif not inner:
            yield f"{sigil}{path}="


def _entry_keys(current: str, state: _State) -> Iterator[str]:
    """Key paths of the config's mappings, for ``--entry``: ``a`` and, to go in, ``a.``."""
    for path, value in _children(current, state):
        if isinstance(value, dict):
            yield path
            if any(isinstance(child, dict) for child in value.values()):
                yield f"{path}."


def _children(written: str, state: _State) -> Iterator[tuple[str, Any]]:
    """The key paths and values one level below the complete part of ``written``."""
    config = state.values.get("config", [None])[0]
    parent, dot, _ = written.rpartition(".")
    node = None if config is None else _node_at(_data_config(config), parent)
    if isinstance(node, dict):
        children: list[tuple[Any, Any]] = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    else:
        return
    for key, value in children:
        if isinstance(key, (str, int)) and _KEY.fullmatch(str(key)):
            yield f"{parent}{dot}{key}", value


def _data_config(config: str) -> Any:
    """The config file (or registered config) ``config`` read as data, or None (code, too big,
    unreadable)."""
    try:
        file = find_config(os.path.expanduser(config))
    except CorelibError:
        return None
    if file.suffix.lower() not in _LOADABLE or file.suffix.lower() == ".py":
        return None
    if not file.is_file() or file.stat().st_size > MAX_CONFIG_BYTES:
        return None
    return load_config(file)


def _node_at(cfg: Any, path: str) -> Any:
    try:
        keys = split_path(path) if path else []
    except ValueError:
        return None
    node = cfg
    for key in keys:
        if isinstance(node, list) and str(key).isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return None
    return node


def _components(current: str, state: _State) -> Iterator[str]:
    return _names(registry.entries())


def _names(entries: list[Entry]) -> Iterator[str]:
    """The entries' qualified names, then their short names where unique among them."""
    short = [entry.name for entry in entries]
    yield from (entry.qualified_name for entry in entries)
    yield from (name for name in short if short.count(name) == 1)


def _in_group(group: str) -> Callable[[str, _State], Iterator[str]]:
    """The names of ``group``'s components: qualified, and short where unique."""

    def names(current: str, state: _State) -> Iterator[str]:
        return _names([entry for entry in registry.entries() if entry.group == group])

    return names


def _groups(current: str, state: _State) -> Iterator[str]:
    return iter(sorted({*KINDS, *registry.groups()}))


def _plugins(current: str, state: _State) -> Iterator[str]:
    return (report.name for report in get_plugin_manager().reports())


_BY_DEST: dict[str, Callable[[str, _State], Iterator[str]]] = {
    "config": _config_files,
    "overrides": _override_keys,
    "entry": _entry_keys,
    "name": _components,
    "group": _groups,
    "block_plugin": _plugins,
    "block_plugin_after_command": _plugins,
    "dir": _folders,
    "sweeper": _in_group("sweepers"),
    "launcher": _in_group("launchers"),
}

_BASH = r"""# corelib completion for bash (plain bash: no bash-completion package needed).
# Load it from ~/.bashrc:  eval "$(corelib completion bash)"
_corelib_complete() {
    local candidate
    local -a words=("${COMP_WORDS[@]:1:COMP_CWORD-1}" "${COMP_WORDS[COMP_CWORD]}")
    COMPREPLY=()
    while IFS= read -r candidate; do
        COMPREPLY+=("$candidate")
    done < <(corelib __complete "${words[@]}" 2>/dev/null)
    # a folder/, a node. or a key= goes on: no space after it
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[/.=] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _corelib_complete corelib
"""

_ZSH = r"""#compdef corelib
# corelib completion for zsh. Load it from ~/.zshrc, after compinit:
#   eval "$(corelib completion zsh)"
_corelib_complete() {
    local candidate
    for candidate in ${(f)"$(corelib __complete "${(@)words[2,CURRENT]}" 2>/dev/null)"}; do
        # a folder/, a node. or a key= goes on: no space after it
        if [[ $candidate == *[/.=] ]]; then
            compadd -S '' -- "$candidate"
        else
            compadd -- "$candidate"
        fi
    done
}
compdef _corelib_complete corelib
"""

_FISH = r"""# corelib completion for fish. Load it:  corelib completion fish | source
# (or save it as ~/.config/fish/completions/corelib.fish)
function __corelib_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l current (commandline -ct)
    corelib __complete $words "$current" 2>/dev/null
end
complete -c corelib -f -a '(__corelib_complete)'
"""

_SCRIPTS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}
