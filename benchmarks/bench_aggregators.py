"""Label models side by side: majority vote, ama/label_model, AMA's aggregator, snorkel.

AMA's aggregator is `ama/metal_label_model` (metal's label model with one learned dependency).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_aggregators.py [--n 2000] [--seeds 5]
        [--skip-speed] [--flyingsquid-only]

Four synthetic settings drawn from known generative models (accuracy on all items, the models
fitted on the same unlabeled votes), the FlyingSquid video votes (fit on L_train without labels,
score on L_dev), and the time to fit a 1,000,000 x 10 vote matrix. Each cell is the mean and
standard deviation over `--seeds` runs (synthetic: a fresh draw and model seed per run;
FlyingSquid: the same votes, model seeds 0..seeds-1). "LM - metal" is the paired difference
per run, `ama/label_model` minus AMA's aggregator, without and with the true class balance.
The synthetic generators live here only; the label model never sees them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plugins.ama.label_model import LabelModel
from plugins.ama.majority import MajorityVote
from plugins.ama.metal import MetalLabelModel

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "flyingsquid_video"


@dataclass(frozen=True)
class Group:
    """Voters that copy one shared noisy vote with probability `copy`, else vote on their own."""

    members: tuple[int, ...]
    accuracy: float  # of the shared vote
    copy: float


@dataclass(frozen=True)
class Setting:
    """A generative model of votes: class prior, per-voter accuracy and abstain rate, groups."""

    name: str
    prior: tuple[float, ...]
    accuracy: tuple[float, ...]
    abstain: tuple[float, ...]
    groups: tuple[Group, ...] = field(default=())

    @property
    def cardinality(self) -> int:
        return len(self.prior)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Votes (n, m) with -1 for abstain, and the true labels (n,)."""
        k, m = self.cardinality, len(self.accuracy)
        y = rng.choice(k, size=n, p=self.prior)
        votes = _noisy(y, np.array(self.accuracy)[None, :], k, rng, (n, m))
        for group in self.groups:
            shared = _noisy(y, group.accuracy, k, rng, (n, 1))
            copies = rng.random((n, len(group.members))) < group.copy
            cols = list(group.members)
            votes[:, cols] = np.where(copies, shared, votes[:, cols])
        votes[rng.random((n, m)) < np.array(self.abstain)] = -1
        return votes, y

    def oracle(self, votes: np.ndarray) -> np.ndarray:
        """Bayes-optimal labels under the true model (the bound no label model can pass)."""
        k, m = self.cardinality, votes.shape[1]
        log_post = np.tile(np.log(self.prior), (len(votes), 1))
        grouped = {j: g for g in self.groups for j in g.members}
        singles = [Group((j,), 1.0, 0.0) for j in range(m) if j not in grouped]
        for group in (*self.groups, *singles):
            for y in range(k):
                total = np.zeros(len(votes))
                for z in range(k):
                    p_z = group.accuracy if z == y else (1 - group.accuracy) / (k - 1)
                    term = np.full(len(votes), p_z)
                    for j in group.members:
                        own = np.where(
                            votes[:, j] == y, self.accuracy[j], (1 - self.accuracy[j]) / (k - 1)
                        )
                        vote = group.copy * (votes[:, j] == z) + (1 - group.copy) * own
                        term *= np.where(
                            votes[:, j] < 0, self.abstain[j], (1 - self.abstain[j]) * vote
                        )
                    total += term
                log_post[:, y] += np.log(total)
        return log_post.argmax(axis=1)


def _noisy(
    y: np.ndarray,
    accuracy: float | np.ndarray,
    k: int,
    rng: np.random.Generator,
    shape: tuple[int, int],
) -> np.ndarray:
    """Votes equal to y with probability `accuracy`, else a uniformly drawn wrong class."""
    correct = rng.random(shape) < accuracy
    wrong = (y[:, None] + rng.integers(1, k, size=shape)) % k
    return np.where(correct, y[:, None], wrong)


SETTINGS = (
    Setting("independent, unequal", (0.5, 0.5), (0.9, 0.8, 0.7, 0.65, 0.6, 0.6), (0.0,) * 6),
    Setting(
        "clique of 3 + 2 good",
        (0.5, 0.5),
        (0.7, 0.7, 0.7, 0.8, 0.78),
        (0.0,) * 5,
        (Group((0, 1, 2), 0.62, 0.85),),
    ),
    Setting(
        "80/20, 25% abstain",
        (0.8, 0.2),
        (0.8, 0.75, 0.7, 0.7, 0.65),
        (0.25,) * 5,
    ),
    Setting(
        "4 classes, pair, 15% abstain",
        (0.25, 0.25, 0.25, 0.25),
        (0.7, 0.7, 0.75, 0.65, 0.6),
        (0.15,) * 5,
        (Group((0, 1), 0.55, 0.8),),
    ),
)


def _snorkel(votes: np.ndarray, k: int, seed: int, balance: np.ndarray | None) -> Any:
    """snorkel's LabelModel fitted on `votes` (a benchmark-only dependency)."""
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel

    model = SnorkelLabelModel(cardinality=k, verbose=False)
    model.fit(votes, n_epochs=500, seed=seed, class_balance=balance, progress_bar=False)
    return model


Model = LabelModel | MajorityVote | MetalLabelModel


