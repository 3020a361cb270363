"""``corelib run``'s launch flags: check them, and start the workers through torchrun.

Every flag is checked before the config is read (most while the command line is parsed): a
malformed one is a usage error (exit 2) and no process starts. The launcher turns torchrun's
outcomes into the CLI's: a failed worker is exit 1 naming its rank, and SIGINT or SIGTERM stops
the workers and exits 128 + the signal's number with one line, as a single process does.

Workers import exactly what the launcher could: they start as ``python -P -m corelib`` (``-P``:
no folder is put first on their ``sys.path``), and the current folder is put on their
``PYTHONPATH`` only when the launcher's own ``sys.path`` held it. A recipe's ``yaml.py`` in the
folder a job is started from cannot shadow a module in a worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points

from corelib._errors import ConfigError
from corelib._signals import Interrupted

__all__ = [
    "add_launch_arguments",
    "check_launch_flags",
    "launch",
    "launch_requested",
    "torchrun_argv",
    "worker_environment",
]

_RDZV_BACKENDS = ("c10d", "static", "etcd", "etcd-v2")  # torchrun's own; more by entry point


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _nnodes(text: str) -> str:
    """``N`` or ``MIN:MAX`` with ``1 <= MIN <= MAX``."""
    parts = text.split(":")
    try:
        low, high = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, -1)
    except ValueError:
        low, high = 0, -1
    if low < 1 or high < low:
        raise argparse.ArgumentTypeError(
            f"expected N or MIN:MAX with 1 <= MIN <= MAX, got {text!r}"
        )
    return text


def _endpoint(text: str) -> str:
    """``HOST`` or ``HOST:PORT`` (an IPv6 host in brackets) with a port in 1..65535."""
    host, colon, port = text.rpartition(":") if not text.endswith("]") else ("", "", "")
    host = host if colon else text
    if not host or (colon and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise argparse.ArgumentTypeError(
            f"expected HOST or HOST:PORT with a port in 1..65535, got {text!r}"
        )
    return text


def _backend(text: str) -> str:
    """A rendezvous backend torchrun knows: its own, or one from a ``torchrun.handlers`` plugin."""
    known = [*_RDZV_BACKENDS, *(ep.name for ep in entry_points(group="torchrun.handlers"))]
    if text not in known:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(known)}; got {text!r}")
    return text


def _nonempty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return text


# (our flag, its argparse destination, type, metavar, help); torchrun takes the same spelling.
_LAUNCH_FLAGS: tuple[tuple[str, str, Callable[[str], object], str, str], ...] = (
    ("--nproc-per-node", "nproc_per_node", _integer(1), "N", "workers per node"),
    ("--nnodes", "nnodes", _nnodes, "N|MIN:MAX", "number of nodes"),
    ("--node-rank", "node_rank", _integer(0), "R", "this node's rank"),
    ("--rdzv-endpoint", "rdzv_endpoint", _endpoint, "HOST:PORT", "rendezvous endpoint"),
    ("--rdzv-backend", "rdzv_backend", _backend, "NAME", "rendezvous backend (c10d)"),
    ("--rdzv-id", "rdzv_id", _nonempty, "ID", "job id shared by all nodes"),
    ("--max-restarts", "max_restarts", _integer(0), "N", "restarts on failure"),
)


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the launch flags (a group of ``parser``); each is checked as it is parsed."""
    group = parser.add_argument_group(
        "launching", "any of these starts the workers through torchrun (torch.distributed.run)"
    )
    for flag, dest, type_, metavar, help_ in _LAUNCH_FLAGS:
        group.add_argument(flag, dest=dest, type=type_, metavar=metavar, help=help_)


def launch_requested(args: argparse.Namespace) -> bool:
    """Whether any launch flag was given."""
    return any(getattr(args, dest) is not None for _, dest, *_ in _LAUNCH_FLAGS)


def check_launch_flags(args: argparse.Namespace) -> None:
    """Problems between flags: a node rank beyond the number of nodes."""
    if args.node_rank is None:
        return
    nodes = int((args.nnodes or "1").split(":")[-1])
    if args.node_rank >= nodes:
        raise ConfigError(
            f"--node-rank {args.node_rank}: expected a rank below the number of nodes "
            f"({args.nnodes or '1, the default'})"
        )


def torchrun_argv(args: argparse.Namespace) -> list[str]:
    """torchrun's own flags for the launch flags that were given."""
    argv: list[str] = []
    for flag, dest, *_ in _LAUNCH_FLAGS:
        value = getattr(args, dest)
        if value is not None:
            argv += [flag, str(value)]
    return argv


def worker_environment(environ: Mapping[str, str], path: list[str], cwd: str) -> dict[str, str]:
    """The variables that give workers the launcher's import path (``path``, its ``sys.path``).

    Workers run ``python -P``, which puts no folder first on their ``sys.path``; ``cwd`` goes
    first on their ``PYTHONPATH`` when (and only when) ``path`` holds it, as the launcher's does
    when it ran as ``python -m corelib``.
    """
    here = os.path.realpath(cwd)
    if not any(os.path.realpath(os.path.join(cwd, entry)) == here for entry in path):
        return {}
    inherited = environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([cwd, inherited] if inherited else [cwd])}


@contextmanager
def _environment(updates: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``updates`` (what torchrun's workers inherit), restored afterwards."""
    saved = {name: os.environ.get(name) for name in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def launch(args: argparse.Namespace, worker_argv: list[str]) -> str | None:
    """Run ``python -P -m corelib WORKER_ARGV`` in every worker through torchrun; None, or the
    line that says which worker failed (its own error is printed above it)."""
    try:
        from torch.distributed import run as torchrun
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    except ImportError as exc:
        raise ConfigError(
            f"launching workers needs torch (pip install 'corelib[ddp]'): {exc}"
        ) from exc
    # torchrun's shared rendezvous TCP store intermittently fails to reconnect on restarts
    # (pytorch/pytorch#135712); a store of its own per rendezvous avoids that.
    os.environ.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    python = os.environ.get("PYTHON_EXEC", sys.executable)  # the interpreter torchrun would use
    worker = [python, "-P", "-u", "-m", "corelib", *worker_argv]  # -P: not the cwd's modules
    config = torchrun.parse_args([*torchrun_argv(args), "--no-python", *worker])
    updates = worker_environment(os.environ, sys.path, os.getcwd())
    try:
        with _environment(updates):
            torchrun.run(config)
    except ChildFailedError as failed:
        rank, failure = failed.get_first_failure()
        return (
            f"worker rank {rank} failed (exit code {failure.exitcode}); its error is printed above"
        )
    except SignalException as stopped:  # torchrun's agent stopped the workers first
        raise Interrupted(stopped.sigval, workers=True) from None
    except Exception as exc:  # torchrun's own machinery failed (rendezvous, backend): no user code
        raise ConfigError(
            f"torchrun could not start the workers: {type(exc).__name__}: {exc}"
        ) from exc
    except KeyboardInterrupt:  # before torchrun's own handlers were in place
        raise Interrupted(signal.SIGINT, workers=True) from None
    except Interrupted as stopped:  # the same, for SIGTERM
        raise Interrupted(stopped.signum, workers=True) from None
    return None
