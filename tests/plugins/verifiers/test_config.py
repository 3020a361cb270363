"""A DiVeRSe config built by ``instantiate`` from registry names, run on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from _verifier_problems import make_dataset

from corelib import InstantiationError, instantiate
from plugins.llm.testing import serve
from plugins.llm.transformers_backend import TransformersLLM
from plugins.verifiers.labels import PathLabeller
from plugins.verifiers.prompts import DiversePrompts
from plugins.verifiers.verifier import StepAwareVerifier
from plugins.verifiers.voting import VotingVerifier

pytestmark = pytest.mark.timeout(120)

PROBLEMS = make_dataset(3, 8)
POOL = [{"question": p["question"], "solution": p["gold"]} for p in PROBLEMS[:6]]
TRAIN, TEST = PROBLEMS[6:7], PROBLEMS[7:]


def diverse_config(llm: dict[str, Any]) -> dict[str, Any]:
    answer = {"_target_": "verifiers/regex_answer", "pattern": r"answer is (\d+)"}  # shared node
    return {
        "prompts": {
            "_target_": "verifiers/diverse_prompts",
            "llm": llm,
            "exemplars": POOL,
            "num_prompts": 2,
            "samples_per_prompt": 3,
            "shots": 2,
            "max_new_tokens": 12,
            "answer": answer,
        },
        "labeller": {
            "_target_": "verifiers/path_labeller",
            "answer": answer,
            "step_labeller": {"_target_": "verifiers/arithmetic_steps"},
        },
        "verifier": {
            "_target_": "verifiers/step_aware",
            "alpha": 0.1,
            "dim": 16,
            "heads": 2,
            "layers": 1,
            "max_length": 128,
            "trainer": {
                "_target_": "ddp/trainer",
                "_partial_": True,
                "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3},
                "strategy": {"_target_": "ddp/single", "device": "cpu"},
                "batch_size": 4,
                "max_steps": 2,
            },
        },
        "vote": {"_target_": "verifiers/voting"},
    }


def run_diverse(built: dict[str, Any]) -> None:
    prompts, labeller, verifier, vote = (
        built[k] for k in ("prompts", "labeller", "verifier", "vote")
    )
    assert isinstance(prompts, DiversePrompts) and isinstance(labeller, PathLabeller)
    assert isinstance(verifier, StepAwareVerifier) and isinstance(vote, VotingVerifier)
    assert prompts.answer is labeller.answer and prompts.answer.pattern == r"answer is (\d+)"
    train_paths = prompts.generate([p["question"] for p in TRAIN])
    examples = [
        example
        for problem, paths in zip(TRAIN, train_paths, strict=True)
        for example in labeller.label(problem["question"], problem["gold"], paths.texts)
    ]
    assert len(examples) == 1 + 6 and examples[0].correct
    assert verifier.fit(examples)["step"] == 2
    (test_paths,) = prompts.generate([TEST[0]["question"]])
    scores = verifier.score([test_paths.question] * len(test_paths.paths), test_paths.texts)
    assert len(scores) == 6 and all(0.0 <= s <= 1.0 for s in scores)
    choice = vote.choose(test_paths.answers, scores)
    assert choice is None or choice in test_paths.answers


def test_diverse_config_on_the_transformers_backend(tiny_model_dir: str) -> None:
    llm = {"_target_": "llm/transformers", "model": str(tiny_model_dir), "device": "cpu"}
    run_diverse(instantiate(diverse_config(llm)))


def test_diverse_config_on_the_openai_backend(tiny_llm: TransformersLLM) -> None:
    with serve(tiny_llm) as base_url:
        llm = {"_target_": "llm/openai", "model": "tiny", "base_url": base_url}
        run_diverse(instantiate(diverse_config(llm)))


def test_aggregators_by_qualified_name() -> None:
    from plugins.verifiers.voting import BestPath, MajorityVote

    assert isinstance(instantiate({"_target_": "verifiers/majority"}), MajorityVote)
    assert isinstance(instantiate({"_target_": "verifiers/best_path"}), BestPath)
    with pytest.raises(InstantiationError, match="verifiers/majority"):
        instantiate({"_target_": "majority"})  # ama/majority exists too


def test_a_misspelled_verifier_option_names_the_path() -> None:
    with pytest.raises(InstantiationError) as error:
        instantiate({"verifier": {"_target_": "verifiers/step_aware", "alpah": 0.2}})
    assert error.value.path == "verifier"
    assert "did you mean 'alpha'" in str(error.value)