def _models(k: int, seed: int) -> dict[str, Model]:
    return {
        "majority": MajorityVote(k, seed=seed),
        "ama/label_model": LabelModel(k, seed=seed),
        "metal (AMA)": MetalLabelModel(k, seed=seed),
    }


def _accuracies(
    train: np.ndarray, test: np.ndarray, y: np.ndarray, k: int, seed: int, balance: np.ndarray
) -> dict[str, float]:
    """Accuracy (%) of each model fitted on `train` and scored on `test` against `y`."""
    scores = {}
    for name, model in _models(k, seed).items():
        scores[name] = 100 * np.mean(model.fit(train).predict(test) == y)
    for name, model in (
        ("ama/label_model +balance", LabelModel(k, seed=seed)),
        ("metal +balance", MetalLabelModel(k, seed=seed)),
    ):
        scores[name] = 100 * np.mean(model.fit(train, class_balance=balance).predict(test) == y)
    for name, given in (("snorkel", None), ("snorkel +balance", balance)):
        model = _snorkel(train, k, seed, given)
        scores[name] = 100 * np.mean(model.predict(test, tie_break_policy="random") == y)
    return scores


Row = tuple[str, dict[str, list[float]]]


def synthetic(n: int, seeds: int) -> list[Row]:
    """Accuracy per draw (seeds 0..seeds-1) of each synthetic setting, oracle included."""
    table = []
    for setting in SETTINGS:
        runs = []
        for seed in range(seeds):
            votes, y = setting.sample(n, np.random.default_rng(seed))
            balance = np.array(setting.prior)
            scores = _accuracies(votes, votes, y, setting.cardinality, seed, balance)
            scores["oracle"] = 100 * np.mean(setting.oracle(votes) == y)
            runs.append(scores)
        table.append((setting.name, {key: [r[key] for r in runs] for key in runs[0]}))
    return table


def flyingsquid(seeds: int) -> list[Row]:
    """Fit on L_train (no labels), score on L_dev; values mapped 0 -> abstain, -1 -> class 0.

    Two rows: frames as independent items (model seeds 0..seeds-1), and frames in order
    (`sequential=True`, seed 0 only: the class follows a Markov chain; L_train and L_dev are
    each one run of consecutive frames).
    """

    def load(name: str) -> np.ndarray:
        raw = np.load(DATA / name)
        return np.select([raw == 0, raw == -1], [-1, 0], 1).astype(np.int64)

    train, dev = load("L_train_video.npy"), load("L_dev_video.npy")
    y = (np.load(DATA / "Y_dev_video.npy") == 1).astype(np.int64)
    balance = np.array([1 - y.mean(), y.mean()])
    runs = [_accuracies(train, dev, y, 2, seed, balance) for seed in range(seeds)]
    sequential = LabelModel(2, sequential=True).fit(train)
    in_order = {
        "majority": [100 * np.mean(MajorityVote(2).fit(train).predict(dev) == y)],
        "ama/label_model": [100 * np.mean(sequential.predict(dev) == y)],
    }
    return [
        ("flyingsquid video (dev)", {key: [r[key] for r in runs] for key in runs[0]}),
        ("flyingsquid, frames in order", in_order),
    ]


def speed(n: int = 1_000_000, m: int = 10) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds to fit and predict with each model on an (n, m) vote matrix."""
    setting = Setting("speed", (0.6, 0.4), tuple(np.linspace(0.6, 0.85, m)), (0.2,) * m)
    votes, _ = setting.sample(n, np.random.default_rng(0))
    times = {}
    for name, model in _models(2, 0).items():
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(votes).predict(votes)
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    return times


def _derive(runs: dict[str, list[float]]) -> None:
    """Add the per-run gap closed (to the oracle) and the paired differences to AMA's model."""
    mine, base = np.array(runs["ama/label_model"]), np.array(runs["majority"])
    if "oracle" in runs:
        runs["gap closed"] = list(100 * (mine - base) / (np.array(runs["oracle"]) - base))
    if "metal (AMA)" in runs:
        runs["LM - metal"] = list(mine - np.array(runs["metal (AMA)"]))
        runs["LM - metal +bal"] = list(
            np.array(runs["ama/label_model +balance"]) - np.array(runs["metal +balance"])
        )


def _cell(values: list[float]) -> str:
    """Mean and (over 2 or more runs) the sample standard deviation."""
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f}±{np.std(values, ddof=1):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="items per synthetic matrix")
    parser.add_argument(
        "--seeds", type=int, default=5, help="runs (synthetic: draws; FlyingSquid: model seeds)"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--flyingsquid-only", action="store_true", help="real votes only")
    args = parser.parse_args()
    synthetic_rows = [] if args.flyingsquid_only else synthetic(args.n, args.seeds)
    rows = [*synthetic_rows, *flyingsquid(args.seeds)]
    for _, runs in rows:
        _derive(runs)
    columns = list(dict.fromkeys(key for _, runs in rows for key in runs))
    widths = [max(len(c), 9) + 2 for c in columns]
    header = "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(f"{'accuracy %, mean±sd':30}{header}")
    for name, runs in rows:
        cells = (
            f"{_cell(runs[c]):>{w}}" if c in runs else " " * w
            for c, w in zip(columns, widths, strict=True)
        )
        print(f"{name:30}" + "".join(cells))
    if not (args.skip_speed or args.flyingsquid_only):
        for name, (wall, cpu) in speed().items():
            print(f"fit + predict 1,000,000 x 10, {name}: {wall:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
