"""``corelib plugins [new NAME]``, ``corelib list [GROUP]`` and ``corelib describe NAME``.

Everything printed here may come from a plugin (names, versions, errors, refs, docstrings,
reprs of defaults): it goes out through :func:`~corelib._text.printable`, as escaped text.
"""

from __future__ import annotations

import argparse
import inspect
import json
from typing import Any

import attrs

from corelib._cli._describe_yaml import describe_yaml
from corelib._cli._scaffold import write_plugin_project
from corelib._cli._shipped_commands import list_configs
from corelib._cli._table import table as _table
from corelib._docstrings import own_docstring
from corelib._errors import RegistryError, a_type, quote
from corelib._shipped import CONFIGS
from corelib._text import printable
from corelib._typing import trusted_parameters
from corelib.registry import (
    ENV_DISABLE_AUTOLOAD,
    ImportAllowlist,
    TargetError,
    TargetResolver,
    autoload_disabled,
    get_plugin_manager,
    import_path_of,
    is_registry_name,
    registry,
)

__all__ = ["add_parsers"]

_STARS: dict[object, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}
_BEFORE_KEYWORD_ONLY = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plugins``, ``list`` and ``describe`` commands."""
    plugins = subparsers.add_parser(
        "plugins",
        help="installed plugins: name, distribution, version, status, components",
        description="List the installed plugins; broken ones are shown with their error. "
        "'corelib plugins new NAME' writes a new plugin project instead.",
    )
    plugins.add_argument("--json", action="store_true", help="print a JSON list for tools")
    plugins.set_defaults(func=_plugins)
    actions = plugins.add_subparsers(title="actions", dest="action", metavar="{new}")
    new = actions.add_parser(
        "new",
        help="write a new plugin project",
        description="Write a complete plugin project into ./NAME (or DIR): pyproject.toml with "
        "the entry point, a light entry module, one component, a config, a test that "
        "pip-installs the project and runs the component through 'corelib run', and a README.",
    )
    new.add_argument("project", metavar="NAME", help="the distribution name, e.g. acme-tools")
    new.add_argument("--dir", metavar="DIR", help="write into DIR instead of ./NAME")
    new.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    new.set_defaults(func=_new)

    list_ = subparsers.add_parser(
        "list",
        help="registered components",
        description="List registered components by group, then qualified name.",
    )
    list_.add_argument("group", nargs="?", help="only this group (e.g. trainers)")
    list_.set_defaults(func=_list)

    describe = subparsers.add_parser(
        "describe",
        help="one component's parameters, types and defaults",
        description="Import one component, or any callable by import path, and show its "
        "parameters, types and defaults. The name is the user's own (not a config file's), so "
        "any import path is allowed, except what safe mode refuses under every prefix: private "
        "names and the deny list (--unsafe lifts that).",
    )
    describe.add_argument(
        "name",
        help="a qualified (plugin/name) or unique short name, or an import path (torch.optim.SGD)",
    )
    describe.add_argument(
        "--yaml", action="store_true", help="print a ready-to-edit config node instead"
    )
    describe.add_argument(
        "--unsafe", action="store_true", help="also import private names and denied callables"
    )
    describe.set_defaults(func=_describe)


def _plugins(args: argparse.Namespace) -> int:
    manager = get_plugin_manager(load=False)
    reports = manager.reports()
    if args.json:
        print(json.dumps([attrs.asdict(r) for r in reports], indent=2))  # escapes controls
        manager.load_plugins()  # under CORELIB_STRICT_PLUGINS, a problem is an error (exit 2)
        return 0
    if not reports:
        off = autoload_disabled()
        print(
            f"no plugins loaded: {ENV_DISABLE_AUTOLOAD} is set" if off else "no plugins installed"
        )
        return 0
    rows = [
        [r.name, r.distribution or "?", r.version or "?", r.status, str(r.components)]
        for r in reports
    ]
    print(_table(["NAME", "DISTRIBUTION", "VERSION", "STATUS", "COMPONENTS"], rows))
    problems = [r for r in reports if r.error is not None or r.warning is not None]
    if problems:
        print()
    for report in problems:
        about = f"{report.name} ({report.distribution or '?'} {report.version or '?'})"
        print(printable(f"{about}: {report.error or report.warning}"))
    manager.load_plugins()  # under CORELIB_STRICT_PLUGINS, a problem is an error (exit 2)
    return 0


def _new(args: argparse.Namespace) -> int:
    for path in sorted(write_plugin_project(args.project, args.dir, force=args.force)):
        print(printable(str(path)))
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.group == CONFIGS:
        return list_configs()
    entries = registry.entries(args.group)
    if not entries:
        print("no components registered")
        return 0
    rows = [[e.qualified_name, e.group, e.target] for e in entries]
    print(_table(["NAME", "GROUP", "TARGET"], rows))
    return 0


def _describe(args: argparse.Namespace) -> int:
    if is_registry_name(args.name):
        entry = registry.entry(args.name)
        component = entry.load()
        origin = registry.origin(entry.qualified_name)
        name, heading = entry.qualified_name, f"{entry.qualified_name} (group {entry.group})"
        about = [f"{entry.qualified_name}  (group {entry.group}; {origin})"]
        about.append(f"target: {entry.target}")
    else:
        component = _import_described(args.name, unsafe=args.unsafe)
        name, heading, about = args.name, args.name, [f"{args.name}  (import path)"]
    if args.yaml:
        if not callable(component):
            raise RegistryError(f"describe {quote(args.name)}: {a_type(component)} is no target")
        print(describe_yaml(component, name, heading), end="")
        return 0
    for line in about:
        print(printable(line))
    if not callable(component):  # a value's docstring would be its type's: left out
        print(printable(f"\nnot callable: {a_type(component)} value", newlines=True))
        return 0
    summary = own_docstring(component).split("\n\n")[0]
    if summary:
        print(f"\n{printable(summary, newlines=True)}")
    rows = _parameter_rows(component)
    if rows is None:
        print("\nparameters: (signature not available)")
    elif not rows:
        print("\nparameters: none")
    else:
        print("\nparameters:")
        trusted = trusted_parameters(component)
        if trusted:
            for row in rows:
                row.append("trusted-only" if row[0] in trusted else "")
        headers = ["NAME", "TYPE", "DEFAULT", "NOTE"][: len(rows[0])]
        print(_table(headers, rows, indent="  "))
        if trusted:
            print(
                "\ntrusted-only: an untrusted config file (safe mode) cannot set these; set "
                "them from Python, a .py config or a command-line override"
            )
    return 0


def _import_described(path: str, *, unsafe: bool) -> Any:
    """Import ``path`` for ``describe``: the user typed it, so it need not be under an allowed
    prefix, but safe mode's other rules hold (a private name, the deny list) unless ``unsafe``:
    the spelled path is refused before anything is imported, the object found after."""
    rules = None if unsafe else ImportAllowlist([path.replace(":", ".").split(".")[0]])
    try:
        refusal = None if rules is None else rules.refuse_spelling(path)
        if refusal is not None:
            raise TargetError(refusal)
        component = TargetResolver(None).resolve_object(path)
        denied = None if rules is None else rules.denied_reason(component)
        if denied is not None:
            raise TargetError(f"refused {quote(path)}: {denied}")
    except TargetError as error:
        raise RegistryError(f"describe {path!r}: {error}") from error
    return component


def _parameter_rows(component: Any) -> list[list[str]] | None:
    """Name, type and default of each parameter; attrs classes read from their fields."""
    if inspect.isclass(component) and attrs.has(component):
        return [
            [field.alias or field.name, _type_name(field.type), _attrs_default(field.default)]
            for field in attrs.fields(component)
            if field.init
        ]
    try:
        signature = inspect.signature(component)
    except (TypeError, ValueError):
        return None
    rows = []
    previous_kind = None
    for param in signature.parameters.values():
        # Marker rows as in a Python signature: "/" ends positional-only, "*" starts keyword-only.
        if previous_kind is param.POSITIONAL_ONLY and param.kind is not param.POSITIONAL_ONLY:
            rows.append(["/", "", ""])
        if param.kind is param.KEYWORD_ONLY and previous_kind not in _BEFORE_KEYWORD_ONLY:
            rows.append(["*", "", ""])
        previous_kind = param.kind
        prefix = _STARS.get(param.kind, "")
        annotation = None if param.annotation is param.empty else param.annotation
        if param.default is not param.empty:
            default = _default_text(param.default)
        elif prefix:
            default = ""
        else:
            default = "required"
        rows.append([prefix + param.name, _type_name(annotation), default])
    return rows


def _type_name(annotation: Any) -> str:
    if annotation is None:
        return "-"
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def _attrs_default(default: Any) -> str:
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        return f"{getattr(factory, '__qualname__', quote(factory))}()"
    return _default_text(default)


def _default_text(default: Any) -> str:
    """A default as a config would write it: a function or class by its import path."""
    if callable(default):
        try:
            return import_path_of(default)
        except TargetError:
            pass
    return quote(default)
