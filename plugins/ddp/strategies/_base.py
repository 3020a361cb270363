"""The strategy interface: where a model trains and how its gradients and state are shared.

A :class:`Strategy` owns the process group and the device, wraps the model (DDP, FSDP2, TP, ...),
builds the optimizer *after* wrapping, shards the data, runs forward and backward, reduces
tensors across ranks, and saves/loads checkpoints through ``torch.distributed.checkpoint``.
The trainer talks to nothing else. Subclasses usually override :meth:`wrap` and, where the
model's gradient sync is special, :meth:`gradient_sync`; pipeline parallelism overrides
:meth:`forward_backward`.

Ranks come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``); without it the strategy runs as one process, in a one-rank
process group (an in-memory store, no network) when the subclass sets
``requires_process_group``.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from plugins.ddp import _dcp
from plugins.ddp.activation_checkpointing import (
    apply_activation_checkpointing,
    checkpoint_patterns,
)
from plugins.ddp.strategies._rendezvous import group_store
from plugins.ddp.strategies._unwrap import gather_full_tensors

__all__ = ["LossFn", "OptimizerFactory", "ReduceOp", "Strategy", "best_device"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
LossFn = Callable[[Any, Any], torch.Tensor]
ReduceOp = Literal["mean", "sum", "max", "min"]

_REDUCE_OPS = {
    "sum": dist.ReduceOp.SUM,
    "mean": dist.ReduceOp.SUM,  # divided by the world size afterwards (gloo has no AVG)
    "max": dist.ReduceOp.MAX,
    "min": dist.ReduceOp.MIN,
}


def best_device(local_rank: int = 0) -> torch.device:
    """The device for the process with ``local_rank``: its own GPU when there is one, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


