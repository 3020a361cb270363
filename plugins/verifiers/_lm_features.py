"""Reading a reasoning path through a frozen causal language model: per-token features.

For each token of a path (after a prompt holding the question) the model gives two numbers: the
log-probability it assigns that token, and the entropy of its prediction at that position (how
surprised, and how unsure, it was). A verifier built on them learns which surprises mark a
wrong step, much as DiVeRSe's and Cobbe et al.'s verifiers start from a pretrained model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import torch

__all__ = ["NUM_FEATURES", "LMFeatures", "PathFeatures"]

NUM_FEATURES = 2
"""Features per token: log-probability of the token, entropy of the prediction."""


@attrs.frozen
class PathFeatures:
    """One path's features ``(tokens, NUM_FEATURES)`` and the index of each step's last token."""

    features: torch.Tensor
    markers: list[int]


class LMFeatures:
    """Per-token features of (question, steps) pairs from the causal LM in ``directory``.

    Args:
        directory: a Hugging Face causal LM and its tokenizer (``save_pretrained`` layout).
        prompt: the text before the path; ``{question}`` is replaced by the question.
        separator: the text after each step (the path is ``step1 + separator + step2 + ...``).
        max_length: most path tokens read (later steps are cut); the prompt's head is cut
            where prompt and path together exceed the model's context.
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
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.directory = Path(directory)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.directory)
            self.model = AutoModelForCausalLM.from_pretrained(self.directory)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"LMFeatures: cannot load a causal language model from {self.directory}: {exc}"
            ) from exc
        self.model.eval().requires_grad_(False)
        self.model.to(device)  # type: ignore[arg-type]  # transformers types .to() oddly
        self.prompt = prompt
        self.separator = separator
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        context = getattr(self.model.config, "max_position_embeddings", None)
        self.context = int(context) if context else max_length + 512
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.tokenizer.eos_token_id or 0)

    def __call__(
        self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]
    ) -> list[PathFeatures]:
        """The features of each (question, steps) pair, computed in length-sorted batches."""
        pieces = [  # each prompt and step, tokenized in one call
            [self.prompt.format(question=q), *(step + self.separator for step in steps)]
            for q, steps in zip(questions, step_lists, strict=True)
        ]
        ids = iter(self._ids([text for texts in pieces for text in texts]))
        encoded = [self._encode(next(ids), [next(ids) for _ in texts[1:]]) for texts in pieces]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        out: list[PathFeatures | None] = [None] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            for i, features in zip(rows, self._forward([encoded[i] for i in rows]), strict=True):
                out[i] = PathFeatures(features, encoded[i][2])
        return [item for item in out if item is not None]

    def _encode(
        self, prompt: list[int], steps: Sequence[list[int]]
    ) -> tuple[list[int], int, list[int]]:
        """(prompt + path ids, where the path starts, each step's last path-token index)."""
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

    def _forward(self, batch: list[tuple[list[int], int, list[int]]]) -> list[torch.Tensor]:
        longest = max(len(ids) for ids, _, _ in batch)
        ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
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
