"""Text that others control (plugins, config files, exceptions), made safe to print.

A plugin's name, version, error message or docstring may hold terminal escapes (``\\x1b[2J``
clears the screen), bidirectional overrides or lone surrogates (which make ``print`` itself
raise). :func:`printable` spells every such character out (``\\x1b``, ``\\u202e``) so it shows
up as text; :func:`describe_exception` is ``"TypeName: message"`` for an exception whose
``__str__`` may raise or run on.
"""

from __future__ import annotations

__all__ = ["CAUSE_LIMIT", "MESSAGE_LIMIT", "describe_exception", "printable"]

MESSAGE_LIMIT = 500
"""The most characters of a foreign exception's message that corelib repeats."""
CAUSE_LIMIT = 2000
"""The same for the cause of a failed build (the user's own code: room for its detail)."""


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every character that ``str.isprintable`` refuses escaped (``\\x1b``).

    That is control, format (bidi overrides, zero-width), surrogate, separator and unassigned
    characters. With ``newlines=True`` line breaks are kept (multi-line output such as a
    traceback or a docstring); otherwise they are escaped too, so one value stays on one line.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or (newlines and char == "\n") else _escape(char)
        for char in text
    )


def describe_exception(error: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """``"TypeName: message"`` (just the name when the message is empty), cut to ``limit``.

    Never raises (but for ``KeyboardInterrupt``): an exception whose ``__str__`` fails is
    described by its type alone.
    """
    name = type(error).__name__
    try:
        text = str(error)
    except KeyboardInterrupt:
        raise
    except BaseException as failure:
        text = f"<str() failed: {type(failure).__name__}>"
    if len(text) > limit:
        text = text[: limit - 5] + "[...]"
    return f"{name}: {text}" if text else name


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")
