"""Synthetic classification data, built locally and deterministically (examples and tests)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

__all__ = ["gaussian_blobs"]


def gaussian_blobs(
    n_samples: int = 1024,
    n_features: int = 16,
    n_classes: int = 4,
    *,
    spread: float = 1.0,
    seed: int = 0,
    sample_seed: int = 0,
) -> TensorDataset:
    """Pairs ``(features, label)``: one Gaussian cloud per class around a random centre.

    ``seed`` fixes the problem (the centres); ``sample_seed`` draws an independent sample of it
    (use another one for validation data). ``spread`` is the clouds' standard deviation relative
    to the centres' (1.0: they overlap). The same arguments always give the same data.
    """
    if n_samples < 1 or n_features < 1 or n_classes < 2:
        raise ValueError(
            f"gaussian_blobs needs n_samples >= 1, n_features >= 1, n_classes >= 2; got "
            f"{n_samples}, {n_features}, {n_classes}"
        )
    centres = torch.randn(n_classes, n_features, generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + sample_seed + 1)
    labels = torch.randint(n_classes, (n_samples,), generator=generator)
    noise = torch.randn(n_samples, n_features, generator=generator) * spread
    return TensorDataset(centres[labels] + noise, labels)
