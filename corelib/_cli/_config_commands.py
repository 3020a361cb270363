"""``corelib show`` and ``corelib check``, and what they share with ``corelib run``
(``_run_command``): the arguments naming a config, loading it, finding its entry node.

Each command loads ``CONFIG``, applies the ``OVERRIDE`` arguments, and then runs, prints or
checks the result. Configs from YAML/JSON/TOML files are untrusted data: they are built in safe
mode (registered components plus ``--allow-import`` prefixes) unless ``--unsafe`` is given. A
``.py`` config is code the user runs, so it is unrestricted. In safe mode the values the
overrides set are trusted (they may set trusted-only parameters), and ``--allow-host`` names
the hosts that may receive credentials; ``run`` builds and runs under that policy
(``corelib.safe_mode()``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from corelib._check import check
from corelib._cli._explain import add_provenance_arguments, show_provenance
from corelib._cli._record_args import add_run_dir_value
from corelib._errors import ConfigError, quote
from corelib._files import load_config
from corelib._graph import FORMATS, graph
from corelib._overrides import apply_overrides, set_paths, split_path
from corelib._plain import to_dict
from corelib._references import env_allowance, resolve_tree
from corelib._resolvers import run_dir_given
from corelib._shipped import find_config
from corelib._text import printable
from corelib._traversal import format_path
from corelib._trust import parse_host
from corelib._yaml import dump_yaml
from corelib.registry import Allow

__all__ = ["add_parsers"]


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` and ``check`` commands (``run`` is in ``_run_command``)."""
    show = subparsers.add_parser(
        "show",
        help="print the final config as YAML",
        description="Print the config after overrides as YAML (shared nodes as anchors).",
    )
    _add_config_arguments(show)
    show.add_argument(
        "--graph",
        nargs="?",
        const="mermaid",
        choices=FORMATS,
        help="print the object graph (default mermaid; after the overrides, or --graph=dot)",
    )
    add_provenance_arguments(show)
    show.add_argument("--resolved", action="store_true", help="resolve references (${a.b}) first")
    add_run_dir_value(show)
    show.set_defaults(func=_show)

    check_ = subparsers.add_parser(
        "check",
        help="check every target and keyword without building anything",
        description="Resolve every target and check every node's keywords and types against "
        "its signature, without building anything; report all problems (exit 2 if any).",
    )
    _add_config_arguments(check_)
    _add_entry_argument(check_)
    add_run_dir_value(check_)
    check_.set_defaults(func=_check)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        metavar="CONFIG",
        help="a .py, .yaml/.yml, .json or .toml file, or a registered config (list configs)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        default=[],  # optional: argparse would list it as required when CONFIG is missing
        metavar="OVERRIDE",
        help="a.b=VALUE, +a.new=VALUE, ++a.b=VALUE, ~a.b, a.b=@PRESET or a.b[+]=VALUE "
        "(see docs/configs.md)",
    )
    safety = parser.add_argument_group("safe mode (YAML/JSON/TOML configs)")
    safety.add_argument(
        "--allow-import",
        action="append",
        default=[],
        metavar="PREFIX",
        help="also allow targets under this import prefix, e.g. torch.optim (repeatable)",
    )
    safety.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        type=_host,
        help="a host that may receive credentials, e.g. the API key of llm/openai (repeatable)",
    )
    safety.add_argument(
        "--allow-env",
        action="append",
        default=[],
        metavar="NAME",
        help="an environment variable that ${env:NAME} may read (repeatable)",
    )
    safety.add_argument(
        "--unsafe", action="store_true", help="allow any import path (trusted configs only)"
    )


def _host(text: str) -> str:
    try:
        parse_host(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_entry_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--entry", metavar="KEY", help="the entry node (a key path); default: the root or 'main'"
    )


def _load(args: argparse.Namespace) -> Any:
    args.config = str(find_config(args.config))  # a registered config's name becomes its file
    safe = _allowlist(args) is not None  # bases and presets: see docs/safe-mode.md
    return apply_overrides(load_config(args.config, safe=safe), args.overrides)


