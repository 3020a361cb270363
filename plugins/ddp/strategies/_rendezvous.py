"""One rendezvous store per process, shared by every process group the strategies create.

``init_process_group`` with the environment's rendezvous (torchrun's ``MASTER_ADDR`` and
``MASTER_PORT``) makes a new TCP store on that port for every group. When one process runs two
trainers in turn, rank 1 can reach the port for the second group while rank 0 is still closing
the first group's store, and fails with "connection reset by peer". Here the store is made once,
and each group gets its own key prefix in it, so a later group never reconnects.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import torch.distributed as dist

__all__ = ["group_store"]

_store: dist.Store | None = None
_groups = itertools.count(1)


def group_store(rank: int, world_size: int, timeout: timedelta) -> dist.Store:
    """A store for one new process group: the process's rendezvous store (made on first use,
    from the environment) under a key prefix of the group's own."""
    global _store
    if _store is None:
        _store, _, _ = next(
            dist.rendezvous("env://", rank=rank, world_size=world_size, timeout=timeout)
        )
        _store.set_timeout(timeout)
    return dist.PrefixStore(f"corelib/group{next(_groups)}/", _store)
