"""The report stage: accuracy table with 95% intervals, ``results.json`` and the paths plot.

Arithmetic: greedy decoding, then each answer vote (self-consistency, best path, DiVeRSe's
voting verifier) over all of a question's paths; the plot shows accuracy against the number of
sampled paths (random subsets, averaged over draws, as DiVeRSe's reference code computes it).
Yes/no: each chain alone (an abstain counts as wrong) and each aggregator, on test and, where
the ``ama`` stage wrote one, on its validation split (where its settings were chosen).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from examples.reasoning._io import read_json, read_jsonl, write_json, write_text
from examples.reasoning.pipeline import StageContext

__all__ = ["Report", "paired_difference", "verifier_ranking", "wilson"]

Z95 = 1.959963984540054


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    low = 0.0 if hits == 0 else centre - half  # exact bounds at the ends, no rounding residue
    high = 1.0 if hits == n else centre + half
    return (low, high)


def paired_difference(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float]:
    """Mean of ``a - b`` over paired items with its 95% normal interval."""
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(1, n - 1))
    half = Z95 * sd / math.sqrt(n)
    return {"difference": mean, "low": mean - half, "high": mean + half}


def verifier_ranking(
    answers: Sequence[Sequence[str | None]], gold: Sequence[str], scores: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """How often the verifier scores a right path above a wrong path of the same question
    (ties count half): the within-question AUC over all such pairs (None without any)."""
    above, pairs = 0.0, 0
    for row, answer, row_scores in zip(answers, gold, scores, strict=True):
        right = [s for a, s in zip(row, row_scores, strict=True) if a == answer]
        wrong = [s for a, s in zip(row, row_scores, strict=True) if a != answer]
        above += sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
        pairs += len(right) * len(wrong)
    return {"right_above_wrong": above / pairs if pairs else None, "pairs": pairs}


def _entry(correct: Sequence[bool]) -> dict[str, Any]:
    hits, n = sum(correct), len(correct)
    low, high = wilson(hits, n)
    return {"accuracy": hits / n, "low": low, "high": high, "n": n}


def _row(name: str, entry: Mapping[str, Any]) -> str:
    return (
        f"  {name:<34} {100 * entry['accuracy']:5.1f}%   "
        f"[{100 * entry['low']:4.1f}, {100 * entry['high']:4.1f}]"
    )


class Report:
    """Summarise the run: ``votes`` maps a method name to an answer vote (``aggregators``)."""

    def __init__(
        self,
        votes: Mapping[str, Any],
        *,
        repeats: int = 20,
        seed: int = 0,
        paths_stage: str = "paths",
        verifier_stage: str = "verifier",
        yesno_stage: str = "ama",
    ) -> None:
        self.votes = dict(votes)
        self.repeats = repeats
        self.seed = seed
        self.stages = {"paths": paths_stage, "verifier": verifier_stage, "ama": yesno_stage}

    def run(self, context: StageContext) -> str:
        """Compute, write ``results.json``, ``table.txt`` and ``accuracy_vs_paths.png``."""
        test = read_jsonl(context.output(self.stages["paths"]) / "test.jsonl")
        scores = read_jsonl(context.output(self.stages["verifier"]) / "scores.jsonl")
        yesno = read_json(context.output(self.stages["ama"]) / "yesno.json")
        results = {
            "arithmetic": self.arithmetic(test, scores),
            "yes_no": self.yes_no(yesno),
            **(
                {"yes_no_validation": self.yes_no(yesno["validation"])}
                if "validation" in yesno
                else {}
            ),
            "curve": self.curve(test, scores),
            "stage_seconds": context.seconds(),
        }
        write_json(context.directory / "results.json", results)
        greedy = results["arithmetic"]["methods"]["greedy"]["accuracy"]
        plot = plot_curve(results["curve"], greedy, context.directory / "accuracy_vs_paths.png")
        table = format_table(results)
        write_text(context.directory / "table.txt", table + "\n")
        print(table)
        return f"results in {context.directory / 'results.json'}, plot in {plot}"

    def arithmetic(self, test: list[dict[str, Any]], scores: list[list[float]]) -> dict[str, Any]:
        """Greedy and each vote's accuracy with intervals, and the key paired differences."""
        gold = [row["gold"] for row in test]
        answers = _path_answers(test)
        correct = {"greedy": [r["greedy"]["answer"] == g for r, g in zip(test, gold, strict=True)]}
        for name, vote in self.votes.items():
            chosen = [vote.choose(a, s) for a, s in zip(answers, scores, strict=True)]
            correct[name] = [c is not None and c == g for c, g in zip(chosen, gold, strict=True)]
        return {
            "methods": {name: _entry(hits) for name, hits in correct.items()},
            "differences": {
                f"{better} - {worse}": paired_difference(correct[better], correct[worse])
                for worse, better in itertools.pairwise(correct)
            },
            "paths_per_question": max(len(row["paths"]) for row in test),
            "verifier_ranking": verifier_ranking(answers, gold, scores),
        }

    def yes_no(self, yesno: Mapping[str, Any]) -> dict[str, Any]:
        """Each chain alone and each aggregator on the yes/no task."""
        labels = yesno["labels"]
        out = {
            f"chain {j + 1}": _entry(
                [v[j] == y for v, y in zip(yesno["votes"], labels, strict=True)]
            )
            for j in range(len(yesno["votes"][0]))
        }
        for name, predicted in yesno["predictions"].items():
            out[name] = _entry([p == y for p, y in zip(predicted, labels, strict=True)])
        return out

    def curve(self, test: list[dict[str, Any]], scores: list[list[float]]) -> dict[str, Any]:
        """Accuracy at 1..M*K paths for each vote (``accuracy_at_k``, random subsets)."""
        from plugins.verifiers.evaluation import accuracy_at_k

        answers = _path_answers(test)
        gold = [row["gold"] for row in test]
        ks = list(range(1, max(len(a) for a in answers) + 1))
        curves = {
            name: accuracy_at_k(
                vote, answers, gold, scores, ks=ks, repeats=self.repeats, seed=self.seed
            )
            for name, vote in self.votes.items()
        }
        return {"paths": ks, **{name: [c[k] for k in ks] for name, c in curves.items()}}


