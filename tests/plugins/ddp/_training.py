"""A small classification run shared by the ddp tests: model, data, and a trainer factory.

Worker functions for :func:`_dist.run_ranks` build trainers through :func:`make_trainer` so
that one process and two ranks train the very same problem.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from corelib import hookimpl
from plugins.ddp.models import MLP
from plugins.ddp.synthetic import gaussian_blobs
from plugins.ddp.trainer import Trainer

N_FEATURES, N_CLASSES, HIDDEN = 8, 3, 16


def make_model(dropout: float = 0.0) -> torch.nn.Module:
    """The classifier every test trains (built after the trainer seeded the RNG); with
    ``dropout``, inputs are dropped at random, so training consumes the RNG."""
    mlp = MLP(N_FEATURES, HIDDEN, N_CLASSES, depth=3)
    return torch.nn.Sequential(torch.nn.Dropout(dropout), mlp) if dropout else mlp


def make_data(n_samples: int = 256, sample_seed: int = 0) -> torch.utils.data.Dataset:
    """Overlapping Gaussian blobs: the loss keeps moving for many steps."""
    return gaussian_blobs(n_samples, N_FEATURES, N_CLASSES, spread=1.5, sample_seed=sample_seed)


class FinalState:
    """Callback keeping the full (unsharded) model state and the metrics at the end of fit."""

    def __init__(self) -> None:
        self.params: dict[str, torch.Tensor] = {}
        self.metrics: dict[str, float] = {}
        self.steps: list[int] = []

    @hookimpl
    def ddp_step_end(self, step: int) -> None:
        self.steps.append(step)

    @hookimpl
    def ddp_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        options = StateDictOptions(full_state_dict=True)  # on every rank (no cpu_offload)
        state = get_model_state_dict(trainer.model, options=options)
        self.params = {name: tensor.detach().cpu().clone() for name, tensor in state.items()}
        self.metrics = dict(metrics)


def make_trainer(
    *, strategy: Any = None, callbacks: tuple[Any, ...] = (), lr: float = 0.05, **kwargs: Any
) -> Trainer:
    """A trainer over :func:`make_model` and :func:`make_data`; ``kwargs`` override defaults."""
    options: dict[str, Any] = {"batch_size": 8, "max_steps": 6, "loss_fn": F.cross_entropy}
    options.update(kwargs)
    return Trainer(
        options.pop("model", make_model),
        options.pop("train_data", None) or make_data(),
        functools.partial(torch.optim.SGD, lr=lr, momentum=0.9),
        strategy=strategy,
        callbacks=callbacks,
        **options,
    )


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return max((a[key].float() - b[key].float()).abs().max().item() for key in a)
