"""``--run-dir DIR``: where ``corelib run`` writes its run record (docs/runs.md).

``run`` takes ``--run-dir`` and ``--force-run-dir``; ``show`` and ``check`` take ``--run-dir``
only as the value of ``${run:dir}`` (they write nothing). A torchrun worker gets its launcher's
folder through the hidden ``--worker-run-dir``: ``${run:dir}`` resolves to it, rank 0 writes
the result there, plugins write files of their own per rank (``record.rank``), and the rest of
the record is the launcher's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["WORKER_RUN_DIR", "add_record_arguments", "add_run_dir_value", "run_dir_of"]

WORKER_RUN_DIR = "--worker-run-dir"


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``run``'s flags: ``--run-dir``, ``--force-run-dir`` and the workers' hidden flag."""
    group = parser.add_argument_group("run record")
    group.add_argument(
        "--run-dir",
        metavar="DIR",
        help="write the run record into DIR (made if missing): run.json, config.yaml, "
        "config.resolved.yaml, plugins.json, output.log, result.json, status.json; "
        "${run:dir} is DIR",
    )
    group.add_argument(
        "--force-run-dir",
        action="store_true",
        help="replace the record of a finished run in DIR (refused without this)",
    )
    parser.add_argument(WORKER_RUN_DIR, metavar="DIR", help=argparse.SUPPRESS)


def add_run_dir_value(parser: argparse.ArgumentParser) -> None:
    """``show``'s and ``check``'s ``--run-dir``: only the value of ``${run:dir}``."""
    parser.add_argument(
        "--run-dir", metavar="DIR", help="the value of ${run:dir} (nothing is written there)"
    )


def run_dir_of(text: str | None) -> Path | None:
    """``--run-dir``'s folder as an absolute path (symlinks kept), or None."""
    return None if text is None else Path(os.path.abspath(text))
