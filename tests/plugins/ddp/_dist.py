"""Run a function on N local ranks, each a fresh process joined by torchrun-style environment.

Workers start from a ``forkserver`` that has torch preloaded (never ``fork``: a parent that has
run torch ops on several threads hangs its forked children), so after the server's first start
(~2.5 s) a 2-rank run costs a fraction of a second. ``fn(rank, *args)`` must be importable (a
module-level function); its return values come back in rank order, and a rank that raises or
does not finish in time fails the call with that rank's traceback.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["RankFailure", "free_port", "run_ranks"]

_PRELOAD = [
    "torch",
    "torch.distributed",
    "torch.distributed.checkpoint",
    "torch.distributed.fsdp",
    "torch.distributed.pipelining",  # ~2 s per process otherwise
    "torch.distributed.tensor.parallel",
    "torch.nn.parallel",
    "torch._dynamo",  # imported by the first optimizer: ~3 s per process otherwise
    "plugins.ddp.trainer",
]
_GRACE_S = 5.0  # how long the other ranks may keep running once one has failed


class RankFailure(AssertionError):
    """A rank raised, died, or did not finish within the timeout."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ranks(
    fn: Callable[..., Any], *args: Any, world_size: int = 2, timeout: float = 60.0
) -> list[Any]:
    """Run ``fn(rank, *args)`` on ``world_size`` processes; return their results by rank."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    port = free_port()
    pipes: dict[int, Connection] = {}
    processes = []
    for rank in range(world_size):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker, args=(fn, rank, world_size, port, args, sender), daemon=True
        )
        process.start()
        sender.close()
        pipes[rank] = receiver
        processes.append(process)
    try:
        return _collect(pipes, processes, timeout)
    finally:
        for process in processes:
            process.join(timeout=1)
            if process.is_alive():
                process.kill()
                process.join()


def _collect(pipes: dict[int, Connection], processes: list[Any], timeout: float) -> list[Any]:
    results: dict[int, Any] = {}
    failures: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    pending = dict(pipes)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for receiver in wait(list(pending.values()), timeout=remaining):
            rank = next(r for r, conn in pending.items() if conn is receiver)
            del pending[rank]
            try:
                status, payload = pickle.loads(receiver.recv_bytes())
            except EOFError:
                processes[rank].join(timeout=1)
                status, payload = "error", f"died with exit code {processes[rank].exitcode}"
            (results if status == "ok" else failures)[rank] = payload
            if failures:
                deadline = min(deadline, time.monotonic() + _GRACE_S)
    reason = (
        f"still running {_GRACE_S:.0f} s after another rank failed; killed"
        if failures
        else f"did not finish within {timeout:.0f} s; killed"
    )
    failures.update(dict.fromkeys(pending, reason))
    if failures:
        report = "\n".join(f"--- rank {rank}: {text}" for rank, text in sorted(failures.items()))
        raise RankFailure(f"{len(failures)} of {len(pipes)} ranks failed:\n{report}")
    return [results[rank] for rank in sorted(results)]


def _worker(
    fn: Callable[..., Any],
    rank: int,
    world_size: int,
    port: int,
    args: tuple[Any, ...],
    sender: Connection,
) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    import torch

    torch.set_num_threads(1)
    gc.freeze()  # the preloaded modules' objects: a full collection (teardown) skips them
    try:
        message = ("ok", fn(rank, *args))
    except BaseException:
        message = ("error", traceback.format_exc())
    # Plain pickle copies tensors; the default (torch's shared-memory reducers) would hand out
    # file descriptors that vanish when this process exits.
    sender.send_bytes(pickle.dumps(message))
    sender.close()
    os._exit(0)  # skip interpreter teardown: a half-closed process group must not hang the test
