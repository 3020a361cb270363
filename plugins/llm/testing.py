"""Helpers for tests and examples: a tiny GPT-2 model built offline, and a local server.

``make_tiny_model`` trains a byte-level BPE tokenizer on a small corpus with ``tokenizers`` and
saves it with a randomly initialised GPT-2 (no download). ``serve`` runs the OpenAI-compatible
server on 127.0.0.1 for the duration of a ``with`` block; ``FaultPlan`` says which requests it
fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plugins.llm._faults import FaultPlan
from plugins.llm._types import LLM

__all__ = ["FaultPlan", "make_tiny_model", "serve"]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<pad>"

_DEFAULT_CORPUS = [
    "Question: Tom has 3 apples and buys 4 more. How many apples does he have?",
    "Answer: Tom starts with 3 apples. 3 + 4 = 7. The answer is 7.",
    "Question: Is the statement true? The sky is green. Answer: False.",
    "Rewrite the statement as a question. Statement: the movie was great.",
    "Question: was the movie great? Answer: yes.",
    "Context: the train leaves at 5 pm. Question: when does the train leave? Answer: 5 pm.",
    "0 1 2 3 4 5 6 7 8 9 + - * / = ( ) . , ? ! : ; ' \" \n",
]


def make_tiny_model(
    directory: str | os.PathLike[str],
    *,
    vocab_size: int = 384,
    corpus: Iterable[str] | None = None,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 2,
    n_positions: int = 512,
    seed: int = 0,
) -> Path:
    """Save a tiny random GPT-2 and its tokenizer to ``directory``; return the directory.

    The tokenizer is byte-level BPE (any text round-trips) trained on ``corpus`` (a built-in
    sample of arithmetic and question-answering text by default) up to ``vocab_size`` tokens,
    with ``<|endoftext|>`` as end of sequence and ``<pad>`` for padding. Loadable with
    ``AutoModelForCausalLM``/``AutoTokenizer`` and `plugins.llm.transformers_backend`.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus) if corpus is not None else _DEFAULT_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, padding_side="left"
    )
    tokenizer.save_pretrained(directory)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@contextmanager
def serve(llm: LLM, **options: Any) -> Iterator[str]:
    """Serve ``llm`` on 127.0.0.1 (a free port) while the block runs; yield its base URL.

    ``options`` go to `plugins.llm.server.LLMServer` (``faults``, ``model_name``, ...).
    """
    from plugins.llm.server import LLMServer

    with LLMServer(llm, **options) as server:
        yield server.base_url
