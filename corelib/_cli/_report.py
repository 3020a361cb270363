"""How a command's error is reported: one ``corelib: error: ...`` line (after the traceback
for an error of the user's code, or with ``--debug``), and the exit code it means."""

from __future__ import annotations

import argparse
import sys
import traceback

from corelib._errors import CorelibError, InstantiationError
from corelib._exit import EXIT_USER_CODE, exit_code_of
from corelib._text import describe_exception, printable

__all__ = ["report", "report_error"]


def report_error(error: Exception, args: argparse.Namespace) -> int:
    """Report ``error``, raised by the command ``args`` ran; its exit code."""
    code = exit_code_of(error)
    # An InstantiationError names a key path; the CLI names the config file too.
    where = getattr(args, "config", None) if isinstance(error, InstantiationError) else None
    shown = code == EXIT_USER_CODE or bool(getattr(args, "debug", False))
    return report(error, code, traceback_shown=shown, where=where)


def report(
    exc: BaseException, code: int, *, traceback_shown: bool, where: str | None = None
) -> int:
    """Print ``exc`` (its traceback too with ``traceback_shown``) on stderr; return ``code``."""
    # Messages carry text that plugins and config files control: escape it (printable).
    if traceback_shown:
        text = "".join(traceback.format_exception(exc))
        print(printable(text, newlines=True), end="", file=sys.stderr)
    message = str(exc) if isinstance(exc, CorelibError) else describe_exception(exc)
    if where:
        message = f"{where}: {message}"
    line = f"corelib: error: {printable(message, newlines=True)}\n"
    sys.stderr.write(line)  # in one write: workers under torchrun share stderr
    return code
