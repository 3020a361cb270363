"""`TransformersLLM`: a local Hugging Face causal LM, generating in left-padded batches."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from plugins.llm._chunks import chunks
from plugins.llm._decode import decode
from plugins.llm._sampling import StopWatcher, TokenChooser, row_seed
from plugins.llm._text import cut_at_stop
from plugins.llm._types import Completion, check_parameters

logger = logging.getLogger(__name__)


def best_device() -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class TransformersLLM:
    """Generates from a model directory (``AutoModelForCausalLM`` + ``AutoTokenizer``).

    ``batch_size`` counts rows (prompt x sample) per forward pass. Greedy output for a prompt is
    the same whatever else is in its batch; sampled output depends only on (seed, prompt,
    sample index). ``dtype`` (e.g. ``"bfloat16"``) defaults to float32; ``device`` to the best one.
    A prompt the model cannot take (empty, or too long for its positions with
    ``max_new_tokens``) gets an empty list, is counted in ``failures`` and logged at WARNING:
    one bad prompt never fails the whole batch.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"llm/transformers: batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model).resolve()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"llm/transformers: no model directory (config.json) at {self.model_dir}"
            )
        self.device = torch.device(device) if device is not None else best_device()
        self.dtype = dtype or "float32"
        torch_dtype = getattr(torch, self.dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"llm/transformers: dtype {dtype!r} is not a torch dtype name")
        self.batch_size = batch_size
        self.failures = 0
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        loaded: Any = AutoModelForCausalLM.from_pretrained(self.model_dir)
        self.model = loaded.to(device=self.device, dtype=torch_dtype).eval()
        files = sorted(p for p in self.model_dir.iterdir() if p.is_file())
        self._fingerprint = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        self._eos_ids = _eos_ids(self.model.generation_config, self.tokenizer.eos_token_id)
        self._max_positions = getattr(self.model.config, "max_position_embeddings", None)

    def __repr__(self) -> str:
        return (
            f"TransformersLLM(model={str(self.model_dir)!r}, device={str(self.device)!r}, "
            f"dtype={self.dtype!r})"
        )

    @property
    def identity(self) -> dict[str, Any]:
        """What makes this backend's outputs what they are (the cache keys on it): the model
        directory, the dtype, and the name, size and time of each file it held when loaded."""
        return {
            "backend": "transformers",
            "model": str(self.model_dir),
            "dtype": self.dtype,
            "files": self._fingerprint,
        }

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """Generate ``n`` completions for each prompt (see `plugins.llm.LLM`)."""
        check_parameters(n, temperature, top_p, max_new_tokens)
        if not prompts:
            return []
        greedy = temperature == 0.0
        base_seed = secrets.randbits(63) if seed is None else seed
        # A row is (prompt index, sample index); greedy samples are all the same, so draw one.
        rows = [(i, j) for i in range(len(prompts)) for j in range(1 if greedy else n)]
        lengths = [len(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        refused = self._refuse_unfit(lengths, max_new_tokens)
        rows = [row for row in rows if row[0] not in refused]
        rows.sort(key=lambda row: -lengths[row[0]])  # similar lengths together: less padding
        results: dict[tuple[int, int], Completion] = {}
        for batch in chunks(rows, self.batch_size):
            seeds = None if greedy else [row_seed(base_seed, prompts[i], j) for i, j in batch]
            chooser = TokenChooser(temperature, top_p, seeds)
            completions = self._generate_batch(
                prompts, [i for i, _ in batch], chooser, max_new_tokens, stop or []
            )
            results.update(zip(batch, completions, strict=True))
        if greedy:
            return [[] if i in refused else [results[(i, 0)]] * n for i in range(len(prompts))]
        return [
            [] if i in refused else [results[(i, j)] for j in range(n)] for i in range(len(prompts))
        ]

    def _generate_batch(
        self,
        prompts: list[str],
        row_prompts: list[int],
        chooser: TokenChooser,
        max_new_tokens: int,
        stop: list[str],
    ) -> list[Completion]:
        """One completion per row; row ``r`` continues ``prompts[row_prompts[r]]``."""
        distinct = list(dict.fromkeys(row_prompts))  # each prompt is read once for all its rows
        encoded = self.tokenizer(
            [prompts[i] for i in distinct], return_tensors="pt", padding=True
        ).to(self.device)
        slot = {prompt_index: slot for slot, prompt_index in enumerate(distinct)}
        watcher = StopWatcher(self.tokenizer, self._eos_ids, stop)
        decoded = decode(
            self.model,
            encoded["input_ids"],
            encoded["attention_mask"],
            [slot[i] for i in row_prompts],
            choose=chooser,
            finished=watcher,
            max_new_tokens=max_new_tokens,
        )
        completions = []
        for row, generated in enumerate(decoded):
            tokens = generated.tokens
            text_tokens = tokens[:-1] if row in watcher.by_eos else tokens  # no EOS in the text
            text, _ = cut_at_stop(
                str(self.tokenizer.decode(text_tokens, skip_special_tokens=True)), stop
            )
            reason = "stop" if generated.finished else "length"
            completions.append(Completion(text, generated.logprobs, reason))
        return completions

    def _refuse_unfit(self, lengths: list[int], max_new_tokens: int) -> set[int]:
        """Indices of prompts the model cannot take; each is counted and logged."""
        refused = set()
        for index, length in enumerate(lengths):
            if length == 0:
                reason = "encodes to no tokens"
            elif self._max_positions and length + max_new_tokens > self._max_positions:
                reason = (
                    f"has {length} tokens; with max_new_tokens={max_new_tokens} it exceeds the "
                    f"model's {self._max_positions} positions"
                )
            else:
                continue
            refused.add(index)
            logger.warning("llm/transformers (%s): prompt %d %s", self.model_dir, index, reason)
        self.failures += len(refused)
        return refused


def _eos_ids(generation_config: GenerationConfig, tokenizer_eos: int | None) -> set[int]:
    configured = generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer_eos)
    return {i for i in ids if i is not None}
