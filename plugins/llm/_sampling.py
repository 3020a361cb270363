"""Decoding pieces for `TransformersLLM`: per-sample seeds, the token chooser, the stop check.

Sampling is done by our own chooser with one random generator per row, seeded from
(seed, prompt, sample index). A row's draws therefore depend neither on the other rows of its
batch nor on the batch size, so a cached or resumed run samples what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import PreTrainedTokenizerBase


def row_seed(seed: int, prompt: str, index: int) -> int:
    """A 63-bit seed for sample ``index`` of ``prompt`` under the call's ``seed``."""
    digest = hashlib.blake2b(f"{seed}\0{index}\0{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class TokenChooser:
    """Picks each row's next token (argmax, or a seeded top-p draw) with its log-probability.

    Log-probabilities are those of the model's unmodified distribution (temperature 1, no
    top-p). ``seeds`` (one per row of the batch) make the draws; None means greedy.
    """

    def __init__(self, temperature: float, top_p: float, seeds: list[int] | None) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators: list[torch.Generator] | None = None
        if seeds is not None:
            self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(
        self, logits: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next token of each of ``rows`` (batch row indices) from its ``logits``."""
        if self.generators is None:
            chosen = logits.argmax(dim=-1)
        else:
            chosen = self._draw(logits, [self.generators[row] for row in rows.tolist()])
        logprobs = logits.log_softmax(dim=-1).gather(1, chosen[:, None])[:, 0]
        return chosen, logprobs

    def _draw(self, logits: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Inverse-CDF sampling over the top-p nucleus of ``softmax(logits / temperature)``."""
        probs = (logits / self.temperature).softmax(dim=-1)
        order = None
        if self.top_p < 1.0:  # keep the smallest set of likeliest tokens holding top_p mass
            probs, order = probs.sort(dim=-1, descending=True)
            probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= self.top_p, 0.0)
        cdf = probs.cumsum(dim=-1)
        uniforms = torch.cat([torch.rand(1, generator=g) for g in generators])
        targets = (uniforms.to(cdf.device) * cdf[:, -1])[:, None]
        picks = torch.searchsorted(cdf, targets, right=True).clamp_(max=cdf.shape[-1] - 1)
        return picks[:, 0] if order is None else order.gather(1, picks)[:, 0]


class StopWatcher:
    """Ends a row at its end-of-sequence token or when a stop string appears in its text.

    ``by_eos`` holds the rows whose last token was an end-of-sequence token.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, eos_ids: set[int], stop: list[str]
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.stop = [s for s in stop if s]
        # A stop string of c characters spans at most 4c byte-level tokens (+1 for a partial one).
        self.window = 4 * max((len(s) for s in self.stop), default=0) + 1
        self.by_eos: set[int] = set()

    def __call__(self, row: int, tokens: list[int]) -> bool:
        """Whether ``row``, having generated ``tokens``, has ended."""
        if tokens[-1] in self.eos_ids:
            self.by_eos.add(row)
            return True
        return self._has_stop(tokens)

    def _has_stop(self, tokens: list[int]) -> bool:
        if not self.stop:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stop)
