"""``verifiers/lm``: a step-aware verifier that reads paths through a frozen language model.

The reasoning path is fed, after a prompt holding the question, to a pretrained causal LM (for
example the model that wrote the paths); for each token the verifier sees how probable the LM
found it and how unsure the LM was (`plugins.verifiers._lm_features`). A small transformer over
those features is trained with the ddp Trainer on DiVeRSe's step-aware loss (`VerifierLoss`).
The LM stays frozen: its features are computed once per path, so training costs little more
than one forward pass over the training paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from plugins.verifiers._data import FeatureDataset, pad_features
from plugins.verifiers._files import (
    load_weights,
    read_verifier_config,
    save_verifier,
    saved_splitter,
    splitter_spec,
)
from plugins.verifiers._lm_features import NUM_FEATURES, LMFeatures, PathFeatures
from plugins.verifiers._model import (
    FeatureVerifierNet,
    StepWeighting,
    VerifierLoss,
    check_step_weighting,
)
from plugins.verifiers.labels import LabeledPath
from plugins.verifiers.parsing import StepSplitter
from plugins.verifiers.verifier import best_device, default_trainer, train_verifier

__all__ = ["LMVerifier"]

DEFAULT_PROMPT = "Question: {question}\nAnswer:\n"


class LMVerifier:
    """P(correct) of a (question, path) and of each step, from a frozen LM's token surprises.

    Args:
        backbone: directory of a Hugging Face causal LM and its tokenizer; it is read, never
            trained, and a saved verifier refers to it by path.
        alpha: weight of a step label against a path label (DiVeRSe: 0.1); 0 trains on path
            labels only.
        step_weighting: ``"reference"`` (each step token weighted ``alpha`` in one weighted
            token cross-entropy, as DiVeRSe's code does) or ``"per_path"`` (path BCE +
            ``alpha`` x mean step BCE); see `VerifierLoss`.
        prompt: the text the LM reads before the path (``{question}`` is filled in); use the
            format the LM was trained or prompted with.
        splitter: splits a path into steps (default `StepSplitter`, one step per line); steps
            are fed to the LM joined by newlines.
        dim, heads, layers, dropout: the size of the transformer over the features.
        max_length: most path tokens read.
        trainer: called as ``trainer(model=, train_data=, loss_fn=[, val_data=])``; a
            ``ddp/trainer`` partial in configs, `default_trainer` when omitted.
        batch_size: paths per forward pass (LM and verifier) when computing features or scores.
        device: where the LM and the verifier run (``None``: CUDA when available, else CPU).
        seed: seeds the verifier's initial weights.
    """

    def __init__(
        self,
        backbone: str | Path,
        *,
        alpha: float = 0.1,
        step_weighting: StepWeighting = "reference",
        prompt: str = DEFAULT_PROMPT,
        splitter: Callable[[str], list[str]] | None = None,
        dim: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        max_length: int = 256,
        trainer: Callable[..., Any] = default_trainer,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"LMVerifier: alpha must be >= 0, got {alpha}")
        check_step_weighting(step_weighting, "LMVerifier")
        if "{question}" not in prompt:
            raise ValueError(f"LMVerifier: prompt must contain '{{question}}', got {prompt!r}")
        self.backbone = Path(backbone)
        self.alpha = alpha
        self.step_weighting = step_weighting
        self.prompt = prompt
        self.splitter = splitter if splitter is not None else StepSplitter()
        self.options: dict[str, Any] = {
            "alpha": alpha,
            "step_weighting": step_weighting,
            "dim": dim,
            "heads": heads,
            "layers": layers,
            "dropout": dropout,
            "max_length": max_length,
        }
        self.trainer = trainer
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else best_device()
        self.seed = seed
        self.model: FeatureVerifierNet | None = None
        self._lm: LMFeatures | None = None

    def fit(
        self,
        examples: Sequence[LabeledPath],
        *,
        val_examples: Sequence[LabeledPath] | None = None,
    ) -> dict[str, float]:
        """Train on labelled paths with ``self.trainer``; return the trainer's final metrics."""
        if not examples:
            raise ValueError("LMVerifier.fit: no training examples")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model = self._new_model()
        train = FeatureDataset(examples, self._features(examples))
        val = FeatureDataset(val_examples, self._features(val_examples)) if val_examples else None
        loss = VerifierLoss(self.alpha, self.step_weighting)
        return train_verifier(self.trainer, self.model, train, val, loss, self.device)

    def score(self, questions: Sequence[str], paths: Sequence[str]) -> list[float]:
        """P(correct) in [0, 1] for each (question, path)."""
        if len(questions) != len(paths):
            raise ValueError(f"LMVerifier.score: {len(questions)} questions but {len(paths)} paths")
        model = self._trained("score")
        features = self.lm(questions, [self.splitter(p) for p in paths])
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(features), self.batch_size):
                x = pad_features(features[start : start + self.batch_size]).to(self.device)
                scores.extend(torch.sigmoid(model(x)[0].float()).tolist())
        return scores

    def score_steps(self, question: str, path: str) -> list[float]:
        """P(correct so far) in [0, 1] at each step of ``path``; needs ``alpha > 0``."""
        model = self._trained("score_steps")
        if model.step_head is None:
            raise ValueError("LMVerifier.score_steps: trained with alpha=0, it has no step head")
        steps = self.splitter(path)
        (features,) = self.lm([question], [steps])
        if len(features.markers) < len(steps):
            raise ValueError(
                f"LMVerifier.score_steps: only {len(features.markers)} of {len(steps)} steps fit "
                f"in max_length={self.options['max_length']} tokens"
            )
        with torch.inference_mode():
            _, step_logits = model(pad_features([features]).to(self.device))
        assert step_logits is not None
        return torch.sigmoid(step_logits[0, features.markers].float()).tolist()

    @property
    def lm(self) -> LMFeatures:
        """The frozen backbone's feature reader (loaded on first use)."""
        if self._lm is None:
            self._lm = LMFeatures(
                self.backbone,
                prompt=self.prompt,
                max_length=self.options["max_length"],
                batch_size=self.batch_size,
                device=self.device,
            )
        return self._lm

    def save(self, directory: str | Path) -> Path:
        """Write the trained verifier (not the backbone, referred to by its resolved path) to
        ``directory`` atomically; under torchrun only rank 0 writes."""
        config = {
            "class": type(self).__name__,
            "backbone": str(self.backbone.resolve()),
            "prompt": self.prompt,
            "options": self.options,
            "splitter": splitter_spec(self.splitter),
        }
        return save_verifier(Path(directory), config, self._trained("save"))

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        backbone: str | Path | None = None,
        splitter: Callable[[str], list[str]] | None = None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
    ) -> LMVerifier:
        """A verifier saved by :meth:`save`; ``backbone`` and ``splitter`` replace the saved
        ones (for a moved backbone, or a custom splitter that could not be saved)."""
        directory = Path(directory)
        config = read_verifier_config(directory, cls.__name__)
        verifier = cls(
            backbone if backbone is not None else config["backbone"],
            prompt=config["prompt"],
            splitter=saved_splitter(config, splitter, directory, cls.__name__),
            batch_size=batch_size,
            device=device,
            **config["options"],
        )
        verifier.model = verifier._new_model()
        load_weights(verifier.model, directory, cls.__name__)
        verifier.model.to(verifier.device).eval()
        return verifier

    def _new_model(self) -> FeatureVerifierNet:
        options = {k: v for k, v in self.options.items() if k not in ("alpha", "step_weighting")}
        return FeatureVerifierNet(NUM_FEATURES, step_head=self.alpha > 0, **options)

    def _features(self, examples: Sequence[LabeledPath]) -> list[PathFeatures]:
        return self.lm([ex.question for ex in examples], [list(ex.steps) for ex in examples])

    def _trained(self, action: str) -> FeatureVerifierNet:
        if self.model is None:
            raise RuntimeError(
                f"LMVerifier.{action}: the verifier is not trained; call fit() or load()"
            )
        return self.model

    def __repr__(self) -> str:
        state = "trained" if self.model is not None else "untrained"
        return f"LMVerifier({state}, backbone={str(self.backbone)!r}, alpha={self.alpha})"
