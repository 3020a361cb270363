"""``corelib.runs.run``: what ``corelib run`` does, from Python."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

__all__ = ["run"]


def run(
    config: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    *,
    run_dir: str | os.PathLike[str] | None = None,
    force_run_dir: bool = False,
    entry: str | None = None,
    force: Iterable[str] = (),
    seed: int = 0,
    allow_import: Iterable[str] = (),
    allow_hosts: Iterable[str] = (),
    allow_env: Iterable[str] = (),
    unsafe: bool = False,
) -> Any:
    """Run ``config`` (a file or a registered config's name) as ``corelib run`` does; return
    the result.

    The same steps and rules as the command: seed the generators, load, apply ``overrides``,
    resolve, build the entry node (``entry``; default the root or ``main``) in safe mode for
    YAML/JSON/TOML files (``allow_import`` prefixes, ``allow_hosts``, ``allow_env``, or
    ``unsafe``), call its ``run()``; the run hooks are called. With ``run_dir`` the run is
    recorded there (docs/runs.md; ``force_run_dir`` replaces a finished run's record) and
    ``${run:dir}`` is that folder. Errors are raised (a :class:`corelib.CorelibError` for the
    config, the user code's own exception otherwise) after they are recorded.
    """
    from corelib._cli._run_command import recorded_run, run_namespace  # the command's own code

    args = run_namespace(
        config,
        overrides,
        run_dir=None if run_dir is None else os.fspath(run_dir),
        force_run_dir=force_run_dir,
        entry=entry,
        force=list(force),
        seed=seed,
        allow_import=list(allow_import),
        allow_host=list(allow_hosts),
        allow_env=list(allow_env),
        unsafe=unsafe,
    )
    return recorded_run(args)
