"""A small language-model run shared by the tensor-parallel and pipeline tests.

Worker functions for :func:`_dist.run_ranks` build trainers through :func:`make_lm_trainer`,
so one process and several ranks train the very same problem.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
from plugins.ddp.trainer import Trainer

TP_PLAN = {
    "blocks.*.attn.q": "colwise",
    "blocks.*.attn.k": "colwise",
    "blocks.*.attn.v": "colwise",
    "blocks.*.attn.out": "rowwise",
    "blocks.*.mlp.fc": "colwise",
    "blocks.*.mlp.proj": "rowwise",
}
SEQUENCE_PARALLEL_PLAN = {  # activations between the blocks stay sharded along the sequence
    "embed": {
        "style": "prepare_output",
        "output_layouts": "replicate",
        "desired_output_layouts": "shard(1)",
    },
    "blocks.*.attn_norm": "sequence_parallel",
    "blocks.*.attn": {
        "style": "prepare_input",
        "input_layouts": ["shard(1)"],
        "desired_input_layouts": ["replicate"],
    },
    "blocks.*.attn.q": "colwise",
    "blocks.*.attn.k": "colwise",
    "blocks.*.attn.v": "colwise",
    "blocks.*.attn.out": {"style": "rowwise", "output_layouts": "shard(1)"},
    "blocks.*.mlp_norm": "sequence_parallel",
    "blocks.*.mlp": {
        "style": "prepare_input",
        "input_layouts": ["shard(1)"],
        "desired_input_layouts": ["replicate"],
    },
    "blocks.*.mlp.fc": "colwise",
    "blocks.*.mlp.proj": {"style": "rowwise", "output_layouts": "shard(1)"},
    "norm": "sequence_parallel",
    "head": {"style": "colwise", "input_layouts": "shard(1)", "output_layouts": "replicate"},
}


def make_lm() -> TransformerLM:
    """Four small blocks: enough to cut into stages and to shard by heads."""
    return TransformerLM(vocab_size=32, dim=32, n_layers=4, n_heads=4, max_seq_len=16)


def make_tokens(n_sequences: int = 64, sample_seed: int = 0) -> torch.utils.data.Dataset:
    """Sequences of 12 tokens from a fixed bigram chain."""
    return markov_tokens(n_sequences, seq_len=12, vocab_size=32, sample_seed=sample_seed)


def make_lm_trainer(
    *,
    strategy: Any,
    callbacks: tuple[Any, ...] = (),
    model: torch.nn.Module | None = None,
    **kwargs: Any,
) -> Trainer:
    """A trainer over ``model`` (default: a fresh :func:`make_lm` per fit) and
    :func:`make_tokens`; ``kwargs`` override the other defaults."""
    options: dict[str, Any] = {"batch_size": 8, "max_steps": 4, "grad_clip_norm": 0.5}
    options.update(kwargs)
    return Trainer(
        make_lm if model is None else model,
        options.pop("train_data", None) or make_tokens(),
        functools.partial(torch.optim.SGD, lr=0.5, momentum=0.9),
        strategy=strategy,
        loss_fn=lm_loss,
        callbacks=callbacks,
        **options,
    )
