"""``corelib run -m``: a sweep from the command line, its progress and its table of results.

In ``-m`` mode the arguments ``launcher.KEY=VALUE`` and ``sweeper.KEY=VALUE`` set the
launcher's and the sweeper's parameters instead of overriding the config; ``--jobs N`` is
``launcher.jobs=N``. Every other ``corelib run`` flag is repeated in each job. The machinery is
:func:`corelib.runs.multirun`; see docs/runs.md, section "Multirun".
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from corelib._cli._table import table
from corelib._errors import ConfigError, quote
from corelib._text import printable
from corelib.runs import JobResult, multirun, parse_sweep, read_sweep_log

__all__ = ["add_multirun_arguments", "multirun_requested", "run_multirun"]

_OPTION = re.compile(r"(?P<owner>launcher|sweeper)\.(?P<key>[A-Za-z]\w*)=(?P<value>.*)", re.DOTALL)
_ONLY_WITH_M = {
    "sweeper": "--sweeper",
    "launcher": "--launcher",
    "jobs": "--jobs",
    "timeout": "--timeout",
    "fail_fast": "--fail-fast",
    "resume": "--resume",
}


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


def add_multirun_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-m`` and the sweep's flags (and ``--run-dir``, the run record's folder)."""
    group = parser.add_argument_group(
        "multirun", "-m runs a sweep: each comma list or sweep function in the overrides is swept"
    )
    group.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="run a sweep of jobs; --run-dir DIR is then the sweep's folder (default "
        "multirun/<config stem>/<timestamp>), job n's record is DIR/<n>",
    )
    group.add_argument("--sweeper", metavar="NAME", help="a component of group sweepers (grid)")
    group.add_argument("--launcher", metavar="NAME", help="a component of group launchers (local)")
    group.add_argument(
        "--jobs", type=_positive(int), metavar="N", help="jobs at once: launcher.jobs=N"
    )
    group.add_argument(
        "--timeout", type=_positive(float), metavar="S", help="stop a job after S seconds"
    )
    group.add_argument(
        "--fail-fast", action="store_true", help="stop the sweep at the first failed job"
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="rerun the jobs of the sweep in --run-dir that did not finish",
    )


def multirun_requested(args: argparse.Namespace) -> bool:
    """Whether ``-m`` was given; a sweep's flag without it is a usage error."""
    if args.multirun:
        return True
    given = [flag for dest, flag in _ONLY_WITH_M.items() if getattr(args, dest)]
    if given:
        raise ConfigError(f"{', '.join(given)} applies to a sweep: add -m")
    return False


def run_multirun(args: argparse.Namespace, *, job_flags: list[str]) -> int:
    """Run the sweep; print each job's end (stderr) and the table (stdout). Exit 1 if a job
    failed."""
    if args.force_run_dir:
        raise ConfigError(
            "--force-run-dir does not apply to a sweep (-m); --resume reruns its unfinished jobs"
        )
    overrides, options = _split_options(args.overrides)
    if args.jobs is not None:
        if "jobs" in options["launcher"]:
            raise ConfigError("--jobs and launcher.jobs=... both set the number of jobs: keep one")
        options["launcher"]["jobs"] = args.jobs
    results = multirun(
        args.config,
        overrides,
        sweeper=args.sweeper or "grid",
        launcher=args.launcher or "local",
        run_dir=args.run_dir,
        flags=job_flags,
        timeout=args.timeout,
        fail_fast=args.fail_fast,
        resume=args.resume,
        sweeper_options=options["sweeper"],
        launcher_options=options["launcher"],
        on_result=_progress,
        on_start=_started,
    )
    print(results_table(results, list(parse_sweep(overrides).space)))
    failed = [result for result in results if not result.ok]
    folder = results[0].job.run_dir.parent if results else args.run_dir
    best = _best_line(folder) if folder is not None else None
    if best is not None:
        print(printable(best))
    summary = f"{len(results)} job(s), {len(failed)} failed; records in {folder}"
    print(printable(f"corelib: {summary}"), file=sys.stderr)
    return 1 if failed else 0


def results_table(results: list[JobResult], keys: list[str]) -> str:
    """One row per job: number, status, each swept key's value, the result's metrics (a dict
    result's scalar entries; any other result as ``result``), wall seconds."""
    metrics: dict[str, None] = {}
    for result in results:
        metrics.update(dict.fromkeys(_metrics(result.result)))
    headers = ["job", "status", *keys, *metrics, "wall_s"]
    rows = []
    for result in results:
        values = dict(o.partition("=")[::2] for o in result.job.overrides)
        found = _metrics(result.result)
        rows.append(
            [
                str(result.job.index),
                result.status,
                *(values.get(key, "") for key in keys),
                *(_cell(found[name]) if name in found else "" for name in metrics),
                "" if result.wall_s is None else f"{result.wall_s:.1f}",
            ]
        )
    return table(headers, rows)


def _best_line(folder: str | Path) -> str | None:
    """``best: main.x=0.31 (loss=0.0001)``: the best job the sweeper told, as the sweep's
    ``end`` event holds it (None when the sweeper tells none)."""
    events = read_sweep_log(folder)
    best = events[-1].get("best") if events and events[-1].get("event") == "end" else None
    if not isinstance(best, dict) or not isinstance(best.get("assignment"), dict):
        return None
    assignment = " ".join(f"{key}={text}" for key, text in best["assignment"].items())
    return f"best: {assignment} ({best.get('objective') or 'value'}={_cell(best.get('value'))})"


def _metrics(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items() if isinstance(v, str | int | float | bool)}
    return {"result": result}


def _cell(value: Any, limit: int = 40) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _split_options(arguments: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The job overrides, and the ``launcher.KEY=VALUE`` / ``sweeper.KEY=VALUE`` options."""
    from corelib._yaml import parse_value  # PyYAML loads on first use

    overrides: list[str] = []
    options: dict[str, dict[str, Any]] = {"launcher": {}, "sweeper": {}}
    for argument in arguments:
        match = _OPTION.fullmatch(argument)
        if match is None:
            if argument.startswith(("launcher.", "sweeper.")):
                raise ConfigError(
                    f"{quote(argument)}: expected launcher.KEY=VALUE or sweeper.KEY=VALUE "
                    "(a parameter of the launcher or sweeper) in -m mode"
                )
            overrides.append(argument)
            continue
        owner, key = match["owner"], match["key"]
        if key in options[owner]:
            raise ConfigError(f"{quote(argument)}: {owner}.{key} is set twice")
        try:
            options[owner][key] = parse_value(match["value"]) if match["value"] else ""
        except ValueError as exc:
            raise ConfigError(f"{quote(argument)}: the value is not YAML ({exc})") from None
    return overrides, options


def _started(folder: Path) -> None:
    print(printable(f"corelib: sweep in {folder}"), file=sys.stderr, flush=True)


def _progress(result: JobResult) -> None:
    took = "" if result.wall_s is None else f" ({result.wall_s:.1f} s)"
    error = f": {result.error}" if result.error and not result.ok else ""
    line = f"corelib: job {result.job.index} {result.status}{took}{error}"
    print(printable(line), file=sys.stderr, flush=True)
