"""The verifier network (a small transformer encoder) and DiVeRSe's step-aware loss."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from plugins.verifiers._data import NO_LABEL

__all__ = ["FeatureVerifierNet", "StepWeighting", "VerifierLoss", "VerifierNet"]

StepWeighting = Literal["reference", "per_path"]
"""How the step loss is weighted against the path loss (see `VerifierLoss`)."""


class _EncoderWithHeads(nn.Module):
    """A pre-norm transformer encoder with a path head (read at position 0) and an optional
    step head, shared by the verifier networks; subclasses make their input layers first."""

    step_head: nn.Linear | None

    def _build_encoder(
        self, *, dim: int, heads: int, layers: int, dropout: float, step_head: bool
    ) -> None:
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.path_head = nn.Linear(dim, 1)
        self.step_head = nn.Linear(dim, 1) if step_head else None

    def _read(
        self, hidden: torch.Tensor, padding: torch.Tensor, *, steps_from: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode; path logits at position 0, step logits from position ``steps_from`` on."""
        hidden = self.norm(self.encoder(hidden, src_key_padding_mask=padding))
        path_logits = self.path_head(hidden[:, 0]).squeeze(-1)
        if self.step_head is None:
            return path_logits, None
        return path_logits, self.step_head(hidden[:, steps_from:]).squeeze(-1)


class VerifierNet(_EncoderWithHeads):
    """Token embeddings + learned positions + a transformer encoder, with two heads.

    ``forward(ids)`` returns ``(path_logits (batch,), step_logits (batch, length))``: the path
    head reads position 0 (``[CLS]``), the step head every position (used at step markers);
    without ``step_head`` the step logits are None. Padding (``pad_id``) is masked out.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        max_length: int,
        pad_id: int = 0,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        step_head: bool = True,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = nn.Embedding(max_length, dim)
        self._build_encoder(
            dim=dim, heads=heads, layers=layers, dropout=dropout, step_head=step_head
        )

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        positions = torch.arange(ids.shape[1], device=ids.device)
        hidden = self.tokens(ids) + self.positions(positions)
        return self._read(hidden, ids == self.pad_id, steps_from=0)


class FeatureVerifierNet(_EncoderWithHeads):
    """A transformer encoder over per-token feature vectors (see ``_lm_features``), two heads.

    ``forward(x)`` takes ``(batch, length, num_features + 1)``: the features, then 1 for a real
    token and 0 for padding. It returns ``(path_logits (batch,), step_logits (batch, length))``:
    the path head reads a learned summary token put in front, the step head every position.
    """

    def __init__(
        self,
        num_features: int,
        *,
        max_length: int,
        dim: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        step_head: bool = True,
    ) -> None:
        super().__init__()
        self.inputs = nn.Linear(num_features, dim)
        self.positions = nn.Embedding(max_length, dim)
        self.summary = nn.Parameter(torch.zeros(dim))
        self._build_encoder(
            dim=dim, heads=heads, layers=layers, dropout=dropout, step_head=step_head
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features, real = x[..., :-1], x[..., -1] > 0.5
        positions = torch.arange(x.shape[1], device=x.device)
        hidden = self.inputs(features) + self.positions(positions)
        summary = self.summary.expand(len(x), 1, -1)
        hidden = torch.cat([summary, hidden], dim=1)
        padding = torch.cat([torch.zeros_like(real[:, :1]), ~real], dim=1)
        return self._read(hidden, padding, steps_from=1)


class VerifierLoss(nn.Module):
    """DiVeRSe's step-aware loss: binary cross-entropy on the path label and on each step label.

    ``step_weighting="reference"`` (DiVeRSe's reference code): one weighted token cross-entropy
    over the batch, each path token weighted 1 and each step token ``alpha``, normalised by the
    sum of the weights: ``(sum path BCE + alpha x sum step BCE) / (paths + alpha x steps)``.
    ``"per_path"``: ``mean path BCE + alpha x mean step BCE``, the step term weighed as a whole
    (weaker than the reference by about the number of steps per path).

    With ``alpha=0`` the model needs no step head. A batch without step markers still touches
    the step head (with weight 0), so DDP sees a gradient for every parameter.
    """

    def __init__(self, alpha: float = 0.1, step_weighting: StepWeighting = "reference") -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"VerifierLoss: alpha must be >= 0, got {alpha}")
        check_step_weighting(step_weighting, "VerifierLoss")
        self.alpha = alpha
        self.step_weighting = step_weighting

    def forward(
        self,
        outputs: tuple[torch.Tensor, torch.Tensor | None],
        targets: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        path_logits, step_logits = outputs
        path_labels, step_targets = targets
        path_losses = F.binary_cross_entropy_with_logits(
            path_logits, path_labels.to(path_logits.dtype), reduction="none"
        )
        if self.alpha == 0:
            return path_losses.mean()
        if step_logits is None:
            raise ValueError("VerifierLoss: alpha > 0 needs a model with a step head")
        mask = step_targets != NO_LABEL
        if not mask.any():
            return path_losses.mean() + 0.0 * step_logits.sum()
        step_losses = F.binary_cross_entropy_with_logits(
            step_logits[mask], step_targets[mask].to(step_logits.dtype), reduction="none"
        )
        if self.step_weighting == "per_path":
            return path_losses.mean() + self.alpha * step_losses.mean()
        total = path_losses.sum() + self.alpha * step_losses.sum()
        return total / (len(path_losses) + self.alpha * len(step_losses))


def check_step_weighting(step_weighting: str, owner: str) -> None:
    """Raise ValueError naming ``owner`` unless ``step_weighting`` is a `StepWeighting`."""
    if step_weighting not in get_args(StepWeighting):
        raise ValueError(
            f"{owner}: step_weighting must be one of {list(get_args(StepWeighting))}, "
            f"got {step_weighting!r}"
        )
