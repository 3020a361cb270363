"""The hook specifications corelib itself calls."""

from __future__ import annotations

from typing import Any

from corelib.hooks import hookspec


@hookspec
def corelib_register(registry: Any) -> None:
    """Add components to ``registry`` (lazily: pass ``"module:attr"`` refs, not objects).

    Called once per plugin, when it is loaded. ``registry`` is bound to that plugin:
    ``registry.register(group, name, ref)`` files the component as ``<plugin>/<name>``.
    """


@hookspec(firstresult=True)
def corelib_resolve_target(target: str) -> Any:
    """Claim a ``_target_`` string of a form of the plugin's own; return the callable or None.

    Asked before the built-in rules (import paths, registry names) for every target string.
    """


@hookspec
def corelib_before_instantiate(node: Any, path: str) -> None:
    """Called when the target node at ``path`` is first reached, before its children are built.

    Observe or validate; raise to refuse the node (the error names the path and the target).
    """


@hookspec
def corelib_after_instantiate(obj: Any, node: Any, path: str) -> Any:
    """Called after the target node at ``path`` was built into ``obj``.

    Return None to keep ``obj``, or another object to use in its place (to wrap it); the first
    non-None result wins. New-style ``wrapper=True`` implementations may also wrap the call.
    """


@hookspec
def corelib_cli_commands(subparsers: Any) -> None:
    """Add ``corelib`` subcommands: ``subparsers`` is the ``argparse`` subparsers action.

    Add a parser with ``subparsers.add_parser(NAME, help=...)`` and give it
    ``set_defaults(func=handler)``; ``handler(args)`` runs the command and returns its exit code.
    Called only when a command line needs plugin commands (a command that is not built in,
    ``corelib --help``, completion), so a plugin pays nothing for the built-in commands. A
    command named like a built-in or another plugin's is left out and reported.
    """


@hookspec
def corelib_run_start(record: Any) -> None:
    """Called when a ``corelib run`` (or ``corelib.runs.run``) starts, before its config loads.

    ``record`` is the :class:`corelib.runs.RunRecord`: ``record.dir`` (None when the run is not
    recorded), ``record.rank`` (a torchrun worker's rank, else None), ``record.argv``,
    ``record.config_path``, ``record.overrides``, and ``record.write_json(name, data)`` to add
    a file to the record. Each implementation is called
    on its own: one that raises is reported on stderr, naming its plugin, and the run goes on.
    """


@hookspec
def corelib_run_end(record: Any, result: Any, error: BaseException | None) -> None:
    """Called when the run ends, however it ends: ``result`` (None if it failed) and ``error``
    (the exception that ended it, or None; a failed ``torchrun`` launch has no exception).

    Called before the record's final ``status.json`` is written, so files written here are in
    place when a reader sees the run finished. Errors are reported as for ``corelib_run_start``
    and never change the run's own result or exit status.
    """
