"""Shared fixtures: one tiny GPT-2 built locally per test session, and a backend over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.llm.testing import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("ama_tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_dir: Path):  # -> TransformersLLM (imported lazily: torch)
    from plugins.llm.transformers_backend import TransformersLLM

    return TransformersLLM(tiny_model_dir, device="cpu", batch_size=8)