class Strategy:
    """Base class of every training strategy; on its own it trains one replica per process.

    Args:
        device: ``"cpu"``, ``"cuda"`` (this rank's GPU), ``"cuda:1"``...; ``None`` picks the best.
        backend: process-group backend; ``None`` means nccl on CUDA, gloo otherwise.
        timeout_s: how long a collective may wait for a missing rank before failing. gloo's
            default is 30 minutes with no watchdog, so a short one bounds every hang.
        activation_checkpointing: module-name patterns (``"blocks.*"``, or a class name) of
            the submodules whose activations are recomputed in backward instead of kept
            (see :mod:`plugins.ddp.activation_checkpointing`); ``None``: off.
    """

    requires_process_group: bool = False
    """Whether :meth:`setup` creates a process group even for a single process (DDP, FSDP2...)."""
    component_name: str = "ddp/strategy"
    """The strategy's registered name (``ddp/fsdp2``...), for messages."""

    def __init__(
        self,
        *,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
        activation_checkpointing: Sequence[str] | str | None = None,
    ) -> None:
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.device = _resolve_device(device, self.local_rank)
        self.backend = backend
        self.timeout_s = timeout_s
        self.activation_checkpointing = checkpoint_patterns(activation_checkpointing)
        self._owns_process_group = False

    @property
    def is_main(self) -> bool:
        """True on rank 0: the rank that prints, logs and writes rank-independent files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when a process group joins this process to others."""
        return self.world_size > 1

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Join the process group (when launched on several ranks) and select the device."""
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if dist.is_initialized() or not (self.is_distributed or self.requires_process_group):
            return
        backend = self.backend or ("nccl" if self.device.type == "cuda" else "gloo")
        timeout = timedelta(seconds=self.timeout_s)
        dist.init_process_group(
            backend,
            store=(
                group_store(self.rank, self.world_size, timeout)
                if self.is_distributed
                else dist.HashStore()
            ),
            rank=self.rank,
            world_size=self.world_size,
            timeout=timeout,
        )
        self._owns_process_group = True

    def teardown(self) -> None:
        """Leave the process group. Callers drop their model references first: a wrapped model
        alive at ``destroy_process_group()`` can deadlock, so garbage is collected before it."""
        if self._owns_process_group and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()
        self._owns_process_group = False

    # -- model, optimizer, data --------------------------------------------------------------

    def wrap(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and wrap it for this strategy (here: move only)."""
        self.checkpoint_activations(model)
        return model.to(self.device)

    def model_init_context(self) -> contextlib.AbstractContextManager[Any]:
        """The context the trainer builds the model in (a factory); here, none."""
        return contextlib.nullcontext()

    def checkpoint_activations(self, model: nn.Module) -> None:
        """Apply the ``activation_checkpointing`` option to ``model`` (in place; first thing in
        :meth:`wrap`, before any sharding)."""
        if self.activation_checkpointing is not None:
            apply_activation_checkpointing(
                model, self.activation_checkpointing, strategy=self.component_name
            )

    def compile_units(self, model: nn.Module) -> list[nn.Module]:
        """The modules of the unwrapped ``model`` that the trainer's ``compile`` option compiles
        in place before :meth:`wrap` (here: the whole model)."""
        return [model]

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain module inside the wrapped ``model``, holding full (unsharded) ordinary
        tensors that stay readable after :meth:`teardown` (collective where sharded)."""
        gather_full_tensors(model)
        return model

    def build_optimizer(self, factory: OptimizerFactory, model: nn.Module) -> torch.optim.Optimizer:
        """Build the optimizer over the *wrapped* model's parameters (never before :meth:`wrap`:
        an optimizer built before ``fully_shard`` holds stale parameters and trains nothing)."""
        return factory(model.parameters())

    def dataloader(
        self,
        dataset: Dataset[Any],
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        epoch: int = 0,
        skip_batches: int = 0,
    ) -> DataLoader[Any]:
        """A loader over this rank's shard of ``dataset`` for ``epoch`` (shuffled by ``seed`` and
        ``epoch``; ``batch_size`` per rank), starting after its first ``skip_batches`` batches
        (which are never loaded: resuming mid-epoch costs nothing)."""
        size = len(dataset)  # type: ignore[arg-type]
        shards = self.data_parallel_size
        per_rank = size // shards if drop_last else -(-size // shards)
        if size < shards or (drop_last and per_rank < batch_size):
            raise ValueError(
                f"the dataset has {size} samples: too few for {shards} data-parallel ranks with "
                f"batch_size={batch_size} per rank (drop_last={drop_last}); use fewer processes "
                "(--nproc-per-node), a smaller batch_size, or more data"
            )
        sampler: DistributedSampler[Any] = DistributedSampler(
            dataset,
            num_replicas=shards,
            rank=self.data_parallel_rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        sampler.set_epoch(epoch)
        indices = list(sampler)[skip_batches * batch_size :] if skip_batches else sampler
        # Its own generator: starting an epoch must not draw from the global RNG, or a resumed
        # run (which restores the global RNG mid-epoch) would diverge from an uninterrupted one.
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=indices,
            drop_last=drop_last,
            generator=torch.Generator().manual_seed(seed),
        )

    @property
    def data_parallel_size(self) -> int:
        """How many ranks see different data (all of them, unless a subclass shards the model)."""
        return self.world_size

    @property
    def data_parallel_rank(self) -> int:
        """This rank's index among the :attr:`data_parallel_size` data shards."""
        return self.rank

    # -- one step ----------------------------------------------------------------------------

    def forward_backward(
        self,
        model: nn.Module,
        batch: Any,
        loss_fn: LossFn | None,
        *,
        loss_scale: float | torch.Tensor = 1.0,
        sync: bool = True,
        autocast_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Run forward and backward on one micro-batch; return the unscaled loss, detached.

        ``loss_fn(model(x), y)`` for a batch ``(x, y)``; with ``loss_fn=None`` the model returns
        the loss from ``model(*batch)`` (or ``model(**batch)`` for a mapping). The loss is
        multiplied by ``loss_scale`` (1 / accumulation steps, times a gradient scaler's scale
        under fp16) before backward. ``sync=False``
        skips the gradient all-reduce (an accumulation micro-batch that is not the last).
        ``autocast_dtype`` runs the forward pass under ``torch.autocast`` in that dtype.
        """
        batch = self.to_device(batch)
        with self.gradient_sync(model, enabled=sync):
            with self._autocast(autocast_dtype):
                loss = _compute_loss(model, batch, loss_fn)
            self.backward(loss, loss_scale=loss_scale)
        return loss.detach()

    def backward(self, loss: torch.Tensor, *, loss_scale: float | torch.Tensor = 1.0) -> None:
        """Backpropagate ``loss`` times ``loss_scale`` (1 / accumulation steps) through the
        wrapped model, whose wrapper averages the gradients over the data-parallel ranks.

        To accumulate without that reduction, run forward and backward inside
        ``gradient_sync(model, enabled=False)`` (DDP decides during the forward pass).
        """
        scaled = isinstance(loss_scale, torch.Tensor) or loss_scale != 1.0
        (loss * loss_scale if scaled else loss).backward()

    def eval_loss(
        self,
        model: nn.Module,
        batch: Any,
        loss_fn: LossFn | None,
        *,
        autocast_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The loss of one batch without gradients (validation); same batch rules as above."""
        batch = self.to_device(batch)
        with torch.no_grad(), self._autocast(autocast_dtype):
            return _compute_loss(model, batch, loss_fn).detach()

    def gradient_sync(
        self, model: nn.Module, *, enabled: bool
    ) -> contextlib.AbstractContextManager[None]:
        """A context in which backward reduces gradients across ranks only if ``enabled``."""
        return contextlib.nullcontext()

    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        """Clip gradients to ``max_norm`` (over all shards); return the norm before clipping."""
        norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        full_tensor = getattr(norm, "full_tensor", None)  # a DTensor under FSDP2 / TP
        return full_tensor() if full_tensor is not None else norm

    def to_device(self, batch: Any) -> Any:
        """``batch`` with every tensor in it (nested in tuples, lists, dicts) on the device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, Mapping):
            return {key: self.to_device(value) for key, value in batch.items()}
        if isinstance(batch, tuple | list):
            return type(batch)(self.to_device(value) for value in batch)
        return batch

    def _autocast(self, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    # -- collectives -------------------------------------------------------------------------

    def all_reduce(self, tensor: torch.Tensor, op: ReduceOp = "mean") -> torch.Tensor:
        """``tensor`` reduced over all ranks (a new tensor; the input is left unchanged)."""
        if op not in _REDUCE_OPS:
            raise ValueError(f"unknown reduce op {op!r}; expected one of {sorted(_REDUCE_OPS)}")
        result = tensor.detach().clone()
        if not dist.is_initialized() or dist.get_world_size() == 1:
            return result
        dist.all_reduce(result, op=_REDUCE_OPS[op])
        if op == "mean":
            result /= self.world_size
        return result

    def barrier(self) -> None:
        """Wait for every rank; on gloo a rank that does not arrive in time is named."""
        if not dist.is_initialized():
            return
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=self.timeout_s))
        else:
            dist.barrier()

    # -- state and checkpoints ---------------------------------------------------------------

    def state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """``{"model": ..., "optimizer": ...}`` with unwrapped (``module.``-free) keys; sharded
        strategies hold DTensors here, so checkpoints move between strategies."""
        model_state, optimizer_state = _dcp.get_state_dict(model, optimizer)
        return {"model": model_state, "optimizer": optimizer_state}

    def load_state_dict(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]
    ) -> None:
        """Copy a :meth:`state_dict`-shaped ``state`` into ``model`` and ``optimizer``."""
        _dcp.set_state_dict(model, optimizer, state["model"], state["optimizer"])

    def save(self, state: dict[str, Any], directory: str | os.PathLike[str]) -> None:
        """Write ``state`` to ``directory`` with ``torch.distributed.checkpoint`` (collective)."""
        _dcp.save(state, directory)

    def load(
        self, directory: str | os.PathLike[str], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Read the checkpoint in ``directory`` and return its state.

        With ``state`` (shaped like :meth:`state_dict`), its tensors are filled in place,
        resharded to this strategy's layout (collective), and ``state`` is returned. Without,
        this rank reads the whole checkpoint alone, as full tensors on the CPU. The earlier
        argument order ``load(state, directory)`` still works.
        """
        if isinstance(directory, Mapping):  # load(state, directory), as before
            directory, state = state, directory  # type: ignore[assignment]
        assert directory is not None
        if state is None:
            return _dcp.load_whole(directory)
        _dcp.load(state, directory)
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size}, "
            f"device={str(self.device)!r})"
        )


def _resolve_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    if device is None:
        return best_device(local_rank)
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        return best_device(local_rank)
    return resolved


def _compute_loss(model: nn.Module, batch: Any, loss_fn: LossFn | None) -> torch.Tensor:
    if loss_fn is not None:
        inputs, targets = _split_batch(batch)
        return loss_fn(model(inputs), targets)
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, tuple | list):
        return model(*batch)
    return model(batch)


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        f"with a loss_fn, each batch must be a pair (inputs, targets); got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else "")
    )
