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
    seed: int = 0,
) -> GPT2LMHeadModel:
    """A GPT-2 sized to the tokenizer in directory ``tokenizer``, initialised from ``seed``."""
    vocab = PreTrainedTokenizerFast.from_pretrained(tokenizer)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=vocab.eos_token_id,
        eos_token_id=vocab.eos_token_id,
        pad_token_id=vocab.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


class TokenBlocks(Dataset):
    """The training problems as one token stream cut into ``(inputs, next tokens)`` blocks.

    The documents are concatenated ``passes`` times, each pass in a new order drawn with
    ``seed``, so a block's context holds earlier worked problems as a few-shot prompt does.
    """

    def __init__(
        self, problems: str, tokenizer: str, *, block_size: int = 192, passes: int = 2,
        seed: int = 0,
    ) -> None:  # fmt: skip
        vocab = PreTrainedTokenizerFast.from_pretrained(tokenizer)
        encoded = [vocab(document(p))["input_ids"] for p in read_problems(Path(problems))]
        rng = random.Random(seed)
        stream: list[int] = []
        for _ in range(passes):
            order = list(range(len(encoded)))
            rng.shuffle(order)
            for index in order:
                stream.extend(encoded[index])
        count = (len(stream) - 1) // block_size
        if count < 1:
            raise ValueError(f"TokenBlocks: {problems} holds fewer than {block_size + 1} tokens")
        self.tokens = torch.tensor(stream[: count * block_size + 1])
        self.block_size = block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = index * self.block_size
        block = self.tokens[start : start + self.block_size + 1]
        return block[:-1], block[1:]


def next_token_loss(outputs: object, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a causal LM's logits (``outputs.logits``) against the next tokens."""
    logits = outputs.logits  # type: ignore[attr-defined]
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


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
