"""``verifiers/value_head``: a verifier that reads the text, the causal LM itself with a value head.

As in Cobbe et al. and DiVeRSe's reference code, a pretrained model (here a Hugging Face causal
LM, for example the reasoner that wrote the paths, loaded through ``transformers``) reads
``prompt(question) + path`` and a linear head on its last hidden states gives, at the path's
last token, P(path correct) and, at each step's last token, P(step correct). The whole model is
fine-tuned with the ddp Trainer on DiVeRSe's step-aware loss (`VerifierLoss`); a saved verifier
holds the fine-tuned LM (``save_pretrained`` layout) and the head.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plugins.verifiers._data import TokenDataset, pad
from plugins.verifiers._files import (
    FORMAT,
    load_weights,
    read_verifier_config,
    saved_splitter,
    splitter_spec,
    write_directory,
)
from plugins.verifiers._lm_features import Encoded, PathEncoder, load_causal_lm
from plugins.verifiers._model import StepWeighting, VerifierLoss, check_step_weighting
from plugins.verifiers.labels import LabeledPath
from plugins.verifiers.lm_verifier import DEFAULT_PROMPT
from plugins.verifiers.parsing import StepSplitter
from plugins.verifiers.verifier import best_device, default_trainer, train_verifier

__all__ = ["ValueHeadNet", "ValueHeadVerifier"]


class ValueHeadNet(nn.Module):
    """A causal LM with a linear value head (path and step logits) on its last hidden states.

    ``forward(ids)`` takes ``(batch, length)`` token ids right-padded with ``-1`` and returns
    ``(path_logits (batch,), step_logits (batch, length))``: the path logit read at each row's
    last token (the only one that has seen the whole path), the step logits at every position.
    """

    lm: Any
    """The causal LM (a transformers ``PreTrainedModel``; its ``base_model`` is read)."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.lm = lm
        self.head = nn.Linear(int(lm.config.hidden_size), 2)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real = ids >= 0
        # the base model (no vocabulary projection): its last hidden states
        out = self.lm.base_model(input_ids=ids.clamp(min=0), attention_mask=real.long())
        values = self.head(out.last_hidden_state).float()
        last = real.sum(dim=1) - 1
        return values[torch.arange(len(ids), device=ids.device), last, 0], values[..., 1]


