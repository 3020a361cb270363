"""AMA's aggregator as AMA ran it (metal-ama, torch, SGD) against `ama/metal_label_model`.

    PYTHONPATH=. .venv/bin/python benchmarks/crosscheck_metal_ama.py --metal PATH [--seeds 3]

PATH holds the `metal` package of mayeechen/metal-ama at 18769e7 (the commit AMA's
`metal-ama` submodule pins); it needs torch and networkx (tensorboardX, imported but unused
here, is stubbed). Each run follows `boosting/run_ws.py`: fit without dependencies (lr 1e-5,
10,000 epochs), then, with the dependency our structure step finds (AMA's rule; cvxpy is not
installed here), refit (lr 1e-6, 80,000 epochs for Z, 20,000 for mu). The class balance is
the true one (AMA passes the empirical balance of its labelled training split), for all three
models compared (metal-ama, `ama/metal_label_model`, `ama/label_model`). Slow: 1-4 minutes
per run on one loaded CPU core.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
from bench_aggregators import DATA, SETTINGS

from plugins.ama.label_model import LabelModel
from plugins.ama.metal import MetalLabelModel


def metal_ama_fit_predict(
    train: np.ndarray, test: np.ndarray, k: int, balance: np.ndarray, deps: list
) -> np.ndarray:
    """Labels of `test` from metal-ama's LabelModel trained on `train` with AMA's schedule."""
    from metal.label_model import LabelModel as MetalAma  # the checkout given by --metal

    model = MetalAma(k=k, seed=123, verbose=False)
    scaled = train + 1  # metal: 0 abstains, classes 1..k
    options = {"class_balance": balance, "abstains": bool((train < 0).any()), "symmetric": False}
    model.train_model(scaled, n_epochs=10000, log_train_every=50, lr=1e-5, **options)
    if deps:
        model.train_model(scaled, n_epochs=80000, log_train_every=50, lr=1e-6, deps=deps, **options)
    return model.predict_proba(test + 1).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metal", type=Path, required=True, help="folder holding metal/")
    parser.add_argument("--seeds", type=int, default=3, help="draws per synthetic setting")
    parser.add_argument("--n", type=int, default=2000, help="items per synthetic matrix")
    args = parser.parse_args()
    sys.path.insert(0, str(args.metal))
    stub = types.ModuleType("tensorboardX")
    stub.SummaryWriter = object  # type: ignore[attr-defined]
    sys.modules.setdefault("tensorboardX", stub)

    def load(name: str) -> np.ndarray:
        raw = np.load(DATA / name)
        return np.select([raw == 0, raw == -1], [-1, 0], 1).astype(np.int64)

    cases = []
    for setting in SETTINGS:
        for seed in range(args.seeds):
            votes, y = setting.sample(args.n, np.random.default_rng(seed))
            cases.append((setting.name, seed, votes, y, np.array(setting.prior)))
    y_dev = (np.load(DATA / "Y_dev_video.npy") == 1).astype(np.int64)
    # AMA fits on train and test votes together; here, as in bench_aggregators: fit on L_train.
    cases.append(("flyingsquid (dev)", 0, load("L_train_video.npy"), None, None))
    print(f"{'setting':30} seed  dependency   metal-ama   ours  agree  ama/label_model")
    results: dict[str, list[tuple[float, float, float]]] = {}
    for name, seed, votes, y, balance in cases:
        k = len(balance) if balance is not None else 2
        train = votes
        if y is None:  # FlyingSquid: fit on train, score on dev
            y = y_dev
            balance = np.array([1 - y.mean(), y.mean()])
        ours = MetalLabelModel(k, seed=seed).fit(train, class_balance=balance)
        deps = [d[:2] for d in ours.dependencies_]
        test = load("L_dev_video.npy") if name.startswith("flyingsquid") else train
        theirs = metal_ama_fit_predict(train, test, k, balance, deps)
        mine = ours.predict(test)
        label_model = LabelModel(k, seed=seed).fit(train, class_balance=balance).predict(test)
        run = tuple(100 * float(np.mean(labels == y)) for labels in (theirs, mine, label_model))
        results.setdefault(name, []).append(run)  # type: ignore[arg-type]
        print(
            f"{name:30} {seed:4}  {deps!s:11} {run[0]:9.1f} {run[1]:6.1f} "
            f"{100 * np.mean(theirs == mine):6.1f} {run[2]:16.1f}",
            flush=True,
        )
    print("mean ± sd (accuracy %): metal-ama as run | ours | ama/label_model - metal-ama")
    for name, runs in results.items():
        table = np.array(runs)
        cells = [table[:, 0], table[:, 1], table[:, 2] - table[:, 0]]
        spread = (lambda c: f"±{c.std(ddof=1):.1f}") if len(table) > 1 else (lambda c: "")
        print(f"{name:30} " + " | ".join(f"{c.mean():.1f}{spread(c)}" for c in cells))


if __name__ == "__main__":
    main()
