"""The exit codes of ``corelib`` commands, and which one an exception means."""

from __future__ import annotations

import signal
from typing import Final

from corelib._errors import CorelibError, InstantiationError
from corelib._signals import Interrupted

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_USAGE", "EXIT_USER_CODE", "exit_code_of"]

EXIT_USER_CODE: Final = 1
EXIT_USAGE: Final = 2
EXIT_BROKEN_PIPE: Final = 128 + signal.SIGPIPE  # as if killed by SIGPIPE, like other Unix tools


def exit_code_of(error: BaseException) -> int:
    """2 for a config or usage error, 1 for an error of the user's code (a constructor or
    ``run()``), ``128 + signum`` for Ctrl-C (130) and SIGTERM (143), and for ``sys.exit(code)``
    the code the process exits with."""
    if isinstance(error, SystemExit):
        code = error.code
        return code if isinstance(code, int) else 0 if code is None else EXIT_USER_CODE
    if isinstance(error, Interrupted):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 128 + signal.SIGINT
    if isinstance(error, InstantiationError) and error.user_error:
        return EXIT_USER_CODE
    if isinstance(error, CorelibError):
        return EXIT_USAGE
    return EXIT_USER_CODE
