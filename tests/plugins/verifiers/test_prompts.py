"""DiVeRSe's diverse prompts end to end on a tiny local model, through both backends.

The model is random, so these check structure and validity, never accuracy.
"""

from __future__ import annotations

import logging

import pytest
from _verifier_problems import make_dataset

from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.server import FaultPlan
from plugins.llm.testing import serve
from plugins.llm.transformers_backend import TransformersLLM
from plugins.verifiers.parsing import RegexAnswer
from plugins.verifiers.prompts import DiversePrompts, QuestionPaths, WorkedExample
from plugins.verifiers.voting import MajorityVote, VotingVerifier

pytestmark = pytest.mark.timeout(120)

POOL = [{"question": item["question"], "solution": item["gold"]} for item in make_dataset(7, 6)]
QUESTIONS = ["Sam has 3, finds 4, then doubles. How many now?", "Sam has 9, loses 2. How many?"]
FAST = {"num_prompts": 2, "samples_per_prompt": 3, "shots": 2, "max_new_tokens": 12}


def check_structure(results: list[QuestionPaths], generator: DiversePrompts) -> None:
    assert [r.question for r in results] == QUESTIONS
    for result in results:
        assert len(result.paths) == 2 * 3 and result.failed_prompts == ()
        assert [p.prompt_index for p in result.paths] == [0, 0, 0, 1, 1, 1]
        for path in result.paths:
            assert isinstance(path.text, str)
            assert path.answer == generator.answer(path.text)


def test_prompts_use_distinct_seeded_exemplar_sets(tiny_llm: TransformersLLM) -> None:
    generator = DiversePrompts(tiny_llm, POOL, num_prompts=3, shots=2, seed=5)
    again = DiversePrompts(
        tiny_llm, [WorkedExample(**ex) for ex in POOL], num_prompts=3, shots=2, seed=5
    )
    assert generator.exemplar_sets == again.exemplar_sets
    prompts = generator.prompts(QUESTIONS[0])
    assert len(prompts) == 3 and len(set(prompts)) == 3
    assert all(p.endswith(f"Question: {QUESTIONS[0]}\nAnswer:\n") for p in prompts)
    assert all(len(s) == 2 for s in generator.exemplar_sets)


def test_a_query_from_the_pool_never_sees_itself_as_an_exemplar(
    tiny_llm: TransformersLLM,
) -> None:
    generator = DiversePrompts(tiny_llm, POOL, num_prompts=4, shots=3, seed=1)
    outside = generator.prompts(QUESTIONS[0])  # not in the pool: every set as drawn
    tail = f"Question: {QUESTIONS[0]}\nAnswer:\n"
    swapped = 0
    for item in POOL:
        query = item["question"]
        for prompt, as_drawn, exemplars in zip(
            generator.prompts(query), outside, generator.exemplar_sets, strict=True
        ):
            assert prompt.count(f"Question: {query}\n") == 1  # the query only, at the end
            assert prompt.count("Question: ") == 3 + 1  # the swapped exemplar has a stand-in
            if any(e.question == query for e in exemplars):
                swapped += 1
            else:  # other sets are left as drawn
                assert prompt == as_drawn.removesuffix(tail) + f"Question: {query}\nAnswer:\n"
    assert swapped == 4 * 3  # each set held 3 pool questions


def test_a_pool_without_spares_drops_the_query_exemplar(tiny_llm: TransformersLLM) -> None:
    generator = DiversePrompts(tiny_llm, POOL[:2], num_prompts=1, shots=2, seed=0)
    (prompt,) = generator.prompts(POOL[0]["question"])
    assert prompt.count("Question: ") == 2
    assert prompt.startswith(f"Question: {POOL[1]['question']}\n")


def test_transformers_backend_end_to_end(tiny_llm: TransformersLLM) -> None:
    generator = DiversePrompts(tiny_llm, POOL, seed=1, batch_size=3, **FAST)
    results = generator.generate(QUESTIONS)
    check_structure(results, generator)
    assert generator.generate(QUESTIONS) == results  # the same seed gives the same paths
    assert generator.failures == 0


def test_openai_backend_end_to_end(tiny_llm: TransformersLLM) -> None:
    with serve(tiny_llm) as base_url:
        generator = DiversePrompts(OpenAILLM("tiny", base_url=base_url), POOL, seed=1, **FAST)
        check_structure(generator.generate(QUESTIONS), generator)


def test_failed_llm_calls_are_recorded_not_raised(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture
) -> None:
    generator_options = {"seed": 1, **FAST}
    failing_prompt = DiversePrompts(tiny_llm, POOL, **generator_options).prompts(QUESTIONS[1])[0]
    faults = FaultPlan(by_prompt={failing_prompt: ("400",)})  # a 4xx fails at once
    with serve(tiny_llm, faults=faults) as base_url:
        llm = OpenAILLM("tiny", base_url=base_url, max_retries=0)
        generator = DiversePrompts(llm, POOL, **generator_options)
        with caplog.at_level(logging.WARNING, logger="plugins.verifiers.prompts"):
            first, second = generator.generate(QUESTIONS)
    assert len(first.paths) == 6 and first.failed_prompts == ()
    assert second.failed_prompts == (0,)
    assert [p.prompt_index for p in second.paths] == [1, 1, 1]
    assert generator.failures == 1
    assert "1 of 4 LLM calls failed" in caplog.text


def test_an_extractor_that_never_matches_gives_none_never_a_wrong_answer(
    tiny_llm: TransformersLLM,
) -> None:
    generator = DiversePrompts(tiny_llm, POOL, answer=RegexAnswer(pattern=r"#{9}(\d+)"), **FAST)
    for result in generator.generate(QUESTIONS):
        assert result.answers == [None] * 6
        assert VotingVerifier().choose(result.answers) is None
        assert MajorityVote().choose(result.answers, [0.9] * 6) is None


def test_a_callable_extractor_is_used_as_is(tiny_llm: TransformersLLM) -> None:
    generator = DiversePrompts(tiny_llm, POOL, answer=len, **FAST)
    for result in generator.generate(QUESTIONS[:1]):
        assert result.answers == [len(text) for text in result.texts]


def test_bad_arguments_are_clear_errors(tiny_llm: TransformersLLM) -> None:
    with pytest.raises(ValueError, match=r"shots=9 must be between 1 and the pool size \(6"):
        DiversePrompts(tiny_llm, POOL, shots=9)
    with pytest.raises(ValueError, match=r"exemplars\[1\] must be a WorkedExample"):
        DiversePrompts(tiny_llm, [POOL[0], {"question": "q"}], shots=1)
    with pytest.raises(ValueError, match=r"query_format='Q: \{q\}' must use only"):
        DiversePrompts(tiny_llm, POOL, query_format="Q: {q}")
    with pytest.raises(ValueError, match="samples_per_prompt must be >= 1"):
        DiversePrompts(tiny_llm, POOL, samples_per_prompt=0)
