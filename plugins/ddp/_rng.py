"""Seeding and capturing every random number generator a training run touches."""

from __future__ import annotations

import random
from typing import Any

import torch

try:
    import numpy as np
except ImportError:  # numpy is optional for training
    np = None  # type: ignore[assignment]

__all__ = ["rng_state", "seed_everything", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (if installed) and torch's generators (CPU and every GPU)."""
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if np is not None:
        np.random.seed(seed % 2**32)


def rng_state() -> dict[str, Any]:
    """The state of every generator :func:`seed_everything` seeds."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if np is not None:
        state["numpy"] = np.random.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators from :func:`rng_state` (those missing from ``state`` are left as is)."""
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if np is not None and "numpy" in state:
        np.random.set_state(state["numpy"])
    if torch.cuda.is_available() and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
