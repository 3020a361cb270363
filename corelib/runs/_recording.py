"""A recorded run from start to end: the record's files in order, and the run hooks.

:func:`recording` wraps the body of every ``corelib run`` (and of :func:`corelib.runs.run`).
With a directory it writes ``status.json`` ("running") first, then ``run.json`` and
``plugins.json``, copies the output into ``output.log``, and at the end ``result.json`` and
the final ``status.json`` (last: a reader that sees it finished sees every file). Hooks
``corelib_run_start`` and ``corelib_run_end`` are called with or without a directory.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final

import attrs

from corelib._errors import ConfigError, CorelibError
from corelib._exit import exit_code_of
from corelib._resolvers import run_dir_given
from corelib._signals import Interrupted
from corelib._text import describe_exception, printable
from corelib.registry import get_plugin_manager
from corelib.runs._environment import now, plugins_report, run_info
from corelib.runs._jobs import RESULT_FILE, STATUS_FILE
from corelib.runs._output import OutputLog
from corelib.runs._record import (
    LOG_FILE,
    PLUGINS_FILE,
    RUN_FILE,
    RunRecord,
    json_or_none,
    write_atomically,
)

__all__ = ["Outcome", "recording", "write_result"]

_ERROR_LIMIT: Final = 500  # characters of the one-line error in status.json


@attrs.define
class Outcome:
    """How the body of a run went; the body sets ``result``, or ``error`` and ``exit_code``
    through :meth:`fail`. ``result_by_workers``: torchrun's rank 0 writes ``result.json``."""

    result: Any = None
    error: BaseException | None = None
    message: str | None = None
    exit_code: int = 0
    result_by_workers: bool = False

    def fail(self, error: BaseException | None, exit_code: int, message: str | None = None) -> None:
        """Record that the run failed with ``exit_code`` (``message``: the one-line reason,
        by default the error's)."""
        self.error = error
        self.exit_code = exit_code
        self.message = message


@contextmanager
def recording(record: RunRecord, *, replace: bool = False) -> Iterator[Outcome]:
    """Record the run whose body the ``with`` block is (see the module docstring).

    ``replace``: a ``record.dir`` holding a finished run's record may be written over. In a
    torchrun worker (``record.rank`` set) nothing is written but what plugins write, and
    ``${run:dir}`` is the launcher's folder. An exception from the block is recorded and
    raised again.
    """
    outcome = Outcome()
    started, wall_start, cpu_start = now(), time.monotonic(), _cpu_s()
    with ExitStack() as stack:
        if record.writes_record:
            assert record.dir is not None
            _prepare(record.dir, replace=replace)
            _write_status(record.dir, {"status": "running", "started": started})
        try:  # from here on, a failure is recorded
            if record.writes_record:
                assert record.dir is not None
                output = OutputLog(record.dir / LOG_FILE)
                stack.callback(output.stop)
                output.start()
                _write_json(record.dir / RUN_FILE, run_info(record, started))
                _write_json(record.dir / PLUGINS_FILE, plugins_report())
            stack.enter_context(run_dir_given(record.dir))
            _call_hook("corelib_run_start", record=record)
            yield outcome
        except BaseException as error:
            outcome.fail(error, exit_code_of(error))
            raise
        finally:
            _call_hook("corelib_run_end", record=record, result=outcome.result, error=outcome.error)
            if record.writes_record:
                assert record.dir is not None
                if not outcome.result_by_workers:
                    write_result(record.dir, outcome.result)
                wall_s, cpu_s = time.monotonic() - wall_start, _cpu_s() - cpu_start
                _write_status(record.dir, _final_status(outcome, started, wall_s, cpu_s))


def write_result(run_dir: Path, result: Any) -> None:
    """``result.json``: ``{"result": <JSON or null>, "text": str(result)}``."""
    text = "" if result is None else _text_of(result)
    _write_json(run_dir / RESULT_FILE, {"result": json_or_none(result), "text": text})


def _prepare(run_dir: Path, *, replace: bool) -> None:
    """Make ``run_dir``; refuse one holding a finished run unless ``replace``."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--run-dir {run_dir}: cannot make it: {error.strerror}") from None
    try:
        previous = json.loads((run_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not replace and isinstance(previous, dict) and previous.get("status") == "finished":
        raise ConfigError(
            f"--run-dir {run_dir}: it holds the record of a finished run; choose another "
            "folder, or pass --force-run-dir (Python: force_run_dir=True) to replace it"
        )
    (run_dir / RESULT_FILE).unlink(missing_ok=True)  # an older run's result must not remain


def _final_status(outcome: Outcome, started: str, wall_s: float, cpu_s: float) -> dict[str, Any]:
    if outcome.exit_code == 0:
        status = "finished"
    elif isinstance(outcome.error, KeyboardInterrupt | Interrupted):
        status = "interrupted"
    else:
        status = "failed"
    message = outcome.message
    if message is None and outcome.error is not None and status != "finished":
        message = _one_line(outcome.error)
    return {
        "status": status,
        "exit_code": outcome.exit_code,
        "wall_s": round(wall_s, 6),
        "cpu_s": round(cpu_s, 6),
        "error": None if message is None else printable(" ".join(message.split())),
        "started": started,
        "ended": now(),
    }


def _one_line(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        error = Interrupted(signal.SIGINT)
    if isinstance(error, Interrupted):
        return str(error)
    described = str(error) if isinstance(error, CorelibError) else describe_exception(error)
    text = " ".join(described.split())
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."


def _text_of(result: Any) -> str:
    try:
        return str(result)
    except Exception as error:  # a result whose __str__ fails still gets recorded
        return f"<str() raised {describe_exception(error)}>"


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (torchrun's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _write_status(run_dir: Path, data: dict[str, Any]) -> None:
    _write_json(run_dir / STATUS_FILE, data)


def _write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, indent=2) + "\n")


def _call_hook(name: str, **kwargs: Any) -> None:
    """Call each plugin's implementation of ``name`` on its own; one that raises is reported
    on stderr, naming the plugin, and the others and the run go on."""
    manager = get_plugin_manager()
    caller = getattr(manager.hook, name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's order: the last registered first
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            impl.function(*[kwargs[arg] for arg in impl.argnames])
        except (KeyboardInterrupt, Interrupted):
            raise
        except BaseException as error:  # SystemExit too: a plugin must not end the run
            sys.stderr.write(f"corelib: warning: {printable(manager.hook_failure(name, error))}\n")
