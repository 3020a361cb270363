"""Verifiers (registry group ``verifiers``): P(correct) of a reasoning path, and of each step.

``StepAwareVerifier`` is DiVeRSe's step-aware verifier (path BCE and alpha-weighted step BCE);
``PathVerifier`` learns from path labels only. Both are small transformer encoders over a local
tokenizer, trained with the ddp ``Trainer`` (any strategy) and saved to / loaded from a
directory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from plugins.verifiers._data import VerifierDataset, encode, pad
from plugins.verifiers._files import (
    load_weights,
    read_verifier_config,
    save_verifier,
    saved_splitter,
    splitter_spec,
)
from plugins.verifiers._model import StepWeighting, VerifierLoss, VerifierNet, check_step_weighting
from plugins.verifiers._tokenizer import PAD, WordTokenizer
from plugins.verifiers.labels import LabeledPath
from plugins.verifiers.parsing import StepSplitter

__all__ = ["PathVerifier", "StepAwareVerifier", "StepVerifier", "Verifier", "default_trainer"]

_Self = TypeVar("_Self", bound="_NeuralVerifier")


@runtime_checkable
class Verifier(Protocol):
    """Scores reasoning paths: ``score`` gives P(correct) in [0, 1] for each (question, path)."""

    def score(self, questions: Sequence[str], paths: Sequence[str]) -> list[float]:
        """One score per (question, path) pair."""
        ...


@runtime_checkable
class StepVerifier(Verifier, Protocol):
    """A verifier that also scores each step of a path (DiVeRSe's step-aware variant)."""

    def score_steps(self, question: str, path: str) -> list[float]:
        """One score in [0, 1] per step of ``path``."""
        ...


def default_trainer(**kwargs: Any) -> Any:
    """The ddp ``Trainer`` with AdamW (lr 1e-3), batch size 32 and 10 epochs by default;
    ``kwargs`` (model, train_data, loss_fn, and any override) go to the Trainer."""
    from plugins.ddp.trainer import Trainer

    options: dict[str, Any] = {
        "optimizer": functools.partial(torch.optim.AdamW, lr=1e-3),
        "batch_size": 32,
        "max_epochs": 10,
    }
    return Trainer(**{**options, **kwargs})


class _NeuralVerifier:
    """The shared machinery: tokenizer, network, training, batched scoring, save/load."""

    _alpha: float
    _step_weighting: StepWeighting = "reference"

    def __init__(
        self,
        *,
        splitter: Callable[[str], list[str]] | None = None,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        max_length: int = 512,
        min_token_count: int = 1,
        trainer: Callable[..., Any] = default_trainer,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        self.splitter = splitter if splitter is not None else StepSplitter()
        self.max_length = max_length
        self.options: dict[str, Any] = {
            "dim": dim,
            "heads": heads,
            "layers": layers,
            "dropout": dropout,
            "max_length": max_length,
        }
        self.min_token_count = min_token_count
        self.trainer = trainer
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else best_device()
        self.seed = seed
        self.tokenizer: WordTokenizer | None = None
        self.model: VerifierNet | None = None

    # -- training ----------------------------------------------------------------------------

    def fit(
        self,
        examples: Sequence[LabeledPath],
        *,
        val_examples: Sequence[LabeledPath] | None = None,
    ) -> dict[str, float]:
        """Train on labelled paths with ``self.trainer``; return the trainer's final metrics.

        The vocabulary is built from ``examples``; the model starts from weights seeded by
        ``seed``.
        """
        texts = [text for ex in examples for text in (ex.question, *ex.steps)]
        self.tokenizer = WordTokenizer.build(texts, min_count=self.min_token_count)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model = self._new_model(self.tokenizer)
        train = VerifierDataset(examples, self.tokenizer, self.max_length)
        val = (
            VerifierDataset(val_examples, self.tokenizer, self.max_length) if val_examples else None
        )
        loss = VerifierLoss(self._alpha, self._step_weighting)
        return train_verifier(self.trainer, self.model, train, val, loss, self.device)

    def _new_model(self, tokenizer: WordTokenizer) -> VerifierNet:
        return VerifierNet(
            len(tokenizer),
            max_length=self.max_length,
            pad_id=tokenizer.id(PAD),
            dim=self.options["dim"],
            heads=self.options["heads"],
            layers=self.options["layers"],
            dropout=self.options["dropout"],
            step_head=self._alpha > 0,
        )

    # -- scoring -----------------------------------------------------------------------------

    def score(self, questions: Sequence[str], paths: Sequence[str]) -> list[float]:
        """P(correct) in [0, 1] for each (question, path), computed in length-sorted batches."""
        if len(questions) != len(paths):
            raise ValueError(
                f"{type(self).__name__}.score: {len(questions)} questions but {len(paths)} paths"
            )
        tokenizer, model = self._trained("score")
        if not paths:
            return []
        encoded = [
            encode(tokenizer, q, self.splitter(p), self.max_length).ids
            for q, p in zip(questions, paths, strict=True)
        ]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        scores = [0.0] * len(encoded)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                ids = pad([encoded[i] for i in rows], tokenizer.id(PAD)).to(self.device)
                path_logits, _ = model(ids)
                for i, value in zip(rows, torch.sigmoid(path_logits.float()).tolist(), strict=True):
                    scores[i] = value
        return scores

    def _trained(self, action: str) -> tuple[WordTokenizer, VerifierNet]:
        if self.tokenizer is None or self.model is None:
            raise RuntimeError(
                f"{type(self).__name__}.{action}: the verifier is not trained; call fit() or load()"
            )
        return self.tokenizer, self.model

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the trained verifier to ``directory`` atomically (replacing it); return it.

        Under torchrun only rank 0 writes (every rank holds the same trained weights).
        """
        tokenizer, model = self._trained("save")
        config = {
            "class": type(self).__name__,
            "options": self.options,
            "splitter": splitter_spec(self.splitter),
            "vocab": tokenizer.vocab,
        }
        return save_verifier(Path(directory), config, model)

    @classmethod
    def load(
        cls: type[_Self],
        directory: str | Path,
        *,
        splitter: Callable[[str], list[str]] | None = None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
    ) -> _Self:
        """A verifier saved by :meth:`save`; ``splitter`` replaces (or, for a custom splitter
        that could not be saved, supplies) the step splitter."""
        directory = Path(directory)
        config = read_verifier_config(directory, cls.__name__)
        splitter = saved_splitter(config, splitter, directory, cls.__name__)
        verifier = cls(splitter=splitter, batch_size=batch_size, device=device, **config["options"])
        verifier.tokenizer = WordTokenizer(config["vocab"])
        verifier.model = verifier._new_model(verifier.tokenizer)
        load_weights(verifier.model, directory, cls.__name__)
        verifier.model.to(verifier.device).eval()
        return verifier

    def __repr__(self) -> str:
        state = "trained" if self.model is not None else "untrained"
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{type(self).__name__}({state}, {options})"


class StepAwareVerifier(_NeuralVerifier):
    """DiVeRSe's step-aware verifier: trained on path and step labels; also scores each step.

    Args:
        alpha: the weight of a step label against a path label (0.1 as in the paper).
        step_weighting: ``"reference"`` (each step token weighted ``alpha`` in one weighted
            token cross-entropy, as DiVeRSe's code does) or ``"per_path"`` (path BCE +
            ``alpha`` x mean step BCE); see `VerifierLoss`.

    The other arguments are those of `PathVerifier`.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        step_weighting: StepWeighting = "reference",
        splitter: Callable[[str], list[str]] | None = None,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        max_length: int = 512,
        min_token_count: int = 1,
        trainer: Callable[..., Any] = default_trainer,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if alpha <= 0:
            raise ValueError(
                f"StepAwareVerifier: alpha must be > 0, got {alpha} (PathVerifier is alpha=0)"
            )
        check_step_weighting(step_weighting, "StepAwareVerifier")
        self._alpha = alpha
        self._step_weighting = step_weighting
        super().__init__(
            splitter=splitter,
            dim=dim,
            heads=heads,
            layers=layers,
            dropout=dropout,
            max_length=max_length,
            min_token_count=min_token_count,
            trainer=trainer,
            batch_size=batch_size,
            device=device,
            seed=seed,
        )
        self.options["alpha"] = alpha
        self.options["step_weighting"] = step_weighting

    @property
    def alpha(self) -> float:
        """The weight of the step loss."""
        return self._alpha

    @property
    def step_weighting(self) -> StepWeighting:
        """How the step loss is weighted (see `VerifierLoss`)."""
        return self._step_weighting

    def score_steps(self, question: str, path: str) -> list[float]:
        """P(correct so far) in [0, 1] at each step of ``path`` (split by ``splitter``).

        Raises ValueError when the path is too long for every step to fit in ``max_length``.
        """
        tokenizer, model = self._trained("score_steps")
        steps = self.splitter(path)
        encoded = encode(tokenizer, question, steps, self.max_length)
        if len(encoded.markers) < len(steps):
            raise ValueError(
                f"StepAwareVerifier.score_steps: only {len(encoded.markers)} of {len(steps)} "
                f"steps fit in max_length={self.max_length} tokens"
            )
        with torch.inference_mode():
            _, step_logits = model(pad([encoded.ids], tokenizer.id(PAD)).to(self.device))
        assert step_logits is not None
        return torch.sigmoid(step_logits[0, encoded.markers].float()).tolist()


class PathVerifier(_NeuralVerifier):
    """A verifier trained on path labels only (DiVeRSe without the step-aware loss).

    Args:
        splitter: splits a path into steps (default: `StepSplitter`, one step per line).
        dim, heads, layers, dropout: the transformer encoder's size.
        max_length: tokens per (path, question) pair; longer ones are cut (question first).
        min_token_count: tokens seen fewer times in the training texts map to ``[UNK]``.
        trainer: called as ``trainer(model=, train_data=, loss_fn=[, val_data=])`` to get an
            object with ``fit()``: a ``ddp/trainer`` partial (``_partial_: true``) in configs;
            `default_trainer` when omitted.
        batch_size: pairs per forward pass when scoring.
        device: where scoring runs (``None``: CUDA when available, else CPU).
        seed: seeds the model's initial weights.
    """

    _alpha = 0.0


def train_verifier(
    make_trainer: Callable[..., Any],
    model: torch.nn.Module,
    train: Any,
    val: Any | None,
    loss_fn: VerifierLoss,
    device: torch.device,
) -> dict[str, float]:
    """Fit ``model`` with a trainer from ``make_trainer`` (``val`` only when given), then move
    it to ``device`` for scoring; return the trainer's final metrics."""
    trainer = make_trainer(
        model=model,
        train_data=train,
        loss_fn=loss_fn,
        **({"val_data": val} if val is not None else {}),
    )
    metrics: dict[str, float] = trainer.fit()
    model.to(device).eval()
    return metrics


def best_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
