"""Shared fixtures: synthetic arithmetic problems and a tiny local language model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _verifier_problems import make_dataset

if TYPE_CHECKING:
    from plugins.llm.transformers_backend import TransformersLLM


@pytest.fixture(scope="session")
def arithmetic() -> dict[str, list[dict[str, object]]]:
    """Train and test splits of synthetic problems (seeded)."""
    return {"train": make_dataset(0, 200), "test": make_dataset(1, 50)}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 and its tokenizer, built locally (no download)."""
    from plugins.llm.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("verifiers_tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_dir: Path) -> TransformersLLM:
    """The tiny model through the transformers backend, on the CPU."""
    from plugins.llm.transformers_backend import TransformersLLM

    return TransformersLLM(tiny_model_dir, device="cpu", batch_size=8)
