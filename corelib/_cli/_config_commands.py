"""``corelib run``, ``corelib show`` and ``corelib check``: commands that take a config file.

Each loads ``CONFIG``, applies the ``OVERRIDE`` arguments, and then runs, prints or checks the
result. Configs from YAML/JSON/TOML files are untrusted data: they are built in safe mode
(registered components plus ``--allow-import`` prefixes) unless ``--unsafe`` is given. A ``.py``
config is code the user runs, so it is unrestricted. In safe mode the values the overrides set
are trusted (they may set trusted-only parameters), and ``--allow-host`` names the hosts that
may receive credentials; ``run`` builds and runs under that policy (``corelib.safe_mode()``).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import attrs

from corelib._check import check
from corelib._cli._explain import add_provenance_arguments, show_provenance
from corelib._cli._launch import (
    add_launch_arguments,
    check_launch_flags,
    launch,
    launch_requested,
    torchrun_argv,
)
from corelib._cli._multirun import add_multirun_arguments, multirun_requested, run_multirun
from corelib._cli._seed import DEFAULT_SEED, parse_seed, seed_everything
from corelib._errors import ConfigError, InstantiationError, a_type, quote
from corelib._files import load_config
from corelib._graph import FORMATS, graph
from corelib._instantiate import instantiate
from corelib._overrides import apply_overrides, set_paths, split_path
from corelib._plain import to_dict
from corelib._references import env_allowance, resolve_tree
from corelib._shipped import find_config
from corelib._text import printable
from corelib._traversal import format_path
from corelib._trust import SafeMode, applying, parse_host
from corelib._yaml import dump_yaml
from corelib.registry import Allow

__all__ = ["add_parsers", "check_run", "run_flags"]


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run``, ``show`` and ``check`` commands."""
    run = subparsers.add_parser(
        "run",
        help="build a config's entry node and run it",
        description="Build the entry node (the root if it has a _target_, else the key 'main') "
        "and call its run() (or the object itself); print the result unless it is None.",
    )
    _add_config_arguments(run)
    _add_entry_argument(run)
    run.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="redo STAGE: passed as run(force=[...]) (repeatable)",
    )
    run.add_argument(
        "--seed",
        type=parse_seed,
        default=DEFAULT_SEED,
        metavar="N",
        help="seed Python's, numpy's and torch's generators before anything is built, in every "
        f"worker (default {DEFAULT_SEED})",
    )
    add_launch_arguments(run)
    add_multirun_arguments(run)
    run.set_defaults(func=_run)

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
    show.set_defaults(func=_show)

    check_ = subparsers.add_parser(
        "check",
        help="check every target and keyword without building anything",
        description="Resolve every target and check every node's keywords and types against "
        "its signature, without building anything; report all problems (exit 2 if any).",
    )
    _add_config_arguments(check_)
    _add_entry_argument(check_)
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


def _run(args: argparse.Namespace) -> int:
    if multirun_requested(args):
        check_launch_flags(args)
        return run_multirun(args, job_flags=[*run_flags(args), *torchrun_argv(args)])
    launching = launch_requested(args)
    if launching:
        check_launch_flags(args)
    seed_everything(args.seed)  # before the config is loaded: a .py config may draw numbers
    cfg = _resolved(args, _load(args))
    keys, entry = _entry(cfg, args)
    if launching:
        _check_before_launch(entry, keys, args)
        return launch(args, _worker_argv(args))
    allow = _allowlist(args)
    policy = None if allow is None else SafeMode(tuple(allow), args.allow_host, env=args.allow_env)
    with applying(policy):  # what the built objects construct while running is untrusted too
        try:
            obj = instantiate(
                entry,
                _allow_=allow,
                _trusted_=_trusted(args, keys),
                _allow_hosts_=args.allow_host,
                _allow_env_=_allow_env(args),
            )
        except InstantiationError as error:  # spell the path from the config's root
            raise InstantiationError(
                error.message,
                path=_under(keys, error.path),
                target=error.target,
                user_error=error.user_error,
            ) from error.__cause__
        partial = isinstance(entry, dict) and bool(entry.get("_partial_"))
        result = _result(obj, partial=partial, force=args.force)
    if result is not None and os.environ.get("RANK", "0") == "0":
        print(result)
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


def _result(obj: Any, *, partial: bool, force: list[str]) -> Any:
    """``obj.run()``, ``obj()`` for a ``_partial_`` entry node, else ``obj`` itself.

    ``--force STAGE...`` is passed as ``force=[...]`` to what is called.
    """
    run = getattr(obj, "run", None)
    runner = run if callable(run) else obj if partial and callable(obj) else None
    if runner is None:
        if force:
            raise ConfigError(
                f"--force {' '.join(force)}: the entry node built {a_type(obj)}, which has no "
                "run() to take it"
            )
        return obj
    if not force:
        return runner()
    if not _accepts_force(runner):
        called = f"{type(obj).__name__}.run()" if runner is run else f"calling {quote(obj)}"
        raise ConfigError(f"--force {' '.join(force)}: {called} takes no 'force' argument")
    return runner(force=list(force))


def _accepts_force(runner: Any) -> bool:
    try:
        parameters = inspect.signature(runner).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == "force" and p.kind is not p.POSITIONAL_ONLY)
        for p in parameters
    )


def _check_before_launch(entry: Any, keys: list[Any], args: argparse.Namespace) -> None:
    """Every problem of the entry node, as one error, before any worker starts."""
    problems = check(entry, allow=_allowlist(args), trusted=_trusted(args, keys))
    if problems:
        listed = "\n".join(
            f"  {attrs.evolve(problem, path=_under(keys, problem.path))}" for problem in problems
        )
        raise ConfigError(f"{args.config}: {len(problems)} problem(s) found:\n{listed}")


def check_run(args: argparse.Namespace) -> None:
    """What ``corelib run`` with ``args`` checks before it builds anything: the launch flags,
    the config, its overrides and references, the entry node and every target and keyword.
    Raises a ConfigError (or another CorelibError) that names every problem."""
    if launch_requested(args):
        check_launch_flags(args)
    cfg = _resolved(args, _load(args))
    keys, entry = _entry(cfg, args)
    _check_before_launch(entry, keys, args)


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The ``corelib`` arguments each worker runs: this command without the launch flags."""
    return ["run", args.config, *args.overrides, *run_flags(args)]


def run_flags(args: argparse.Namespace) -> list[str]:
    """The flags of ``corelib run`` that each worker and each job of a sweep repeats: the
    seed, entry, stages to force, safe-mode allowances, blocked plugins and ``--debug``."""
    argv = ["--seed", str(args.seed)]
    if args.entry is not None:
        argv += ["--entry", args.entry]
    for stage in args.force:
        argv += ["--force", stage]
    for prefix in args.allow_import:
        argv += ["--allow-import", prefix]
    for host in args.allow_host:
        argv += ["--allow-host", host]
    for name in args.allow_env:
        argv += ["--allow-env", name]
    for name in getattr(args, "block_plugin", []):
        argv += ["--block-plugin", name]
    if args.unsafe:
        argv.append("--unsafe")
    if getattr(args, "debug", False):
        argv.append("--debug")
    return argv
