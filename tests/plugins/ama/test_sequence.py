"""ama/label_model with sequential=True: a Markov chain over the classes of ordered items."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from plugins.ama._sequence import forward_backward
from plugins.ama.label_model import LabelModel
from plugins.ama.majority import MajorityVote


def chain_votes(
    rng: np.random.Generator,
    n: int,
    accuracy: list[float],
    *,
    stay: float = 0.95,
    copies: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Binary classes from a symmetric Markov chain; voter j is right with probability
    accuracy[j]; voters in `copies` repeat one shared vote (right 60%) 85% of the time."""
    y = np.empty(n, dtype=np.int64)
    y[0] = 0
    flips = rng.random(n) > stay
    for t in range(1, n):
        y[t] = y[t - 1] ^ flips[t]
    right = rng.random((n, len(accuracy))) < np.asarray(accuracy)
    votes = np.where(right, y[:, None], 1 - y[:, None])
    if copies:
        shared = np.where(rng.random(n) < 0.6, y, 1 - y)
        copied = rng.random((n, len(copies))) < 0.85
        votes[:, list(copies)] = np.where(copied, shared[:, None], votes[:, list(copies)])
    return votes, y


def test_forward_backward_matches_enumeration() -> None:
    rng = np.random.default_rng(0)
    log_emission = np.log(rng.random((5, 2)))
    transition = np.array([[0.8, 0.2], [0.3, 0.7]])
    start = np.array([0.6, 0.4])
    occupancy, counts, log_likelihood = forward_backward(log_emission, transition, start)
    joint = {}
    for path in itertools.product(range(2), repeat=5):
        p = start[path[0]] * np.prod([transition[a, b] for a, b in itertools.pairwise(path)])
        joint[path] = p * np.exp(sum(log_emission[t, c] for t, c in enumerate(path)))
    total = sum(joint.values())
    assert log_likelihood == pytest.approx(np.log(total))
    for t, c in itertools.product(range(5), range(2)):
        expected = sum(p for path, p in joint.items() if path[t] == c) / total
        assert occupancy[t, c] == pytest.approx(expected)
    pairs = sum(
        p * np.eye(2)[[path[t] for t in range(4)]].T @ np.eye(2)[[path[t] for t in range(1, 5)]]
        for path, p in joint.items()
    )
    assert counts == pytest.approx(pairs / total)


def test_learns_a_sticky_chain_and_beats_frames_taken_alone() -> None:
    votes, y = chain_votes(np.random.default_rng(1), 1500, [0.75, 0.7, 0.7, 0.65])
    model = LabelModel(2, sequential=True).fit(votes)
    alone = LabelModel(2).fit(votes)
    assert np.mean(model.predict(votes) == y) > np.mean(alone.predict(votes) == y) + 0.08
    assert np.diag(model.transition_) == pytest.approx([0.95, 0.95], abs=0.03)
    assert model.accuracies_ == pytest.approx([0.75, 0.7, 0.7, 0.65], abs=0.05)
    proba = model.predict_proba(votes)
    assert proba.shape == (1500, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_groups_a_clique_by_held_out_likelihood() -> None:
    votes, y = chain_votes(
        np.random.default_rng(2), 1000, [0.7, 0.7, 0.7, 0.8, 0.78], copies=(0, 1, 2)
    )
    model = LabelModel(2, sequential=True).fit(votes)
    assert (0, 1, 2) in model.groups_
    assert np.mean(model.predict(votes) == y) > np.mean(
        MajorityVote(2).fit(votes).predict(votes) == y
    )
    assert {(0, 1), (0, 2), (1, 2)} <= {pair[:2] for pair in model.dependencies_}


def test_sequences_are_kept_apart_and_the_fit_is_deterministic() -> None:
    votes, _ = chain_votes(np.random.default_rng(3), 600, [0.8, 0.7, 0.7])
    lengths = [200, 250, 150]
    first = LabelModel(2, sequential=True).fit(votes, lengths=lengths)
    again = LabelModel(2, sequential=True).fit(votes, lengths=lengths)
    proba = first.predict_proba(votes, lengths=lengths)
    assert np.array_equal(proba, again.predict_proba(votes, lengths=lengths))
    # Each sequence is conditioned on itself only: predicting the pieces apart changes nothing.
    apart = np.vstack(
        [
            first.predict_proba(votes[:200]),
            first.predict_proba(votes[200:450], lengths=[250]),
            first.predict_proba(votes[450:]),
        ]
    )
    assert np.allclose(proba, apart)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lengths": [10, 10]}, "lengths must be positive and sum to the number of rows"),
        ({"lengths": [0, 60]}, "lengths must be positive"),
        ({"class_balance": [0.5, 0.5]}, "class_balance is not supported with sequential=True"),
    ],
)
def test_bad_sequence_arguments_raise(kwargs: dict, message: str) -> None:
    votes, _ = chain_votes(np.random.default_rng(4), 60, [0.8, 0.7, 0.7])
    with pytest.raises(ValueError, match=message):
        LabelModel(2, sequential=True).fit(votes, **kwargs)


def test_lengths_need_a_sequential_model() -> None:
    votes, _ = chain_votes(np.random.default_rng(5), 60, [0.8, 0.7, 0.7])
    with pytest.raises(ValueError, match="lengths needs sequential=True"):
        LabelModel(2).fit(votes, lengths=[60])
    model = LabelModel(2).fit(votes)
    with pytest.raises(ValueError, match="lengths needs sequential=True"):
        model.predict(votes, lengths=[60])
