"""TransformersLLM on a tiny GPT-2 built and loaded from a temp directory."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from transformers import GenerationConfig

from plugins.llm import LLM, Completion
from plugins.llm.transformers_backend import TransformersLLM

PROMPTS = [
    "Question: Tom has 3 apples and buys 4 more.",
    "hi",
    "Answer: 3 + 4 = 7. The answer is",
    "Context: the train leaves at 5 pm. Question: when does the train leave? Answer:",
    "?",
    "Rewrite the statement as a question.",
]


def texts(results: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in completions] for completions in results]


def test_is_an_llm_and_repr_names_the_model(tiny_llm: TransformersLLM) -> None:
    assert isinstance(tiny_llm, LLM)
    assert str(tiny_llm.model_dir) in repr(tiny_llm)


def test_greedy_matches_hf_generate_and_excludes_the_prompt(tiny_llm: TransformersLLM) -> None:
    tokenizer, model = tiny_llm.tokenizer, tiny_llm.model
    [[completion]] = tiny_llm.generate([PROMPTS[0]], max_new_tokens=12)
    encoded = tokenizer([PROMPTS[0]], return_tensors="pt")
    with torch.inference_mode():
        reference = model.generate(**encoded, do_sample=False, max_new_tokens=12)
    expected = tokenizer.decode(
        reference[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True
    )
    assert completion.text == expected
    assert completion.finish_reason == "length"
    assert len(completion.token_logprobs) == 12
    assert all(lp <= 0 for lp in completion.token_logprobs)


def test_greedy_output_does_not_depend_on_the_batch(tiny_llm: TransformersLLM) -> None:
    batched = tiny_llm.generate(PROMPTS, n=2, max_new_tokens=10)  # batch_size=4: two padded batches
    for prompt, completions in zip(PROMPTS, batched, strict=True):
        [[alone]] = tiny_llm.generate([prompt], max_new_tokens=10)
        assert [c.text for c in completions] == [alone.text, alone.text]
        assert completions[0].finish_reason == alone.finish_reason
        assert completions[0].token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-4)


def test_same_seed_same_samples_whatever_the_batch(tiny_llm: TransformersLLM) -> None:
    sample = dict(n=3, temperature=1.0, max_new_tokens=8)
    first = tiny_llm.generate(PROMPTS, seed=7, **sample)
    assert first == tiny_llm.generate(PROMPTS, seed=7, **sample)
    reordered = tiny_llm.generate(PROMPTS[::-1], seed=7, **sample)
    assert texts(first) == texts(reordered[::-1])
    assert texts(first) != texts(tiny_llm.generate(PROMPTS, seed=8, **sample))
    assert len(set(texts(first)[0])) == 3  # the n samples are independent draws


def test_no_seed_draws_fresh_randomness(tiny_llm: TransformersLLM) -> None:
    sample = dict(n=2, temperature=1.0, max_new_tokens=8)
    assert texts(tiny_llm.generate(PROMPTS, **sample)) != texts(
        tiny_llm.generate(PROMPTS, **sample)
    )


def test_a_tiny_top_p_keeps_only_the_most_likely_token(tiny_llm: TransformersLLM) -> None:
    greedy = tiny_llm.generate(PROMPTS[:3], max_new_tokens=8)
    nucleus = tiny_llm.generate(PROMPTS[:3], temperature=1.0, top_p=1e-9, max_new_tokens=8, seed=3)
    assert texts(nucleus) == texts(greedy)


def test_text_ends_before_the_first_stop_string(tiny_llm: TransformersLLM) -> None:
    [[free]] = tiny_llm.generate([PROMPTS[0]], max_new_tokens=16)
    stop = free.text[4:7]  # a piece of what the model writes anyway
    [[stopped]] = tiny_llm.generate([PROMPTS[0]], max_new_tokens=16, stop=["never there", stop])
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.finish_reason == "stop"
    assert 0 < len(stopped.token_logprobs) < 16  # generation ended early


def test_an_end_of_sequence_token_ends_with_stop(tiny_llm: TransformersLLM, tmp_path) -> None:
    with torch.inference_mode():
        logits = tiny_llm.model(**tiny_llm.tokenizer(["hello"], return_tensors="pt")).logits
    first_token = int(logits[0, -1].argmax())
    model_dir = shutil.copytree(tiny_llm.model_dir, tmp_path / "model")
    config = GenerationConfig.from_pretrained(model_dir)
    config.eos_token_id = [tiny_llm.tokenizer.eos_token_id, first_token]  # as Llama 3 lists several
    config.save_pretrained(model_dir)
    [[completion]] = TransformersLLM(model_dir, device="cpu").generate(["hello"], max_new_tokens=5)
    assert completion == Completion("", completion.token_logprobs, "stop")
    assert len(completion.token_logprobs) == 1 and math.isfinite(completion.token_logprobs[0])


def test_a_prompt_the_model_cannot_take_is_a_counted_failure_not_an_error(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture
) -> None:
    before = tiny_llm.failures
    too_long = "a " * 10_000
    with caplog.at_level("WARNING", logger="plugins.llm.transformers_backend"):
        results = tiny_llm.generate(["a", "", too_long, "b"], max_new_tokens=4)
    assert [len(r) for r in results] == [1, 0, 0, 1]
    assert results[0] == tiny_llm.generate(["a"], max_new_tokens=4)[0]
    assert tiny_llm.failures == before + 2
    assert "prompt 1 encodes to no tokens" in caplog.text
    assert "prompt 2 has" in caplog.text and "512 positions" in caplog.text
    assert tiny_llm.generate([], max_new_tokens=4) == []


def test_missing_model_directory_and_bad_dtype_are_clear_errors(tmp_path, tiny_model_dir) -> None:
    with pytest.raises(FileNotFoundError, match="no model directory"):
        TransformersLLM(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="dtype 'float33' is not a torch dtype name"):
        TransformersLLM(tiny_model_dir, dtype="float33")