def _allowlist(args: argparse.Namespace) -> Allow:
    """None (unrestricted) for --unsafe and .py configs; the allowed prefixes otherwise."""
    if args.unsafe or Path(args.config).suffix.lower() == ".py":
        return None
    return tuple(args.allow_import)


def _allow_env(args: argparse.Namespace) -> list[str] | None:
    """None (any variable) for --unsafe and .py configs; the --allow-env names otherwise."""
    return None if _allowlist(args) is None else args.allow_env


def _resolved(args: argparse.Namespace, cfg: Any) -> Any:
    """``cfg`` with its references resolved (a literal ``${`` stays escaped for the build)."""
    try:
        return resolve_tree(
            cfg, allow_env=env_allowance(_allow_env(args), safe=False), keep_escapes=True
        )
    except ConfigError as error:
        raise ConfigError(f"{args.config}: {error}") from error


def _trusted(args: argparse.Namespace, keys: list[Any]) -> list[list[Any]]:
    """The key paths the overrides set, relative to the node at ``keys`` (``[]``: all of it)."""
    trusted = []
    for path in set_paths(args.overrides):
        written = split_path(path)  # apply_overrides has parsed it already
        common = min(len(keys), len(written))
        if [str(k) for k in keys[:common]] == [str(k) for k in written[:common]]:
            trusted.append(written[common:])
    return trusted


def _show(args: argparse.Namespace) -> int:
    with run_dir_given(args.run_dir):
        return _show_config(args)


def _show_config(args: argparse.Namespace) -> int:
    loaded = _load(args)
    shown = show_provenance(loaded, args, _allowlist(args))
    if shown is not None:
        return shown
    cfg = _resolved(args, loaded) if args.resolved else loaded
    if args.graph:  # with --resolved, a reference to a node is drawn as that shared node
        print(graph(cfg, args.graph), end="")
        return 0
    try:
        text = dump_yaml(to_dict(cfg))
    except ConfigError as error:  # e.g. a .py config holding an object no file can hold
        raise ConfigError(f"{args.config}: {error}") from error
    print(text, end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    with run_dir_given(args.run_dir):
        return _check_config(args)


def _check_config(args: argparse.Namespace) -> int:
    cfg = _load(args)
    problems = check(
        cfg, allow=_allowlist(args), trusted=_trusted(args, []), allow_env=_allow_env(args)
    )
    for problem in problems:
        print(printable(f"{args.config}: {problem}"))  # plugin and file text, escaped
    _entry(cfg, args)  # a config with nothing to run fails here as it would in run
    if problems:
        print(printable(f"{args.config}: {len(problems)} problem(s)"), file=sys.stderr)
        return 2
    print(printable(f"{args.config}: no problems found"))
    return 0


def _entry(cfg: Any, args: argparse.Namespace) -> tuple[list[Any], Any]:
    """The node to build and its keys: ``--entry KEY``, the root with a _target_, or ``main``."""
    if args.entry is None and isinstance(cfg, dict) and "_target_" in cfg:
        return [], cfg
    try:
        keys = split_path(args.entry or "main")
    except ValueError as exc:
        raise ConfigError(f"--entry {quote(args.entry)}: {exc}") from None
    node = cfg
    for depth, key in enumerate(keys):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = format_path(keys[:depth]) or "the top level"
            known = _some_keys(node) if isinstance(node, dict) else "(not a mapping)"
            hint = "" if args.entry else "; the root has no '_target_'; pick a node with --entry"
            raise ConfigError(
                f"{args.config}: no node {format_path(keys)!r} to run{hint} "
                f"(keys at {where}: {known or '(none)'})"
            ) from None
    return keys, node


def _some_keys(node: dict[Any, Any], shown: int = 8) -> str:
    """The first ``shown`` keys of ``node`` (each quoted short): a message stays small."""
    listed = [str(key) if len(str(key)) <= 40 else quote(str(key), 40) for key in [*node][:shown]]
    more = f", ... ({len(node) - shown} more)" if len(node) > shown else ""
    return ", ".join(listed) + more


def _under(keys: list[Any], path: str) -> str:
    """``path`` (relative to the node at ``keys``) spelled from the root."""
    prefix = format_path(keys)
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"
