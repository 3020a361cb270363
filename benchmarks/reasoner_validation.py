"""Score a main-job run's reasoner and verifier on the validation split (never the test split).

The validation problems that serve as the prompts' exemplars are left out. For the rest, the
paths stage's rows (the greedy answer of the first prompt, DiVeRSe's M1 x M2 paths from the
config's ``paths.prompts``) go through the report's arithmetic: greedy, self-consistency and the
voting verifier, each with its Wilson 95% interval, and the paired differences. A setting chosen
for speed is judged here, not on the test split. With ``--train-questions N`` the verifier is
not the run's saved one but the config's, trained afresh on the paths of the run's first N
training questions (at most as many as the run sampled paths for: the config's
``paths.train_questions``), with ``--verifier-steps`` steps (the config's by default).

    PYTHONPATH=. python benchmarks/reasoner_validation.py runs/reasoning
    PYTHONPATH=. python benchmarks/reasoner_validation.py runs/reasoning \\
        --train-questions 50 --verifier-steps 100
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
from examples.reasoning.paths import SamplePaths
from examples.reasoning.report import Report
from examples.reasoning.verify import label_paths, score_paths
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
    # read (and checked) before the validation paths are sampled
    train_rows = None if args.train_questions is None else training_rows(args)
    llm = TransformersLLM(run_dir / "reasoner" / "model", batch_size=256)
    node = config.paths.prompts
    node.exemplars.path = str(run_dir / "data" / "val.jsonl")
    node.llm = llm
    prompts = instantiate(node)
    shown = {e.question for s in prompts.exemplar_sets for e in s}
    problems = [p for p in load_split(run_dir / "data", "val") if p.question not in shown]
    rows = SamplePaths(prompts, chunk=16).evaluation_rows(problems, "validation paths")
    scores = score_paths(verifier_for(args, llm.model_dir, train_rows), rows)
    votes = {"self-consistency": MajorityVote(), "voting": VotingVerifier()}
    report = {"run_dir": str(run_dir), **Report(votes).arithmetic(rows, scores)}
    json.dump(report, sys.stdout, indent=1)
    print()


def verifier_for(
    args: argparse.Namespace, backbone: Path, train_rows: list[dict] | None
) -> LMVerifier:
    """The run's saved verifier, or the config's trained afresh on ``train_rows``' paths."""
    if train_rows is None:
        return LMVerifier.load(args.run_dir / "verifier" / "model", backbone=backbone)
    node = config.verifier.verifier
    node.backbone = str(backbone)
    if args.verifier_steps is not None:
        node.trainer.max_steps = args.verifier_steps
    verifier: LMVerifier = instantiate(node)
    verifier.fit(label_paths(train_rows, PathLabeller()))
    return verifier


def training_rows(args: argparse.Namespace) -> list[dict]:
    """The paths of the run's first ``--train-questions`` training questions."""
    rows = read_jsonl(args.run_dir / "paths" / "train.jsonl")
    if args.train_questions > len(rows):
        raise SystemExit(
            f"--train-questions {args.train_questions}: {args.run_dir}/paths/train.jsonl holds "
            f"paths for {len(rows)} training questions; rerun the paths stage with "
            f"paths.train_questions={args.train_questions} first"
        )
    return rows[: args.train_questions]


if __name__ == "__main__":
    main()
