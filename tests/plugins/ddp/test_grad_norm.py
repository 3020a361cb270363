"""Clipping over mixed gradients agrees with torch's own clipping where both apply."""

from __future__ import annotations

import pytest
import torch

from plugins.ddp.models import MLP
from plugins.ddp.strategies._grad_norm import clip_grad_norm


def _model_with_grads() -> torch.nn.Module:
    torch.manual_seed(0)
    model = MLP(4, 8, 3)
    model(torch.randn(16, 4)).square().sum().backward()
    return model


@pytest.mark.parametrize("max_norm", [0.1, 1e6], ids=["clipped", "untouched"])
def test_plain_gradients_clip_like_torch(max_norm: float) -> None:
    ours, theirs = _model_with_grads(), _model_with_grads()
    norm = clip_grad_norm(ours.parameters(), max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    torch.testing.assert_close(norm, expected)
    for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, reference.grad)
