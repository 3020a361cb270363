"""Reading a reasoning path through a frozen causal language model: per-token features.

For each token of a path (after a prompt holding the question) the model gives two numbers: the
log-probability it assigns that token, and the entropy of its prediction at that position (how
surprised, and how unsure, it was). A verifier built on them learns which surprises mark a
wrong step, much as DiVeRSe's and Cobbe et al.'s verifiers start from a pretrained model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

__all__ = [
    "NUM_FEATURES",
    "Encoded",
    "LMFeatures",
    "PathEncoder",
    "PathFeatures",
    "load_causal_lm",
]

NUM_FEATURES = 2
"""Features per token: log-probability of the token, entropy of the prediction."""


@attrs.frozen
class PathFeatures:
    """One path's features ``(tokens, NUM_FEATURES)`` and the index of each step's last token."""

    features: torch.Tensor
    markers: list[int]


def load_causal_lm(directory: Path, owner: str) -> tuple[Any, Any]:
    """The Hugging Face tokenizer and causal LM saved in ``directory`` (``save_pretrained``
    layout), through transformers' own loading code; a ValueError naming ``owner`` otherwise."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(directory), AutoModelForCausalLM.from_pretrained(
            directory
        )
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{owner}: cannot load a causal language model from {directory}: {exc}"
        ) from exc


Encoded = tuple[list[int], int, list[int]]
"""A (question, path) pair's ids (prompt then path), where the path starts, and the index in the
path of each step's last token."""


class PathEncoder:
    """Token ids of (question, steps) pairs as a causal LM reads them: the prompt, then the path.

    Args:
        tokenizer: the LM's tokenizer.
        prompt: the text before the path; ``{question}`` is replaced by the question.
        separator: the text after each step (the path is ``step1 + separator + step2 + ...``).
        max_length: most path tokens kept (later steps are cut); the prompt's head is cut
            where prompt and path together exceed ``context``.
        context: the LM's context length.
        pad_id: the id standing for an empty prompt.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        prompt: str,
        separator: str = "\n",
        max_length: int = 256,
        context: int,
        pad_id: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.separator = separator
        self.max_length = max_length
        self.context = context
        self.pad_id = pad_id

    @classmethod
    def for_model(
        cls, tokenizer: Any, model: Any, *, prompt: str, separator: str = "\n", max_length: int
    ) -> PathEncoder:
        """An encoder for ``model``'s context length and ``tokenizer``'s padding id."""
        context = getattr(model.config, "max_position_embeddings", None)
        pad = tokenizer.pad_token_id
        return cls(
            tokenizer,
            prompt=prompt,
            separator=separator,
            max_length=max_length,
            context=int(context) if context else max_length + 512,
            pad_id=int(pad if pad is not None else tokenizer.eos_token_id or 0),
        )

    def __call__(
        self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]
    ) -> list[Encoded]:
        """Each (question, steps) pair encoded (each prompt and step tokenized in one call)."""
        pieces = [
            [self.prompt.format(question=q), *(step + self.separator for step in steps)]
            for q, steps in zip(questions, step_lists, strict=True)
        ]
        ids = iter(self._ids([text for texts in pieces for text in texts]))
        return [self._encode(next(ids), [next(ids) for _ in texts[1:]]) for texts in pieces]

    def _encode(self, prompt: list[int], steps: Sequence[list[int]]) -> Encoded:
        prompt = prompt or [self.pad_id]
        path: list[int] = []
        markers: list[int] = []
        for step in steps:
            path.extend(step)
            markers.append(len(path) - 1)
        keep = max(1, min(self.max_length, self.context - 1))
        path = path[:keep]
        prompt = prompt[-max(1, self.context - len(path)) :]
        return prompt + path, len(prompt), [m for m in markers if m < len(path)]

    def _ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


class LMFeatures:
    """Per-token features of (question, steps) pairs from the causal LM in ``directory``.

    Args:
        directory: a Hugging Face causal LM and its tokenizer (``save_pretrained`` layout).
        prompt, separator, max_length: how a pair is read (see `PathEncoder`).
        batch_size: paths per forward pass.
        device: where the model runs.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        prompt: str,
        separator: str = "\n",
        max_length: int = 256,
        batch_size: int = 64,
        device: torch.device,
    ) -> None:
        self.directory = Path(directory)
        self.tokenizer, self.model = load_causal_lm(self.directory, "LMFeatures")
        self.model.eval().requires_grad_(False)
        self.model.to(device)
        self.encoder = PathEncoder.for_model(
            self.tokenizer, self.model, prompt=prompt, separator=separator, max_length=max_length
        )
        self.batch_size = batch_size
        self.device = device

    def __call__(
        self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]
    ) -> list[PathFeatures]:
        """The features of each (question, steps) pair, computed in length-sorted batches."""
        encoded = self.encoder(questions, step_lists)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        out: list[PathFeatures | None] = [None] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            for i, features in zip(rows, self._forward([encoded[i] for i in rows]), strict=True):
                out[i] = PathFeatures(features, encoded[i][2])
        return [item for item in out if item is not None]

    def _forward(self, batch: list[Encoded]) -> list[torch.Tensor]:
        longest = max(len(ids) for ids, _, _ in batch)
        ids = torch.full((len(batch), longest), self.encoder.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, (tokens, _, _) in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            log_probs = torch.log_softmax(logits.logits[:, :-1].float(), dim=-1)
            token = log_probs.gather(-1, ids[:, 1:, None].to(self.device)).squeeze(-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            both = torch.stack([token, entropy], dim=-1).cpu()
        # position j - 1 predicts token j: a path starting at `start` reads rows start-1..end-2
        return [
            both[row, start - 1 : len(tokens) - 1].clone()
            for row, (tokens, start, _) in enumerate(batch)
        ]