def _path_answers(test: list[dict[str, Any]]) -> list[list[str | None]]:
    """Each test question's path answers (paths are ``[text, answer, prompt index]``)."""
    return [[answer for _, answer, _ in row["paths"]] for row in test]


def plot_curve(curve: Mapping[str, Any], greedy: float, path: Path) -> Path:
    """Accuracy against the number of sampled paths, one line per vote, and greedy decoding's
    accuracy as a dashed line; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, values in curve.items():
        if name != "paths":
            axes.plot(curve["paths"], [100 * v for v in values], marker="o", ms=3, label=name)
    axes.axhline(100 * greedy, color="grey", linestyle="--", label="greedy decoding")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("sampled reasoning paths per question")
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)
    return path


def _ranking_line(ranking: Mapping[str, Any]) -> str:
    if ranking["right_above_wrong"] is None:
        return "  verifier: no question has both a right and a wrong path to rank"
    return (
        "  verifier: a right path scored above a wrong one of the same question in "
        f"{100 * ranking['right_above_wrong']:.1f}% of {ranking['pairs']:,} pairs"
    )


def _yes_no_lines(test: Mapping[str, Any], validation: Mapping[str, Any] | None) -> list[str]:
    """The yes/no rows: test accuracy with its interval, then validation accuracy if any."""
    n = next(iter(test.values()))["n"]
    if validation is None:
        return [
            f"Yes/no: is the claim about a problem's answer true? ({n} test questions)",
            *(_row(name, entry) for name, entry in test.items()),
        ]
    n_val = next(iter(validation.values()))["n"]
    return [
        f"Yes/no: is the claim about a problem's answer true? ({n} test questions; "
        f"validation: {n_val}, where the settings were chosen)",
        *(
            f"{_row(name, entry)}   validation {100 * validation[name]['accuracy']:5.1f}%"
            for name, entry in test.items()
        ),
    ]


def format_table(results: Mapping[str, Any]) -> str:
    """The human-readable table of ``results``."""
    arithmetic = results["arithmetic"]
    methods = arithmetic["methods"]
    n = next(iter(methods.values()))["n"]
    lines = [
        f"Arithmetic word problems: {n} test questions, "
        f"{arithmetic['paths_per_question']} sampled paths each   accuracy   95% CI",
        *(_row(name, entry) for name, entry in methods.items()),
        "  paired differences (95% CI):",
        *(
            f"    {name:<40} {100 * d['difference']:+5.1f}  "
            f"[{100 * d['low']:+5.1f}, {100 * d['high']:+5.1f}]"
            for name, d in arithmetic["differences"].items()
        ),
        _ranking_line(arithmetic["verifier_ranking"]),
        *_yes_no_lines(results["yes_no"], results.get("yes_no_validation")),
        "Seconds per stage, wall-clock (CPU time of all its processes): "
        + ", ".join(
            f"{name} {s['wall']:.0f} ({s['cpu']:.0f})"
            for name, s in results["stage_seconds"].items()
        ),
    ]
    return "\n".join(lines)
