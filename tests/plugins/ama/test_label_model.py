"""ama/label_model: recovery of known parameters, accuracy against majority vote, errors, ties."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from _ama_votes import votes_from
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.ama._votes import compress
from plugins.ama.label_model import LabelModel
from plugins.ama.majority import MajorityVote

FLYINGSQUID = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "flyingsquid_video"


def accuracy(model, votes: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.fit(votes).predict(votes) == y))


def test_recovers_known_accuracies_and_class_balance() -> None:
    truth = np.array([0.9, 0.8, 0.7, 0.65, 0.6])
    votes, _ = votes_from(np.random.default_rng(0), 20_000, truth, prior=(0.7, 0.3), abstain=0.2)
    model = LabelModel(2).fit(votes)
    assert model.accuracies_ == pytest.approx(truth, abs=0.03)
    assert model.class_balance_ == pytest.approx([0.7, 0.3], abs=0.02)
    assert model.dependencies_ == [] and model.groups_ == tuple((j,) for j in range(5))
    # conditionals_[j, y] is P(vote | class y) over classes 0..k-1 then abstain.
    assert model.conditionals_.shape == (5, 2, 3)
    assert model.conditionals_[:, :, -1] == pytest.approx(np.full((5, 2), 0.2), abs=0.02)


def test_beats_majority_when_voters_differ_in_accuracy() -> None:
    votes, y = votes_from(np.random.default_rng(1), 3000, [0.92, 0.85, 0.6, 0.58, 0.55])
    assert accuracy(LabelModel(2), votes, y) > accuracy(MajorityVote(2), votes, y) + 0.03


def test_finds_a_clique_sharing_errors_and_beats_majority() -> None:
    votes, y = votes_from(
        np.random.default_rng(2),
        3000,
        [0.7, 0.7, 0.7, 0.8, 0.78],
        copies=(0, 1, 2),
        copy_rate=0.85,
        shared_accuracy=0.62,
    )
    model = LabelModel(2)
    assert accuracy(model, votes, y) > accuracy(MajorityVote(2), votes, y) + 0.08
    assert (0, 1, 2) in model.groups_
    # A clique member is right when it copies a right shared vote or votes right on its own.
    member = 0.85 * 0.62 + 0.15 * 0.7
    assert model.accuracies_ == pytest.approx([member, member, member, 0.8, 0.78], abs=0.04)
    assert {pair[:2] for pair in model.dependencies_} == {(0, 1), (0, 2), (1, 2)}


def test_four_classes_with_a_correlated_pair_and_abstains() -> None:
    votes, y = votes_from(
        np.random.default_rng(3),
        3000,
        [0.7, 0.7, 0.75, 0.65, 0.6],
        prior=(0.25,) * 4,
        abstain=0.15,
        copies=(0, 1),
        copy_rate=0.8,
        shared_accuracy=0.55,
    )
    model = LabelModel(4)
    assert accuracy(model, votes, y) > accuracy(MajorityVote(4), votes, y) + 0.02
    assert (0, 1) in model.groups_
    proba = model.predict_proba(votes)
    assert proba.shape == (3000, 4) and np.allclose(proba.sum(axis=1), 1.0)


def test_a_known_class_balance_is_kept() -> None:
    votes, _ = votes_from(np.random.default_rng(4), 2000, [0.8, 0.7, 0.7], prior=(0.8, 0.2))
    model = LabelModel(2).fit(votes, class_balance=np.array([3.0, 1.0]))
    assert model.class_balance_ == pytest.approx([0.75, 0.25])


def test_fit_is_deterministic_under_a_seed() -> None:
    votes, _ = votes_from(np.random.default_rng(5), 1000, [0.8, 0.7, 0.6, 0.6], abstain=0.3)
    first = LabelModel(2, seed=3).fit(votes).predict_proba(votes)
    assert np.array_equal(first, LabelModel(2, seed=3).fit(votes).predict_proba(votes))


def test_a_single_voter_is_followed_where_it_votes() -> None:
    votes = np.array([[0], [1], [1], [-1], [0], [1]] * 50)
    with pytest.warns(UserWarning, match="1 voter"):
        model = LabelModel(2).fit(votes)
    predicted = model.predict(votes)
    voted = votes[:, 0] >= 0
    assert np.array_equal(predicted[voted], votes[voted, 0])
    assert set(np.unique(predicted)) <= {0, 1}


@pytest.mark.parametrize("seed", range(4))
def test_two_voters_are_followed_where_they_agree(seed: int) -> None:
    # Two voters leave accuracies unidentifiable: every restart explains the votes equally well,
    # and rounding alone used to pick one that ignores them (it differed between CPUs).
    votes = np.array([[0, 0], [1, 1], [1, 1], [-1, 1], [0, -1], [1, 0], [0, 0]] * 40)
    with pytest.warns(UserWarning, match="2 voter"):
        model = LabelModel(2, seed=seed).fit(votes)
    predicted = model.predict(votes)
    agree = votes[:, 0] == votes[:, 1]
    assert np.array_equal(predicted[agree], votes[agree, 0])
    alone = (votes == -1).any(axis=1)
    assert np.array_equal(predicted[alone], votes[alone].max(axis=1))


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        (np.array([0, 1, 1]), "2-D"),
        (np.zeros((0, 3), dtype=int), "empty"),
        (np.array([[0, 2], [1, 1]]), "vote 2 at row 0, voter 1 is outside -1..1"),
        (np.array([[0, -2]]), "outside -1..1"),
        (np.array([[0.5, 1.0]]), "integers"),
    ],
)
@pytest.mark.parametrize("model_class", [LabelModel, MajorityVote])
def test_bad_votes_raise_value_error(model_class, votes: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_class(2).fit(votes)


@pytest.mark.parametrize("model_class", [LabelModel, MajorityVote])
def test_other_number_of_voters_and_unfitted_models_raise(model_class) -> None:
    model = model_class(2)
    with pytest.raises(ValueError, match="call fit"):
        model.predict(np.zeros((2, 3), dtype=int))
    model.fit(np.array([[0, 1, 1], [1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="fitted on 3 voters, got 2 columns"):
        model.predict(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="class_balance must be 2 positive numbers"):
        model.fit(np.array([[0, 1, 1]]), class_balance=[1.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cardinality": 1}, "cardinality must be an int >= 2, got 1"),
        ({"cardinality": "2"}, "cardinality must be an int >= 2, got '2'"),
        ({"tie_break": "bogus"}, "tie_break must be one of 'random', 'first', got 'bogus'"),
    ],
)
@pytest.mark.parametrize("model_class", [LabelModel, MajorityVote])
def test_bad_settings_raise_from_python_too(model_class, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"{model_class.__name__}: {message}"):
        model_class(**kwargs)


@pytest.mark.parametrize(("given", "expected"), [(None, [0.5, 0.5]), ([0.7, 0.3], [0.7, 0.3])])
def test_all_abstain_votes_teach_nothing_and_predict_the_class_balance(given, expected) -> None:
    with pytest.warns(UserWarning, match="every vote abstains"):
        model = LabelModel(2).fit(np.full((50, 3), -1), class_balance=given)
    assert np.allclose(model.class_balance_, expected)
    proba = model.predict_proba(np.array([[-1, -1, -1], [1, 1, 1], [0, 1, -1]]))
    assert np.allclose(proba, [expected] * 3)  # no voter has earned any weight


def test_float_votes_holding_integers_are_accepted() -> None:
    votes = np.array([[0.0, 1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.0, -1.0]] * 20)
    assert MajorityVote(2).fit(votes).predict(votes)[:3].tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    "model_class", [MajorityVote, lambda k, **kw: LabelModel(k, restarts=1, **kw)]
)
def test_ties_follow_the_policy(model_class) -> None:
    # Votes symmetric under swapping the classes, a balanced prior, and rows where everyone
    # abstains: both classes are exactly as likely there.
    votes = np.vstack([np.full((200, 2), -1), [[0, 0], [1, 1]] * 20])
    balance = np.array([0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two voters: the label model warns
        first = model_class(2, tie_break="first").fit(votes, class_balance=balance)
        seeded = model_class(2, seed=7).fit(votes, class_balance=balance)
        other = model_class(2, seed=8).fit(votes, class_balance=balance)
    assert np.all(first.predict(votes)[:200] == 0)
    drawn = seeded.predict(votes)[:200]
    assert 50 < drawn.sum() < 150  # both classes drawn among the tied rows
    assert np.array_equal(drawn, seeded.predict(votes)[:200])  # the same every call
    assert not np.array_equal(drawn, other.predict(votes)[:200])
    assert seeded.predict(votes)[200:202].tolist() == [0, 1]  # untied rows are untouched


@pytest.mark.skipif(not FLYINGSQUID.is_dir(), reason="needs ../shared/data/flyingsquid_video")
def test_real_votes_flyingsquid_at_least_majority() -> None:
    def load(name: str) -> np.ndarray:
        raw = np.load(FLYINGSQUID / name)
        return np.select([raw == 0, raw == -1], [-1, 0], 1)

    train, dev = load("L_train_video.npy"), load("L_dev_video.npy")
    y = np.load(FLYINGSQUID / "Y_dev_video.npy") == 1
    model = LabelModel(2).fit(train)
    majority = MajorityVote(2).fit(train)
    assert np.mean(model.predict(dev) == y) >= np.mean(majority.predict(dev) == y)


@pytest.mark.parametrize(("n_rows", "n_voters"), [(500, 4), (500, 20), (50, 45)])
def test_compressed_votes_rebuild_the_matrix(n_rows: int, n_voters: int) -> None:
    # Three regimes: few possible rows (dense count), int64 codes (sorted), wider rows.
    votes = np.random.default_rng(0).integers(-1, 2, size=(n_rows, n_voters))
    votes[n_rows // 2 :] = votes[: n_rows - n_rows // 2]  # repeated rows
    patterns = compress(votes, 2)
    assert np.array_equal(patterns.rows[patterns.inverse], votes)
    assert len(np.unique(patterns.rows, axis=0)) == len(patterns.rows)
    assert patterns.counts.sum() == n_rows


@pytest.mark.filterwarnings("ignore:LabelModel.fit. every vote abstains")
@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(2, 4),
    shape=st.tuples(st.integers(1, 40), st.integers(3, 6)),
    seed=st.integers(0, 2**16),
    abstain=st.floats(0.0, 1.0),
)
def test_any_valid_votes_give_distributions_and_classes(
    k: int, shape: tuple[int, int], seed: int, abstain: float
) -> None:
    rng = np.random.default_rng(seed)
    votes = np.where(rng.random(shape) < abstain, -1, rng.integers(0, k, size=shape))
    for model in (LabelModel(k, restarts=2), MajorityVote(k)):
        proba = model.fit(votes).predict_proba(votes)
        assert proba.shape == (shape[0], k) and np.all(np.isfinite(proba))
        assert np.allclose(proba.sum(axis=1), 1.0) and np.all(proba >= 0)
        assert np.isin(model.predict(votes), np.arange(k)).all()