class ValueHeadVerifier:
    """P(correct) of a (question, path) and of each step, from a fine-tuned LM with a value head.

    Args:
        backbone: directory of a Hugging Face causal LM and its tokenizer (``save_pretrained``
            layout); it is copied and fine-tuned, never changed on disk.
        alpha: weight of a step label against a path label (DiVeRSe: 0.1); 0: path labels only.
        step_weighting: ``"reference"`` or ``"per_path"`` (see `VerifierLoss`).
        prompt: the text the LM reads before the path (``{question}`` is filled in).
        splitter: splits a path into steps (default `StepSplitter`, one step per line); steps
            are fed to the LM each followed by a newline.
        max_length: most path tokens read.
        trainer: called as ``trainer(model=, train_data=, loss_fn=)``; a ``ddp/trainer``
            partial in configs, `default_trainer` when omitted.
        batch_size: paths per forward pass when scoring.
        device: where scoring runs (``None``: CUDA when available, else CPU).
        seed: seeds the value head's initial weights.
    """

    def __init__(
        self,
        backbone: str | Path,
        *,
        alpha: float = 0.1,
        step_weighting: StepWeighting = "reference",
        prompt: str = DEFAULT_PROMPT,
        splitter: Callable[[str], list[str]] | None = None,
        max_length: int = 256,
        trainer: Callable[..., Any] = default_trainer,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"ValueHeadVerifier: alpha must be >= 0, got {alpha}")
        check_step_weighting(step_weighting, "ValueHeadVerifier")
        if "{question}" not in prompt:
            raise ValueError(
                f"ValueHeadVerifier: prompt must contain '{{question}}', got {prompt!r}"
            )
        self.backbone = Path(backbone)
        self.alpha = alpha
        self.step_weighting = step_weighting
        self.prompt = prompt
        self.splitter = splitter if splitter is not None else StepSplitter()
        self.max_length = max_length
        self.trainer = trainer
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else best_device()
        self.seed = seed
        self.model: ValueHeadNet | None = None
        self._encoder: PathEncoder | None = None

    def fit(
        self,
        examples: Sequence[LabeledPath],
        *,
        val_examples: Sequence[LabeledPath] | None = None,
    ) -> dict[str, float]:
        """Fine-tune the backbone and the head on labelled paths; return the final metrics."""
        if not examples:
            raise ValueError("ValueHeadVerifier.fit: no training examples")
        self._build(self.backbone)
        assert self.model is not None
        train = TokenDataset(examples, self._encode_examples(examples))
        val = (
            TokenDataset(val_examples, self._encode_examples(val_examples))
            if val_examples
            else None
        )
        loss = VerifierLoss(self.alpha, self.step_weighting)
        return train_verifier(self.trainer, self.model, train, val, loss, self.device)

    def score(self, questions: Sequence[str], paths: Sequence[str]) -> list[float]:
        """P(correct) in [0, 1] for each (question, path), computed in length-sorted batches."""
        if len(questions) != len(paths):
            raise ValueError(
                f"ValueHeadVerifier.score: {len(questions)} questions but {len(paths)} paths"
            )
        model, encoder = self._trained("score")
        encoded = encoder(questions, [self.splitter(p) for p in paths])
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        scores = [0.0] * len(encoded)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                path_logits, _ = model(self._batch([encoded[i] for i in rows]))
                for i, value in zip(rows, torch.sigmoid(path_logits).tolist(), strict=True):
                    scores[i] = value
        return scores

    def score_steps(self, question: str, path: str) -> list[float]:
        """P(correct so far) in [0, 1] at each step of ``path``."""
        model, encoder = self._trained("score_steps")
        steps = self.splitter(path)
        ((ids, start, markers),) = encoder([question], [steps])
        if len(markers) < len(steps):
            raise ValueError(
                f"ValueHeadVerifier.score_steps: only {len(markers)} of {len(steps)} steps fit in "
                f"max_length={self.max_length} tokens"
            )
        with torch.inference_mode():
            _, step_logits = model(self._batch([(ids, start, markers)]))
        return torch.sigmoid(step_logits[0, [start + m for m in markers]]).tolist()

    def save(self, directory: str | Path) -> Path:
        """Write ``verifier.json``, the fine-tuned LM and tokenizer (``backbone/``) and the head
        (``model.pt``) to ``directory`` atomically; under torchrun only rank 0 writes."""
        model, encoder = self._trained("save")
        if int(os.environ.get("RANK", "0")) != 0:
            return Path(directory).resolve()
        config = {
            "format": FORMAT,
            "class": type(self).__name__,
            "prompt": self.prompt,
            "options": {
                "alpha": self.alpha,
                "step_weighting": self.step_weighting,
                "max_length": self.max_length,
            },
            "splitter": splitter_spec(self.splitter),
        }
        head = {key: value.cpu() for key, value in model.head.state_dict().items()}

        def write(tmp: Path) -> None:
            (tmp / "verifier.json").write_text(json.dumps(config, indent=1))
            model.lm.save_pretrained(tmp / "backbone")
            encoder.tokenizer.save_pretrained(tmp / "backbone")
            torch.save(head, tmp / "model.pt")

        return write_directory(Path(directory), write)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        splitter: Callable[[str], list[str]] | None = None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
    ) -> ValueHeadVerifier:
        """A verifier saved by :meth:`save`; ``splitter`` replaces the saved one."""
        directory = Path(directory)
        config = read_verifier_config(directory, cls.__name__)
        verifier = cls(
            directory / "backbone",
            prompt=config["prompt"],
            splitter=saved_splitter(config, splitter, directory, cls.__name__),
            batch_size=batch_size,
            device=device,
            **config["options"],
        )
        verifier._build(directory / "backbone")
        assert verifier.model is not None
        load_weights(verifier.model.head, directory, cls.__name__)
        verifier.model.to(verifier.device).eval()
        return verifier

    def _build(self, backbone: Path) -> None:
        tokenizer, lm = load_causal_lm(backbone, "ValueHeadVerifier")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model = ValueHeadNet(lm)
        self._encoder = PathEncoder.for_model(
            tokenizer, lm, prompt=self.prompt, max_length=self.max_length
        )

    def _encode_examples(self, examples: Sequence[LabeledPath]) -> list[Encoded]:
        _, encoder = self._trained("fit")
        return encoder([ex.question for ex in examples], [list(ex.steps) for ex in examples])

    def _batch(self, encoded: Sequence[Encoded]) -> torch.Tensor:
        return pad([ids for ids, _, _ in encoded], -1).to(self.device)

    def _trained(self, action: str) -> tuple[ValueHeadNet, PathEncoder]:
        if self.model is None or self._encoder is None:
            raise RuntimeError(
                f"ValueHeadVerifier.{action}: the verifier is not trained; call fit() or load()"
            )
        return self.model, self._encoder

    def __repr__(self) -> str:
        state = "trained" if self.model is not None else "untrained"
        return f"ValueHeadVerifier({state}, backbone={str(self.backbone)!r}, alpha={self.alpha})"
