"""``corelib show --explain KEY`` and ``corelib show --defaults``: where values came from.

``--explain`` prints the value at KEY and its history, oldest first (the last entry is the one
that holds). ``--defaults`` prints the config with every target's signature defaults filled in
for the keys it does not set, each under a ``# default`` comment line; targets are resolved under
the same safe-mode policy as ``check`` (a refused target is not imported: its node is shown as
it is, and a note on stderr says why).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from corelib._bounds import check_tree
from corelib._errors import ConfigError, quote
from corelib._lazy import LazyConfig
from corelib._plain import to_dict
from corelib._provenance import explain, signature_defaults
from corelib._text import printable
from corelib._traversal import Location, fold
from corelib._yaml import dump_yaml
from corelib.registry import Allow, TargetResolver, make_allowlist

__all__ = ["add_provenance_arguments", "show_provenance"]

_MARK = "__corelib_default__"  # a key suffix no one writes; turned into a comment line
_MARKED = re.compile(rf"^(?P<indent> *)(?P<name>\w+){_MARK}:", re.MULTILINE)


def add_provenance_arguments(parser: argparse.ArgumentParser) -> None:
    """``--explain KEY`` and ``--defaults`` for ``corelib show``."""
    parser.add_argument(
        "--explain",
        metavar="KEY",
        help="print KEY's value and where it came from (files and lines, bases, overrides, "
        "defaults), oldest first: the last entry wins",
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="fill in every target's signature defaults for the keys the config does not set, "
        "each marked '# default'",
    )


def show_provenance(cfg: Any, args: argparse.Namespace, allow: Allow) -> int | None:
    """Print what ``--explain`` or ``--defaults`` asks for; None when neither was given."""
    if args.explain is not None:
        try:
            _print_history(cfg, args.explain, allow)
        except ConfigError as error:
            raise ConfigError(f"{args.config}: {error}") from None
        return 0
    if args.defaults:
        print(_with_defaults(cfg, allow, args.config), end="")
        return 0
    return None


def _print_history(cfg: Any, path: str, allow: Allow) -> None:
    origins = explain(cfg, path, allow=allow)
    value = origins[-1].value if origins and origins[-1].kind == "default" else _at(cfg, path)
    print(printable(f"{path}: {_shown(value)}"))
    if not origins:
        print("  (no record: set in code, not read from a file or an override)")
    for number, origin in enumerate(origins, 1):
        wins = "  <- holds" if number == len(origins) else ""
        print(printable(f"  {number}. {origin}: {_shown(origin.value)}{wins}"))
    if len(origins) > 1:
        print("  (oldest first; the last entry wins)")


def _at(cfg: Any, path: str) -> Any:
    from corelib._overrides import split_path

    node = cfg
    for key in split_path(path):  # explain() has walked this path already
        node = node[str(key) if isinstance(node, dict) and key not in node else key]
    return node


def _shown(value: Any) -> str:
    """``value`` on one line: YAML flow style where it can be written, else its repr (short)."""
    try:
        plain = to_dict(value)
        check_tree(plain)
        import yaml  # loaded already by dump_yaml's module

        text = yaml.safe_dump(plain, default_flow_style=True, width=2**31).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
    except (ConfigError, ValueError, TypeError):
        return quote(value)
    return text if len(text) <= 200 else quote(value)


def _with_defaults(cfg: Any, allow: Allow, config: str) -> str:
    resolver = TargetResolver(make_allowlist(allow))

    def visit(node: Any, children: Any, location: Location) -> Any:
        if not isinstance(node, dict):
            return children if type(node) is list else tuple(children)
        filled = LazyConfig()
        dict.update(filled, node if children is None else children)
        if "_target_" in node:
            try:
                defaults = signature_defaults(node, resolver)
            except Exception as error:  # refused or unknown: shown as written, said why
                where = str(location) or "<root>"
                note = f"{config}: {where}: no defaults shown: {error}"
                print(printable(note[:500]), file=sys.stderr)
                defaults = {}
            for name, default in defaults.items():
                dict.__setitem__(filled, f"{name}{_MARK}", _writable(default))
        return filled

    text = dump_yaml(to_dict(fold(cfg, visit)))
    return _MARKED.sub(lambda m: f"{m['indent']}# default\n{m['indent']}{_key(m['name'])}:", text)


def _writable(default: Any) -> Any:
    """``default`` where a config file can hold it, else its repr as a string (a hint)."""
    try:
        plain = to_dict(default)
        check_tree(plain)
    except (ConfigError, ValueError, TypeError):
        return f"<not writable: {quote(default, 120)}>"
    return plain


def _key(name: str) -> str:
    """``name`` as the YAML dumper writes a key (quoted where a reader would take it for
    another type, such as ``null`` or ``true``)."""
    return dump_yaml({name: 0}).rsplit(": ", 1)[0]
