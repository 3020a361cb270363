"""``corelib run``: load a config, build its entry node, run it, and record the run.

One implementation serves the command and :func:`corelib.runs.run`: :func:`run_namespace`
gives the Python function the command's options. Every run goes through
:func:`corelib.runs._recording.recording` (the run hooks; with ``--run-dir``, the record). With
launch flags the config is checked here and the workers run this command through torchrun
(without the launch flags, with the hidden ``--worker-run-dir``); the launcher alone writes
the record and torchrun's rank 0 writes ``result.json``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from corelib._check import check
from corelib._cli._config_commands import (
    _add_config_arguments,
    _add_entry_argument,
    _allow_env,
    _allowlist,
    _entry,
    _load,
    _resolved,
    _trusted,
    _under,
)
from corelib._cli._launch import (
    add_launch_arguments,
    check_launch_flags,
    launch,
    launch_requested,
)
from corelib._cli._record_args import WORKER_RUN_DIR, add_record_arguments, run_dir_of
from corelib._cli._report import report_error
from corelib._cli._seed import DEFAULT_SEED, parse_seed, seed_everything
from corelib._errors import ConfigError, InstantiationError, a_type, quote
from corelib._exit import EXIT_USER_CODE
from corelib._instantiate import instantiate
from corelib._plain import to_dict
from corelib._resolvers import env_hidden
from corelib._text import printable
from corelib._trust import SafeMode, applying
from corelib._yaml import dump_yaml
from corelib.runs._record import CONFIG_FILE, RESOLVED_CONFIG_FILE, RunRecord, write_atomically
from corelib.runs._recording import Outcome, recording, write_result

__all__ = ["add_parsers", "recorded_run", "run_namespace"]


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` command."""
    run = subparsers.add_parser(
        "run",
        help="build a config's entry node and run it",
        description="Build the entry node (the root if it has a _target_, else the key 'main') "
        "and call its run() (or the object itself); print the result unless it is None.",
    )
    _add_run_arguments(run)
    run.set_defaults(func=_run)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_arguments(parser)
    _add_entry_argument(parser)
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="redo STAGE: passed as run(force=[...]) (repeatable)",
    )
    parser.add_argument(
        "--seed",
        type=parse_seed,
        default=DEFAULT_SEED,
        metavar="N",
        help="seed Python's, numpy's and torch's generators before anything is built, in every "
        f"worker (default {DEFAULT_SEED})",
    )
    add_record_arguments(parser)
    add_launch_arguments(parser)


def run_namespace(
    config: str | os.PathLike[str], overrides: Iterable[str], **options: Any
) -> argparse.Namespace:
    """The options ``corelib run CONFIG OVERRIDES...`` would have, with ``options`` set
    (``run_dir``, ``entry``, ``seed``, ``allow_import``, ...: the flags' destinations)."""
    parser = argparse.ArgumentParser(prog="corelib run", add_help=False)
    _add_run_arguments(parser)
    args = parser.parse_args(["--", os.fspath(config)])
    unknown = sorted(set(options) - set(vars(args)))
    if unknown:
        raise TypeError(f"unknown run options: {', '.join(unknown)}")
    vars(args).update(options, overrides=list(overrides), debug=False, block_plugin=[])
    return args


def recorded_run(args: argparse.Namespace) -> Any:
    """Run the command ``args`` describes, recorded; its result (an error is raised)."""
    with recording(_record_of(args), replace=args.force_run_dir) as outcome:
        _execute(args, outcome)
    return outcome.result


def _run(args: argparse.Namespace) -> int:
    record = _record_of(args)
    with recording(record, replace=args.force_run_dir) as outcome:
        try:
            _execute(args, outcome)
        except Exception as error:  # reported now, so that output.log has it
            outcome.fail(error, report_error(error, args))
        else:
            if outcome.result is not None and _rank() == 0:
                print(outcome.result)
            if record.rank == 0 and record.dir is not None:  # a worker: rank 0's result
                write_result(record.dir, outcome.result)
    return outcome.exit_code


def _record_of(args: argparse.Namespace) -> RunRecord:
    worker = args.worker_run_dir is not None
    return RunRecord(
        dir=run_dir_of(args.worker_run_dir if worker else args.run_dir),
        argv=tuple(sys.orig_argv),
        config_path=args.config,
        overrides=tuple(args.overrides),
        rank=_rank() if worker else None,
    )


def _rank() -> int:
    """torchrun's rank of this process (0 outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _execute(args: argparse.Namespace, outcome: Outcome) -> None:
    run_dir = run_dir_of(args.run_dir)
    launching = launch_requested(args)
    if launching:
        check_launch_flags(args)
    seed_everything(args.seed)  # before the config is loaded: a .py config may draw numbers
    loaded = _load(args)
    _write_config(run_dir, CONFIG_FILE, loaded)
    cfg = _resolved(args, loaded)
    if run_dir is not None:
        with env_hidden():  # the record holds no value read from the environment
            _write_config(run_dir, RESOLVED_CONFIG_FILE, _resolved(args, loaded))
    keys, entry = _entry(cfg, args)
    if launching:
        _check_before_launch(entry, keys, args)
        outcome.result_by_workers = True
        failure = launch(args, _worker_argv(args, run_dir))
        if failure is not None:
            sys.stderr.write(f"corelib: error: {failure}\n")  # one write: workers share stderr
            outcome.fail(None, EXIT_USER_CODE, failure)
        return
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
        outcome.result = _result(obj, partial=partial, force=args.force)


def _write_config(run_dir: Path | None, name: str, cfg: Any) -> None:
    """Write ``cfg`` as YAML into the record; one that no file can hold is left out, said on
    stderr (a .py config may hold any object)."""
    if run_dir is None:
        return
    try:
        text = dump_yaml(to_dict(cfg))
    except ConfigError as error:
        print(printable(f"corelib: warning: {name} not written: {error}"), file=sys.stderr)
        return
    write_atomically(run_dir / name, text)


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


def _worker_argv(args: argparse.Namespace, run_dir: Path | None) -> list[str]:
    """The ``corelib`` arguments each worker runs: this command without the launch flags (and
    without the record, which the launcher writes: ``run_dir`` is only ${run:dir} for them)."""
    argv = ["run", args.config, *args.overrides, "--seed", str(args.seed)]
    if run_dir is not None:
        argv += [WORKER_RUN_DIR, str(run_dir)]
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
