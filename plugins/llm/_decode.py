"""Incremental decoding for `TransformersLLM`: each prompt is read once, its rows then decode on.

A batch holds rows (prompt x sample). ``decode`` runs the model once over the distinct prompts
(left-padded), copies each prompt's key/value cache to its rows, then feeds one token per row
and step. A row that has finished leaves the batch, so the steps that follow cost only what
is still being written. What a row generates depends only on its prompt and on its chooser's
draws, never on the other rows (the same logic Hugging Face's ``generate`` runs, minus the
repeated prompt reading and the finished rows it keeps computing).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import attrs
import torch
from transformers import DynamicCache, PreTrainedModel

__all__ = ["Decoded", "decode"]

Choose = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(logits [rows, vocab], row indices) -> (tokens [rows], log-probabilities [rows])``."""
Finished = Callable[[int, list[int]], bool]
"""``(row index, the row's tokens so far) -> whether the row has ended``."""


@attrs.frozen
class Decoded:
    """What one row generated: its tokens, their log-probabilities, and whether it ended
    (``finished``) before running out of ``max_new_tokens``."""

    tokens: list[int]
    logprobs: list[float]
    finished: bool


def decode(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    row_prompts: Sequence[int],
    *,
    choose: Choose,
    finished: Finished,
    max_new_tokens: int,
) -> list[Decoded]:
    """Generate for each row ``r`` a continuation of the prompt in row ``row_prompts[r]`` of
    ``input_ids`` (the distinct prompts, left-padded, with their ``attention_mask``).

    ``choose`` picks the next token of each row still being written; ``finished`` tells when a
    row has ended. Rows stop after ``max_new_tokens`` tokens at most.
    """
    device = input_ids.device
    cache_keyword, prompt_keywords, takes_positions = _keywords(model)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)  # left padding: 0 onwards
    cache = _new_cache(model)
    with torch.inference_mode():
        outputs = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=True,
            **({"position_ids": positions} if takes_positions else {}),
            **{cache_keyword: cache},
            **prompt_keywords,
        )
        expand = torch.as_tensor(row_prompts, dtype=torch.long, device=device)
        cache.batch_select_indices(expand)
        logits = outputs.logits[expand, -1].float()
        mask = attention_mask[expand]
        position = positions[expand, -1:] + 1
        active = torch.arange(len(row_prompts), device=device)
        generated: list[list[int]] = [[] for _ in row_prompts]
        logprobs: list[list[float]] = [[] for _ in row_prompts]
        ended = [False] * len(row_prompts)
        for step in range(max_new_tokens):
            tokens, chosen_logprobs = choose(logits, active)
            keep = []
            for slot, (row, token, logprob) in enumerate(
                zip(active.tolist(), tokens.tolist(), chosen_logprobs.tolist(), strict=True)
            ):
                generated[row].append(token)
                logprobs[row].append(logprob)
                ended[row] = finished(row, generated[row])
                if not ended[row]:
                    keep.append(slot)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(active):
                kept = torch.as_tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(kept)
                active, tokens, mask, position = (
                    active[kept],
                    tokens[kept],
                    mask[kept],
                    position[kept],
                )
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            outputs = model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                use_cache=True,
                **({"position_ids": position} if takes_positions else {}),
                **{cache_keyword: cache},
            )
            position = position + 1
            logits = outputs.logits[:, -1].float()
    return [Decoded(*row) for row in zip(generated, logprobs, ended, strict=True)]


def _new_cache(model: PreTrainedModel) -> DynamicCache:
    """An empty cache laid out for ``model`` (transformers >= 4.56 reads its config: sliding
    windows and the like)."""
    if "config" in inspect.signature(DynamicCache).parameters:
        return DynamicCache(config=model.config)
    return DynamicCache()


def _keywords(model: PreTrainedModel) -> tuple[str, dict[str, int], bool]:
    """How ``model.forward`` is called: the name it takes its cache by (``cache`` in
    transformers 5, before that ``past_key_values``); ``logits_to_keep=1`` for the prompt pass
    where it takes that (no logits for the prompt's other tokens); whether it takes
    ``position_ids`` (models with relative positions, such as ALiBi's, do not)."""
    parameters = inspect.signature(model.forward).parameters
    cache_keyword = "cache" if "cache" in parameters else "past_key_values"
    takes_positions = "position_ids" in parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in parameters:
            return cache_keyword, {name: 1}, takes_positions
    return cache_keyword, {}, takes_positions
