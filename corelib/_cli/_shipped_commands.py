"""``corelib cp NAME DEST`` and ``corelib list configs``: configs that plugins ship.

A shipped config is a file registered in the group ``configs`` (see :mod:`corelib._shipped`);
``run``, ``show`` and ``check`` take its name where a file is expected.
"""

from __future__ import annotations

import argparse

from corelib._cli._table import table
from corelib._errors import ConfigError
from corelib._shipped import config_file, copy_config, shipped_configs
from corelib._text import printable

__all__ = ["add_parsers", "list_configs"]


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cp`` command."""
    cp = subparsers.add_parser(
        "cp",
        help="copy a registered config to edit it",
        description="Copy a config that a plugin ships (or any config file) to DEST, a file or "
        "a folder; a .py config's sibling modules that it imports relatively come along. "
        "The copy runs under the rules of its format (YAML/JSON/TOML in safe mode).",
    )
    cp.add_argument("name", metavar="NAME", help="a registered config (list configs) or a file")
    cp.add_argument("dest", metavar="DEST", help="the copy's file name, or an existing folder")
    cp.add_argument("--force", action="store_true", help="overwrite files that exist")
    cp.set_defaults(func=_cp)


def _cp(args: argparse.Namespace) -> int:
    for source, copy in copy_config(args.name, args.dest, force=args.force):
        print(printable(f"copied {source} to {copy}"))
    return 0


def list_configs() -> int:
    """``corelib list configs``: each registered config's name, plugin and file."""
    rows = []
    for entry in shipped_configs():
        try:
            file = str(config_file(entry))
        except ConfigError as error:  # listed with its problem: the others stay usable
            file = f"(unavailable: {error})"
        rows.append([entry.qualified_name, entry.plugin, file])
    if not rows:
        print("no configs registered")
        return 0
    print(table(["NAME", "PLUGIN", "FILE"], rows))
    return 0
