"""Encoding (question, steps) pairs for the verifier model, and the training dataset.

A path reads ``[CLS] step 1 [STEP] step 2 [STEP] ... [SEP] question`` (path first, as in the
reference code), cut at ``max_length`` tokens: the path's score is read at ``[CLS]``, each step's
at its ``[STEP]`` marker.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch.utils.data import Dataset

from plugins.verifiers._lm_features import Encoded, PathFeatures
from plugins.verifiers._tokenizer import CLS, PAD, SEP, STEP, WordTokenizer
from plugins.verifiers.labels import LabeledPath

__all__ = [
    "EncodedPath",
    "FeatureDataset",
    "TokenDataset",
    "VerifierDataset",
    "encode",
    "pad",
    "pad_features",
]

NO_LABEL = -1.0
"""Step target of a position that is not a step marker (ignored by the loss)."""


@attrs.frozen
class EncodedPath:
    """Token ids and the position of each step marker that fits in ``max_length``."""

    ids: list[int]
    markers: list[int]


def encode(
    tokenizer: WordTokenizer, question: str, steps: Sequence[str], max_length: int
) -> EncodedPath:
    """Encode one path, cut at ``max_length`` tokens (the question's tail is cut first)."""
    ids = [tokenizer.id(CLS)]
    markers = []
    for step in steps:
        ids.extend(tokenizer.encode(step))
        markers.append(len(ids))
        ids.append(tokenizer.id(STEP))
    ids.append(tokenizer.id(SEP))
    ids.extend(tokenizer.encode(question))
    return EncodedPath(ids[:max_length], [m for m in markers if m < max_length])


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """A (batch, longest) long tensor of ``sequences`` right-padded with ``pad_id``."""
    longest = max(len(s) for s in sequences)
    out = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return out


class VerifierDataset(Dataset):
    """Labelled paths as ``(ids, (path_label, step_targets))`` items of equal length.

    Every item is padded to the longest encoded path, so the default collate stacks them;
    ``step_targets`` hold 1/0 at step markers and ``NO_LABEL`` elsewhere.
    """

    def __init__(
        self, examples: Sequence[LabeledPath], tokenizer: WordTokenizer, max_length: int
    ) -> None:
        if not examples:
            raise ValueError("VerifierDataset: no training examples")
        encoded = [encode(tokenizer, ex.question, ex.steps, max_length) for ex in examples]
        self.ids = pad([e.ids for e in encoded], tokenizer.id(PAD))
        self.path_labels, self.step_targets = _targets(
            examples, [e.markers for e in encoded], self.ids.shape[1]
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        return self.ids[index], (self.path_labels[index], self.step_targets[index])


def pad_features(paths: Sequence[PathFeatures]) -> torch.Tensor:
    """A (batch, longest, features + 1) tensor: each path's features, then a 1 (token) / 0
    (padding) column, zero-padded on the right."""
    longest = max(1, max(len(p.features) for p in paths))
    width = paths[0].features.shape[1] + 1
    out = torch.zeros((len(paths), longest, width))
    for row, path in enumerate(paths):
        out[row, : len(path.features), :-1] = path.features
        out[row, : len(path.features), -1] = 1.0
    return out


class FeatureDataset(Dataset):
    """Labelled paths as ``(features, (path_label, step_targets))`` items of equal length;
    ``step_targets`` hold 1/0 at each step's last token and ``NO_LABEL`` elsewhere."""

    def __init__(self, examples: Sequence[LabeledPath], features: Sequence[PathFeatures]) -> None:
        if not examples:
            raise ValueError("FeatureDataset: no training examples")
        self.inputs = pad_features(features)
        self.path_labels, self.step_targets = _targets(
            examples, [path.markers for path in features], self.inputs.shape[1]
        )

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        return self.inputs[index], (self.path_labels[index], self.step_targets[index])


class TokenDataset(Dataset):
    """Labelled paths as a causal LM reads them: ``(ids, (path_label, step_targets))`` items of
    equal length, ids right-padded with ``-1``; ``step_targets`` hold 1/0 at each step's last
    token (counted from the start of the prompt) and ``NO_LABEL`` elsewhere."""

    def __init__(self, examples: Sequence[LabeledPath], encoded: Sequence[Encoded]) -> None:
        if not examples:
            raise ValueError("TokenDataset: no training examples")
        self.ids = pad([ids for ids, _, _ in encoded], -1)
        markers = [[start + m for m in path_markers] for _, start, path_markers in encoded]
        self.path_labels, self.step_targets = _targets(examples, markers, self.ids.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        return self.ids[index], (self.path_labels[index], self.step_targets[index])


def _targets(
    examples: Sequence[LabeledPath], markers: Sequence[Sequence[int]], length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's path label (1/0), and its step labels placed at its step markers in a
    ``(examples, length)`` tensor that holds ``NO_LABEL`` elsewhere."""
    path_labels = torch.tensor([float(ex.correct) for ex in examples])
    step_targets = torch.full((len(examples), length), NO_LABEL)
    for row, (positions, ex) in enumerate(zip(markers, examples, strict=True)):
        for position, label in zip(positions, ex.step_labels, strict=False):
            step_targets[row, position] = float(label)
    return path_labels, step_targets
