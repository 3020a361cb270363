"""The reasoner's parts: a locally trained tokenizer, a tiny GPT-2, its data, loss and schedule.

Everything is built here from the training problems (no download). The text format is the one
DiVeRSe prompts use: ``Question: ...\\nAnswer:\\n<one step per line>\\nThe answer is N.\\n\\n``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from examples.reasoning.data import read_problems
from examples.reasoning.problems import Problem

__all__ = [
    "EXEMPLAR_FORMAT",
    "QUERY_FORMAT",
    "TokenBlocks",
    "build_tokenizer",
    "next_token_loss",
    "tiny_gpt",
    "warmup_then_decay",
]

EOS = "<|endoftext|>"
IGNORE = -100
"""Target of a position left out of the loss."""
QUERY_FORMAT = "Question: {question}\nAnswer:\n"
EXEMPLAR_FORMAT = QUERY_FORMAT + "{solution}\n\n"


def document(problem: Problem) -> str:
    """One problem as training text (an exemplar, as it appears in prompts)."""
    return EXEMPLAR_FORMAT.format(question=problem.question, solution=problem.solution)


def build_tokenizer(problems: Sequence[Problem], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``problems``; digits always stay single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([document(p) for p in problems], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS)


def tiny_gpt(
    tokenizer: str,
    *,
    n_layer: int = 4,
    n_embd: int = 96,
    n_head: int = 4,
    n_positions: int = 256,
    dropout: float = 0.1,
    seed: int = 0,
) -> GPT2LMHeadModel:
    """A GPT-2 sized to the tokenizer in directory ``tokenizer``, initialised from ``seed``;
    ``dropout`` applies to embeddings, attention and residuals (GPT-2's default 0.1)."""
    vocab = PreTrainedTokenizerFast.from_pretrained(tokenizer)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=vocab.eos_token_id,
        eos_token_id=vocab.eos_token_id,
        pad_token_id=vocab.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


class TokenBlocks(Dataset):
    """The training problems packed into blocks of ``block_size`` tokens, as few-shot prompts.

    Each block starts at a problem and holds whole problems (drawn in an order seeded by
    ``seed``, ``passes`` times over the split), right-padded: every problem after the first
    sits where a query sits after its exemplars in a prompt. Items are ``(inputs, targets)``,
    targets being the next tokens, ``IGNORE`` on padding and, with ``solutions_only``, on the
    question part of each problem (the model learns to solve, not to make up questions).
    """

    def __init__(
        self,
        problems: str,
        tokenizer: str,
        *,
        block_size: int = 160,
        passes: int = 1,
        solutions_only: bool = True,
        seed: int = 0,
    ) -> None:
        vocab = PreTrainedTokenizerFast.from_pretrained(tokenizer)
        backend = vocab.backend_tokenizer  # batch encoding without transformers' per-item work
        loaded = read_problems(Path(problems))
        encoded = [e.ids for e in backend.encode_batch([document(p) for p in loaded])]
        hidden = [0] * len(loaded)  # leading tokens left out of the loss: the question part
        if solutions_only:
            queries = [QUERY_FORMAT.format(question=p.question) for p in loaded]
            hidden = [len(e.ids) for e in backend.encode_batch(queries)]
        self.pad_id = vocab.pad_token_id
        self.block_size = block_size
        rng = random.Random(seed)
        blocks: list[tuple[list[int], list[int]]] = []
        tokens: list[int] = []
        targets: list[int] = []
        for _ in range(passes):
            order = list(range(len(encoded)))
            rng.shuffle(order)
            for index in order:
                ids = encoded[index]
                if len(ids) > block_size:
                    raise ValueError(
                        f"TokenBlocks: problem {index} of {problems} has {len(ids)} tokens, "
                        f"more than block_size={block_size}"
                    )
                if len(tokens) + len(ids) > block_size:
                    blocks.append((tokens, targets))
                    tokens, targets = [], []
                tokens.extend(ids)
                targets.extend([IGNORE] * hidden[index])
                targets.extend(ids[hidden[index] :])
        blocks.append((tokens, targets))
        self.inputs = torch.full((len(blocks), block_size), self.pad_id)
        self.targets = torch.full((len(blocks), block_size), IGNORE)
        for row, (ids, wanted) in enumerate(blocks):
            self.inputs[row, : len(ids)] = torch.tensor(ids)
            self.targets[row, : len(wanted) - 1] = torch.tensor(wanted[1:])

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]


def next_token_loss(outputs: object, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a causal LM's logits (``outputs.logits``) against the next tokens
    (``IGNORE`` targets left out)."""
    logits = outputs.logits  # type: ignore[attr-defined]
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def warmup_then_decay(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, floor: float = 0.05
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``floor`` x the peak rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
