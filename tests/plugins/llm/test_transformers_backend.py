"""TransformersLLM on a tiny GPT-2 built and loaded from a temp directory."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from transformers import GenerationConfig, LogitsProcessor

from plugins.llm import LLM, Completion
from plugins.llm._sampling import TokenChooser, row_seed
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


def test_samples_match_hf_generate_with_the_same_draws(tiny_llm: TransformersLLM) -> None:
    """The backend's own decoding loop yields what ``model.generate`` yields, token for token,
    when generate makes the same seeded choices (through a logits processor)."""
    prompts, n, seed = PROMPTS[:3], 3, 11
    ours = tiny_llm.generate(prompts, n=n, temperature=0.8, seed=seed, max_new_tokens=9)
    tokenizer, model = tiny_llm.tokenizer, tiny_llm.model
    for prompt, completions in zip(prompts, ours, strict=True):
        for sample, completion in enumerate(completions):
            chooser = TokenChooser(0.8, 1.0, [row_seed(seed, prompt, sample)])
            encoded = tokenizer([prompt], return_tensors="pt")
            with torch.inference_mode():
                reference = model.generate(
                    **encoded,
                    do_sample=False,
                    max_new_tokens=9,
                    logits_processor=[_AsLogitsProcessor(chooser)],
                )
            tokens = reference[0, encoded["input_ids"].shape[1] :]
            assert completion.text == tokenizer.decode(tokens, skip_special_tokens=True)


class _AsLogitsProcessor(LogitsProcessor):
    """Makes ``generate`` follow a `TokenChooser` (for one-row batches)."""

    def __init__(self, chooser: TokenChooser) -> None:
        self.chooser = chooser

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        chosen, _ = self.chooser(scores.float(), torch.zeros(1, dtype=torch.long))
        return torch.full_like(scores, float("-inf")).scatter_(1, chosen[:, None], 0.0)


def test_each_prompt_is_read_once_and_finished_rows_leave_the_batch(
    tiny_llm: TransformersLLM,
) -> None:
    """The prompt pass holds each distinct prompt once (not once per sample); afterwards each
    step feeds one token per row still being written."""
    widths: list[tuple[int, int]] = []
    hook = tiny_llm.model.register_forward_pre_hook(
        lambda _, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        [completions] = tiny_llm.generate(
            [PROMPTS[0]], n=3, temperature=1.0, seed=2, max_new_tokens=12, stop=[" "]
        )
    finally:
        hook.remove()
    prompt_length = len(tiny_llm.tokenizer(PROMPTS[0])["input_ids"])
    assert widths[0] == (1, prompt_length)
    rows_per_step = [rows for rows, length in widths[1:] if length == 1]
    assert len(rows_per_step) == len(widths) - 1
    assert rows_per_step[0] == 3
    assert rows_per_step == sorted(rows_per_step, reverse=True)
    lengths = sorted(len(c.token_logprobs) for c in completions)
    assert len(set(lengths)) == 3 and lengths[-1] < 12  # the rows end at different steps
    # A row is fed until its last token: the step after the k-th token holds the rows longer than k.
    assert rows_per_step == [sum(length > k for length in lengths) for k in range(1, lengths[-1])]


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
