"""Training data as a resumable stream of per-rank micro-batches.

``train_data`` is either a dataset (``len`` and ``__getitem__``; the strategy shards it with a
distributed sampler reshuffled each epoch) or a dataloader factory: a callable taking keyword
arguments ``rank``, ``world_size``, ``epoch`` and ``seed`` (the data-parallel rank and size)
that returns this rank's batches for that epoch. Every rank must get the same number of batches.
A dataset keeps its last, smaller batch (``drop_last=False``, as a ``DataLoader`` does); on
several ranks the sampler pads the shards to equal length by repeating the first samples (as
``DistributedSampler`` does), so every rank gets the same number of batches.
The stream's position (epoch, batches consumed in it) is part of a checkpoint; resuming
mid-epoch skips a dataset's consumed samples without loading them (a factory's batches are
drawn and dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from plugins.ddp.strategies import Strategy

__all__ = ["BatchStream", "DataSource", "is_dataset", "load_batches"]

DataSource = Any  # a map-style dataset, or a callable(*, rank, world_size, epoch, seed)


def is_dataset(source: DataSource) -> bool:
    """True for a map-style dataset (sized and indexable), False for a dataloader factory."""
    return hasattr(source, "__len__") and hasattr(source, "__getitem__")


def load_batches(
    source: DataSource,
    strategy: Strategy,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    train: bool,
    skip_batches: int = 0,
) -> Iterable[Any]:
    """This rank's batches of ``source`` for ``epoch`` after the first ``skip_batches``,
    shuffled when ``train``; the last batch may be smaller than ``batch_size``."""
    if is_dataset(source):
        try:
            return strategy.dataloader(
                source,
                batch_size=batch_size,
                shuffle=train,
                seed=seed,
                drop_last=False,
                epoch=epoch,
                skip_batches=skip_batches,
            )
        except ValueError as error:
            name = "train_data" if train else "val_data"
            raise ValueError(f"ddp/trainer: {name}: {error}") from error
    if not callable(source):
        raise TypeError(
            "ddp/trainer: data must be a dataset (with __len__ and __getitem__) or a dataloader "
            f"factory callable(*, rank, world_size, epoch, seed); got {type(source).__name__}"
        )
    factory: Callable[..., Iterable[Any]] = source
    batches = factory(
        rank=strategy.data_parallel_rank,
        world_size=strategy.data_parallel_size,
        epoch=epoch,
        seed=seed,
    )
    return islice(batches, skip_batches, None) if skip_batches else batches


class BatchStream:
    """Training micro-batches, epoch after epoch, remembering where it is.

    Iterating yields batches until ``max_epochs`` epochs are done (forever when ``None``);
    ``epoch`` and ``batch_in_epoch`` always describe the batches handed out so far.
    """

    def __init__(
        self,
        source: DataSource,
        strategy: Strategy,
        *,
        batch_size: int,
        seed: int,
        max_epochs: int | None,
    ) -> None:
        self.source = source
        self.strategy = strategy
        self.batch_size = batch_size
        self.seed = seed
        self.max_epochs = max_epochs
        self.epoch = 0
        self.batch_in_epoch = 0

    def batches_per_epoch(self) -> int | None:
        """How many batches one epoch has on this rank (``None`` if the loader has no length)."""
        loader = self._loader(self.epoch)
        return len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        while self.max_epochs is None or self.epoch < self.max_epochs:
            for batch in self._loader(self.epoch, skip_batches=self.batch_in_epoch):
                self.batch_in_epoch += 1
                yield batch
            if self.batch_in_epoch == 0:
                raise ValueError(
                    f"ddp/trainer: train_data gave rank {self.strategy.rank} no batches in epoch "
                    f"{self.epoch} (batch_size={self.batch_size} per rank, "
                    f"{self.strategy.data_parallel_size} data-parallel ranks)"
                )
            self.epoch += 1
            self.batch_in_epoch = 0

    def state_dict(self) -> dict[str, int]:
        """The position: ``{"epoch": ..., "batch_in_epoch": ...}``."""
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a position given by :meth:`state_dict`."""
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])

    def _loader(self, epoch: int, skip_batches: int = 0) -> Iterable[Any]:
        return load_batches(
            self.source,
            self.strategy,
            batch_size=self.batch_size,
            seed=self.seed,
            epoch=epoch,
            train=True,
            skip_batches=skip_batches,
        )
