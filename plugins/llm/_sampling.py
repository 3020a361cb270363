"""Decoding pieces for `TransformersLLM`: per-sample seeds, the token chooser, the stop check.

Sampling is done by our own logits processor with one random generator per row, seeded from
(seed, prompt, sample index). A row's draws therefore depend neither on the other rows of its
batch nor on the batch size, so a cached or resumed run samples what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, StoppingCriteria


def row_seed(seed: int, prompt: str, index: int) -> int:
    """A 63-bit seed for sample ``index`` of ``prompt`` under the call's ``seed``."""
    digest = hashlib.blake2b(f"{seed}\0{index}\0{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class TokenChooser(LogitsProcessor):
    """Picks each row's next token (argmax, or a seeded top-p draw) and records its log-prob.

    The returned scores are 0 at the chosen token and -inf elsewhere, so ``generate`` run
    greedily follows the choice. Log-probabilities are those of the model's unmodified
    distribution (temperature 1, no top-p), one per step in ``logprobs``.
    """

    def __init__(self, temperature: float, top_p: float, seeds: list[int] | None) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators: list[torch.Generator] | None = None
        if seeds is not None:
            self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float()
        if self.generators is None:
            chosen = logits.argmax(dim=-1)
        else:
            chosen = self._draw(logits, self.generators)
        self.logprobs.append(logits.log_softmax(dim=-1).gather(1, chosen[:, None])[:, 0].cpu())
        choice = torch.full_like(scores, float("-inf"))
        return choice.scatter_(1, chosen[:, None], 0.0)

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


class StopWatcher(StoppingCriteria):
    """Ends a row at its end-of-sequence token or when a stop string appears in its text.

    ``lengths[i]`` is the number of tokens row ``i`` generated until it ended (None: it ran to
    ``max_new_tokens``); ``by_eos[i]`` tells whether its last one was an end-of-sequence token.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompt_length: int,
        eos_ids: set[int],
        stop: list[str],
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.eos_ids = eos_ids
        self.stop = [s for s in stop if s]
        # A stop string of c characters spans at most 4c byte-level tokens (+1 for a partial one).
        self.window = 4 * max((len(s) for s in self.stop), default=0) + 1
        self.lengths: list[int | None] = []
        self.by_eos: list[bool] = []

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object
    ) -> torch.Tensor:
        if not self.lengths:
            self.lengths = [None] * input_ids.shape[0]
            self.by_eos = [False] * input_ids.shape[0]
        generated = input_ids[:, self.prompt_length :].tolist()
        for row, tokens in enumerate(generated):
            if self.lengths[row] is not None:
                continue
            self.by_eos[row] = tokens[-1] in self.eos_ids
            if self.by_eos[row] or self._has_stop(tokens):
                self.lengths[row] = len(tokens)
        done = [length is not None for length in self.lengths]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _has_stop(self, tokens: list[int]) -> bool:
        if not self.stop:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stop)
