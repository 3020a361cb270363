"""The multirun machinery: a sweep's jobs, checked, launched and recorded in its folder.

:func:`multirun` parses the sweep (``_grammar``), builds the sweeper and the launcher from the
registry, asks the sweeper for jobs in batches of ``launcher.slots``, checks every job of a
batch before any of it starts, launches the batch and records each event in the sweep's
``sweep.jsonl`` (``_sweep_files``). docs/runs.md, section "Multirun", has the whole story.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from corelib._errors import ConfigError, CorelibError, InstantiationError, quote
from corelib._instantiate import instantiate
from corelib.registry import registry
from corelib.runs._grammar import Sweep, parse_sweep
from corelib.runs._jobs import Job, JobResult
from corelib.runs._protocols import Assignment, Launcher, Sweeper
from corelib.runs._sweep_files import (
    SweepLog,
    discard_sweep_folder,
    ended_jobs,
    open_sweep_folder,
    set_aside,
)

__all__ = ["build_component", "multirun"]

_LISTED = 10  # jobs named in a failed check; the rest are counted

Check = Callable[[Sequence[str], Path], None]
"""Raises a CorelibError when a job with these overrides would fail before building."""


def multirun(
    config: str | os.PathLike[str],
    overrides: Sequence[str],
    *,
    sweeper: str | Sweeper = "grid",
    launcher: str | Launcher = "local",
    run_dir: str | os.PathLike[str] | None = None,
    flags: Sequence[str] = (),
    timeout: float | None = None,
    fail_fast: bool = False,
    resume: bool = False,
    sweeper_options: Mapping[str, Any] | None = None,
    launcher_options: Mapping[str, Any] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> list[JobResult]:
    """Run the sweep ``corelib run -m CONFIG OVERRIDES... FLAGS...``; each job's result.

    ``sweeper`` and ``launcher`` are names in the groups ``sweepers`` / ``launchers`` (short or
    qualified), built with ``*_options`` as keyword arguments, or objects built already.
    ``run_dir`` is the sweep's folder (default ``multirun/<config stem>/<timestamp>``); job
    n's record is ``run_dir/<n>``. Jobs name the config file and their records by absolute
    paths, so a launcher may start them in any folder. ``flags`` are the other ``corelib run``
    arguments every job gets (``--allow-import``, ``--nproc-per-node``...); ``timeout`` bounds
    each job's seconds.
    ``fail_fast`` stops the sweep and its running jobs at the first failure; ``resume`` reruns
    the jobs of the sweep in ``run_dir`` that did not finish. ``on_start`` is told the sweep's
    folder once it is made, ``on_result`` sees each job end.

    The results are in job order, those of earlier runs included on ``resume``. Raises a
    ConfigError before a job starts when the sweep is malformed, when a job would fail its
    checks (naming the job's overrides and each problem) or when ``resume`` finds a changed
    command line. Ctrl-C stops the running jobs, records them as interrupted, and propagates.
    """
    config = os.fspath(config)
    sweep = parse_sweep(list(overrides))
    check = _job_checker(config, list(flags))  # bad flags: refused before anything is made
    built_sweeper: Sweeper = _built("sweepers", sweeper, sweeper_options)
    built_launcher: Launcher = _built("launchers", launcher, launcher_options)
    _check_protocols(built_sweeper, built_launcher)
    header = {
        "command": list(sys.orig_argv),
        "config": config,
        "overrides": list(overrides),
        "flags": list(flags),
        "sweeper": _name(sweeper),
        "sweeper_options": dict(sweeper_options or {}),
        "launcher": _name(launcher),
        "launcher_options": dict(launcher_options or {}),
        "timeout": timeout,
        "space": {key: _plain(domain) for key, domain in sweep.space.items()},
    }
    folder = open_sweep_folder(run_dir, header, resume=resume)
    runner: _Runner | None = None
    try:
        with SweepLog(folder) as log:
            runner = _Runner(
                sweep=sweep,
                sweeper=built_sweeper,
                launcher=built_launcher,
                jobs_template=Job(
                    0, _absolute(config), (), folder.absolute(), tuple(flags), timeout
                ),
                check=check,
                earlier=ended_jobs(folder) if resume else {},
                log=log,
            )
            log.write("start", resume=resume, pid=os.getpid())
            try:
                runner.run(fail_fast=fail_fast, on_result=on_result, on_start=on_start)
            except BaseException as stop:  # Ctrl-C, SIGTERM, a failed check: the log says so
                if isinstance(stop, Exception):
                    log.write("end", status="error", error=quote(str(stop), 400))
                else:
                    log.write("end", status="interrupted")
                raise
            failed = sum(not result.ok for result in runner.results.values())
            status = "failed" if failed else "finished"
            log.write("end", status=status, failed=failed, **_best(built_sweeper))
    except BaseException:
        if not resume and (runner is None or not runner.launched):  # nothing ran: the folder
            discard_sweep_folder(folder)  # is free for the corrected command
        raise
    return [runner.results[index] for index in sorted(runner.results)]


def build_component(group: str, name: str, options: Mapping[str, Any] | None = None) -> Any:
    """The component ``name`` (short or qualified) of ``group``, built with ``options``.

    Options are keyword arguments only (no ``_target_`` or other special key). They come from
    the command line or code, so they may set trusted-only parameters (``ray``'s ``address``);
    what they hold may name registered components only, as a config in safe mode may.

    What the component's constructor raises passes through as itself (``launchers/ray needs
    Ray: ...``); a problem with the options is a ConfigError naming the flag that picked the
    component (``--launcher ray: ...``).
    """
    special = sorted(key for key in options or {} if not str(key)[:1].isalpha())
    if special:
        raise ConfigError(f"{group} {quote(name)}: {special[0]!r} is not a parameter name")
    entries = registry.entries(group)
    matches = [e for e in entries if name in (e.qualified_name, e.name)]
    if len(matches) > 1:
        listed = ", ".join(e.qualified_name for e in matches)
        raise ConfigError(f"{group}: {quote(name)} is ambiguous; use one of {listed}")
    if not matches:
        known = ", ".join(e.qualified_name for e in entries) or "none (are plugins disabled?)"
        raise ConfigError(f"{group}: no component named {quote(name)}; known: {known}")
    node = {"_target_": matches[0].qualified_name, **dict(options or {})}
    try:
        return instantiate(node, _allow_=(), _trusted_=[[key] for key in options or {}])
    except InstantiationError as error:
        cause = error.__cause__
        refused = not error.path and isinstance(cause, CorelibError)  # by its constructor
        if cause is not None and (refused or error.user_error):
            raise cause from cause.__cause__  # the component's own words say it all
        where = f"{error.path}: " if error.path else ""
        flag = f"--{group.removesuffix('s')} {name}"
        raise ConfigError(f"{flag}: {where}{error.message}") from error


@attrs.define
class _Runner:
    """One sweep's loop: ask, check, launch, record, tell; until the sweeper has no more."""

    sweep: Sweep
    sweeper: Sweeper
    launcher: Launcher
    jobs_template: Job  # the sweep's folder, flags and timeout
    check: Check
    earlier: dict[int, dict[str, Any]]  # on resume: the last event of each job that ended
    log: SweepLog
    results: dict[int, JobResult] = attrs.field(factory=dict)
    next_index: int = 0
    launched: int = 0
    stopped: bool = False

    def run(
        self,
        *,
        fail_fast: bool,
        on_result: Callable[[JobResult], None] | None,
        on_start: Callable[[Path], None] | None,
    ) -> None:
        while not self.stopped:
            assignments = self.sweeper.ask(self.sweep.space, self.launcher.slots)
            if not assignments:
                return
            batch = self._new_jobs(assignments)
            _check_all([job for _, job in batch.values()], self.check)
            if batch and not self.launched and on_start is not None:
                on_start(self.jobs_template.run_dir)
            self._launch(batch, fail_fast=fail_fast, on_result=on_result)

    def _new_jobs(self, assignments: list[Assignment]) -> dict[int, tuple[Assignment, Job]]:
        """The batch's jobs to run; on resume, those that finished before are told at once."""
        batch = {}
        for assignment in assignments:
            index = self.next_index
            self.next_index += 1
            job = attrs.evolve(
                self.jobs_template,
                index=index,
                overrides=self.sweep.job_overrides(assignment),
                run_dir=self.jobs_template.run_dir / str(index),
            )
            earlier = self.earlier.get(index)
            if earlier is not None and earlier.get("overrides") != list(job.overrides):
                raise ConfigError(
                    f"--resume: job {index} ran {quote(' '.join(earlier.get('overrides') or []))}"
                    f" before, and the sweeper now proposes {quote(' '.join(job.overrides))}; "
                    "resume with a sweeper that proposes the same jobs again (a fixed seed)"
                )
            if earlier is not None and earlier.get("status") == "finished":
                wall = earlier.get("wall_s")
                wall_s = float(wall) if isinstance(wall, int | float) else None
                result = JobResult(job, "finished", 0, result=earlier.get("result"), wall_s=wall_s)
                self.results[index] = result
                self.sweeper.tell(assignment, result)
            else:
                batch[index] = (assignment, job)
        return batch

    def _launch(
        self,
        batch: dict[int, tuple[Assignment, Job]],
        *,
        fail_fast: bool,
        on_result: Callable[[JobResult], None] | None,
    ) -> None:
        if not batch:
            return
        for _, job in batch.values():
            set_aside(job.run_dir)  # an earlier attempt's record (resume)
            self.log.write("launch", sync=False, job=job.index, overrides=list(job.overrides))
            self.launched += 1
        self.log.sync()  # one fsync per batch, before any of it starts
        running = dict(batch)
        stream: Iterator[JobResult] = self.launcher.launch([job for _, job in batch.values()])
        reason = "the sweep was interrupted"
        try:
            for result in stream:
                assignment, _ = running.pop(result.job.index)
                self._record(result)
                self.sweeper.tell(assignment, result)
                if on_result is not None:
                    on_result(result)
                if fail_fast and not result.ok:
                    self.stopped = True
                    reason = f"--fail-fast after job {result.job.index} failed"
                    break
        except Exception as error:  # the launcher (or the sweeper's tell) failed
            reason = f"the sweep failed: {quote(str(error))}"
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the jobs still running
            for _, job in running.values():
                self._record(JobResult(job, "interrupted", None, error=f"stopped: {reason}"))

    def _record(self, result: JobResult) -> None:
        self.results[result.job.index] = result
        self.log.write(
            "job",
            job=result.job.index,
            overrides=list(result.job.overrides),
            status=result.status,
            exit_code=result.exit_code,
            wall_s=result.wall_s,
            result=result.result,
            error=result.error,
        )


def _check_all(jobs: list[Job], check: Check) -> None:
    """Every job's problems as one ConfigError, before any of ``jobs`` starts."""
    failures = []
    for job in jobs:
        try:
            check(job.overrides, job.run_dir)
        except CorelibError as error:
            failures.append((job, error))
    if not failures:
        return
    listed = [
        f"job {job.index} ({' '.join(job.overrides) or 'no overrides'}): {error}"
        for job, error in failures[:_LISTED]
    ]
    if len(failures) > _LISTED:
        listed.append(f"... and {len(failures) - _LISTED} more")
    raise ConfigError(
        f"{len(failures)} of {len(jobs)} job(s) would fail; no job of the batch was started:\n  "
        + "\n  ".join(text.replace("\n", "\n    ") for text in listed)
    )


def _job_checker(config: str, flags: list[str]) -> Check:
    from corelib._cli import job_checker  # the CLI parses a job's flags as `corelib run` does

    return job_checker(config, flags)


def _built(group: str, component: Any, options: Mapping[str, Any] | None) -> Any:
    if not isinstance(component, str):
        if options:
            raise ConfigError(f"{group}: options apply to a name, not to a built object")
        return component
    return build_component(group, component, options)


def _best(sweeper: Any) -> dict[str, Any]:
    """``{"best": {"assignment", "objective", "value"}}`` when the sweeper tells its best job
    (a ``best`` of ``(assignment, value)``, as ``sweepers/optuna``'s), else nothing."""
    best = getattr(sweeper, "best", None)
    if not (isinstance(best, tuple) and len(best) == 2 and isinstance(best[0], Mapping)):
        return {}
    assignment, value = best
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return {}
    objective = getattr(sweeper, "objective", None)
    return {
        "best": {
            "assignment": {str(key): str(text) for key, text in assignment.items()},
            "objective": objective if isinstance(objective, str) else None,
            "value": value,
        }
    }


def _check_protocols(sweeper: Any, launcher: Any) -> None:
    if not (callable(getattr(sweeper, "ask", None)) and callable(getattr(sweeper, "tell", None))):
        raise ConfigError(f"{quote(sweeper)} is not a sweeper: it needs ask() and tell()")
    slots = getattr(launcher, "slots", None)
    if not callable(getattr(launcher, "launch", None)) or not isinstance(slots, int) or slots < 1:
        raise ConfigError(
            f"{quote(launcher)} is not a launcher: it needs launch(jobs) and slots (an int >= 1)"
        )


def _absolute(config: str) -> str:
    """A config file as an absolute path (a job may run in another folder); a name as it is."""
    return os.path.abspath(config) if os.path.isfile(config) else config


def _name(component: Any) -> str:
    return component if isinstance(component, str) else type(component).__qualname__


def _plain(domain: Any) -> dict[str, Any]:
    """A domain as JSON: ``{"type": "choice", "values": [...]}`` and the like."""
    return {"type": type(domain).__name__.lower(), **attrs.asdict(domain)}
