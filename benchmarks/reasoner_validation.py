"""Score a main-job run's reasoner and verifier on the validation split (never the test split).

The validation problems that serve as the prompts' exemplars are left out. For the rest: the
greedy answer of the first prompt, DiVeRSe's M1 x M2 paths (the config's ``paths.prompts``),
self-consistency and the voting verifier over them, each with its Wilson 95% interval, and the
paired differences. A setting chosen for speed is compared here before its test figures are
looked at. With ``--train-questions N`` the verifier is not the run's saved one but the
config's, trained afresh on the paths of the run's first N training questions (with
``--verifier-steps`` steps, the config's by default).

    PYTHONPATH=. python benchmarks/reasoner_validation.py runs/reasoning
    PYTHONPATH=. python benchmarks/reasoner_validation.py runs/reasoning \
        --train-questions 100 --verifier-steps 150
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from corelib import instantiate
from examples.reasoning import config
from examples.reasoning._io import read_jsonl
from examples.reasoning.data import load_split
from examples.reasoning.report import paired_difference, wilson
from plugins.llm.transformers_backend import TransformersLLM
from plugins.verifiers.labels import PathLabeller
from plugins.verifiers.lm_verifier import LMVerifier
from plugins.verifiers.voting import MajorityVote, VotingVerifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--train-questions", type=int, help="retrain the verifier on these")
    parser.add_argument("--verifier-steps", type=int, help="its training steps (with the above)")
    args = parser.parse_args()
    run_dir: Path = args.run_dir
    llm = TransformersLLM(run_dir / "reasoner" / "model", batch_size=256)
    node = config.paths.prompts
    node.exemplars.path = str(run_dir / "data" / "val.jsonl")
    node.llm = llm
    prompts = instantiate(node)
    shown = {e.question for s in prompts.exemplar_sets for e in s}
    problems = [p for p in load_split(run_dir / "data", "val") if p.question not in shown]
    questions = [p.question for p in problems]
    gold = [str(p.answer) for p in problems]

    greedy_texts = llm.generate(
        [prompts.prompts(q)[0] for q in questions],
        max_new_tokens=prompts.max_new_tokens,
        stop=prompts.stop,
    )
    greedy = [prompts.answer(c[0].text) if c else None for c in greedy_texts]
    paths = prompts.generate(questions)
    verifier = verifier_for(args, llm.model_dir)
    flat = iter(
        verifier.score(
            [q.question for q in paths for _ in q.paths], [p.text for q in paths for p in q.paths]
        )
    )
    scores = [[next(flat) for _ in q.paths] for q in paths]
    answers = [[None if p.answer is None else str(p.answer) for p in q.paths] for q in paths]
    hits = {
        "greedy": [g is not None and str(g) == t for g, t in zip(greedy, gold, strict=True)],
        "self-consistency": [
            MajorityVote().choose(a) == t for a, t in zip(answers, gold, strict=True)
        ],
        "voting": [
            VotingVerifier().choose(a, s) == t
            for a, s, t in zip(answers, scores, gold, strict=True)
        ],
    }
    report = {"run_dir": str(run_dir), "questions": len(problems), "methods": {}, "differences": {}}
    for name, correct in hits.items():
        low, high = wilson(sum(correct), len(correct))
        report["methods"][name] = {
            "accuracy": sum(correct) / len(correct),
            "low": low,
            "high": high,
        }
    for better, worse in (("self-consistency", "greedy"), ("voting", "self-consistency")):
        report["differences"][f"{better} - {worse}"] = paired_difference(hits[better], hits[worse])
    json.dump(report, sys.stdout, indent=1)
    print()


def verifier_for(args: argparse.Namespace, backbone: Path) -> LMVerifier:
    """The run's saved verifier, or the config's trained afresh on the first questions' paths."""
    if args.train_questions is None:
        return LMVerifier.load(args.run_dir / "verifier" / "model", backbone=backbone)
    node = config.verifier.verifier
    node.backbone = str(backbone)
    if args.verifier_steps is not None:
        node.trainer.max_steps = args.verifier_steps
    verifier: LMVerifier = instantiate(node)
    rows = read_jsonl(args.run_dir / "paths" / "train.jsonl")[: args.train_questions]
    labeller = PathLabeller()
    verifier.fit(
        [
            example
            for row in rows
            for example in labeller.label(
                row["question"],
                row["solution"],
                [text for text, _, _ in row["paths"]],
                gold_answer=row["gold"],
            )
        ]
    )
    return verifier


if __name__ == "__main__":
    main()
