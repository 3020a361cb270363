"""corelib's hook system: the markers plugins use and the hook specifications.

Plugins write ``@hookimpl`` functions named after the specs in :mod:`corelib.hooks._specs`:
``corelib_register``, ``corelib_resolve_target``, ``corelib_before_instantiate``,
``corelib_after_instantiate``, ``corelib_cli_commands``, and the run hooks
``corelib_run_start`` / ``corelib_run_end`` (every ``corelib run``, with its
:class:`corelib.runs.RunRecord`; see docs/runs.md). A plugin may declare hookspecs of its own
with ``hookspec``.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "corelib"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
