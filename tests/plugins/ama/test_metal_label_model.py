"""ama/metal_label_model: AMA's aggregator (structure learning + metal's label model)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _ama_votes import votes_from

from corelib import instantiate
from plugins.ama._metal import learn_structure
from plugins.ama.majority import MajorityVote
from plugins.ama.metal import MetalLabelModel

TRUTH = [0.9, 0.8, 0.7, 0.65, 0.6]


def accuracy(model: MetalLabelModel, votes: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.fit(votes).predict(votes) == y))


@pytest.mark.parametrize("abstain", [0.0, 0.2])
def test_recovers_accuracies_of_conditionally_independent_voters(abstain: float) -> None:
    votes, _ = votes_from(np.random.default_rng(0), 20_000, TRUTH, abstain=abstain)
    model = MetalLabelModel(2, learn_dependency=False).fit(votes)
    assert model.dependencies_ == [] and model.structure_ is None
    assert model.accuracies_ == pytest.approx(TRUTH, abs=0.03)
    # conditionals_[j, y] is P(vote | class y) over classes 0..k-1 then abstain (metal clips
    # the abstain entry to [1e-4, 0.9999]).
    assert model.conditionals_.shape == (5, 2, 3)
    assert model.conditionals_[:, :, -1] == pytest.approx(
        np.full((5, 2), max(abstain, 1e-4)), abs=0.03
    )


def test_the_sparse_part_is_the_inverse_covariance_at_amas_penalties() -> None:
    votes, _ = votes_from(np.random.default_rng(1), 5000, TRUTH)
    x = votes.astype(np.float64)
    sigma = x.T @ x / (len(x) - 1) - np.outer(x.mean(0), x.mean(0))
    expected = np.linalg.inv(sigma)
    np.fill_diagonal(expected, 0.0)
    structure = learn_structure(votes, 2, lam=None, gamma=1e-8)
    assert structure is not None
    # gamma = 1e-8 makes the l1 penalty vanish, so the nuclear norm zeroes the low-rank part.
    assert np.abs(structure.low_rank).max() < 1e-6
    assert structure.sparse == pytest.approx(expected, abs=1e-4)
    # A real l1 penalty shrinks the off-diagonal entries (the program is solved, not bypassed).
    shrunk = learn_structure(votes, 2, lam=None, gamma=0.5)
    assert shrunk is not None
    assert np.abs(shrunk.sparse).sum() < np.abs(structure.sparse).sum() - 0.5


@pytest.mark.parametrize(
    ("prior", "accuracy_", "pair", "abstain"),
    [
        ((0.5, 0.5), [0.75, 0.7, 0.8, 0.7, 0.78], (1, 3), 0.0),
        ((0.25,) * 4, [0.7, 0.7, 0.75, 0.65, 0.6], (0, 2), 0.15),
    ],
)
def test_finds_a_planted_pair(prior, accuracy_, pair, abstain) -> None:
    votes, _ = votes_from(
        np.random.default_rng(2),
        4000,
        accuracy_,
        prior=prior,
        abstain=abstain,
        copies=pair,
        copy_rate=0.85,
        shared_accuracy=0.55,
    )
    model = MetalLabelModel(len(prior)).fit(votes)
    assert [d[:2] for d in model.dependencies_] == [pair]
    assert model.structure_ is not None and model.structure_.sparse.shape == (5, 5)


def test_modelling_the_pair_beats_independent_voters_and_majority() -> None:
    votes, y = votes_from(
        np.random.default_rng(2),
        4000,
        [0.75, 0.7, 0.8, 0.7, 0.78],
        copies=(1, 3),
        copy_rate=0.85,
        shared_accuracy=0.55,
    )
    with_pair = accuracy(MetalLabelModel(2), votes, y)
    assert with_pair > accuracy(MetalLabelModel(2, learn_dependency=False), votes, y) + 0.02
    assert with_pair > accuracy(MajorityVote(2), votes, y) + 0.02


def test_no_dependency_unless_some_entry_is_below_the_threshold() -> None:
    votes, _ = votes_from(np.random.default_rng(3), 3000, TRUTH, copies=(0, 1), copy_rate=0.8)
    assert MetalLabelModel(2).fit(votes).dependencies_[0][:2] == (0, 1)
    assert MetalLabelModel(2, dependency_threshold=0.0).fit(votes).dependencies_ == []


def test_a_voter_that_always_abstains_skips_structure_and_still_predicts() -> None:
    votes, y = votes_from(np.random.default_rng(4), 2000, TRUTH)
    votes[:, 4] = -1  # AMA reads abstain as 0: zero variance, the structure program is unbounded
    model = MetalLabelModel(2).fit(votes)
    assert model.structure_ is None and model.dependencies_ == []
    assert np.mean(model.predict(votes) == y) > 0.85


def test_a_known_class_balance_is_the_prior_and_the_default_is_uniform() -> None:
    votes, _ = votes_from(np.random.default_rng(5), 2000, TRUTH, prior=(0.8, 0.2))
    assert MetalLabelModel(2).fit(votes).class_balance_ == pytest.approx([0.5, 0.5])
    given = MetalLabelModel(2).fit(votes, class_balance=[8, 2])
    assert given.class_balance_ == pytest.approx([0.8, 0.2])
    everyone_abstains = np.full((1, 5), -1)
    assert given.predict_proba(everyone_abstains) == pytest.approx(np.array([[0.8, 0.2]]))


@pytest.mark.parametrize("learn_dependency", [False, True])
def test_fit_is_deterministic_under_a_seed(learn_dependency: bool) -> None:
    votes, _ = votes_from(np.random.default_rng(6), 1500, TRUTH, copies=(2, 3), copy_rate=0.7)
    first, again = (
        MetalLabelModel(2, seed=3, learn_dependency=learn_dependency).fit(votes).predict_proba(v)
        for v in (votes, votes)
    )
    assert np.array_equal(first, again)
    assert first.shape == (1500, 2) and np.allclose(first.sum(axis=1), 1.0)


def test_ties_never_predict_abstain() -> None:
    votes, _ = votes_from(np.random.default_rng(7), 1000, TRUTH)
    votes[:200] = -1  # nothing to go on: both classes equally likely under a uniform prior
    first = MetalLabelModel(2, tie_break="first").fit(votes).predict(votes)
    drawn = MetalLabelModel(2, seed=1).fit(votes).predict(votes)
    assert np.all(first[:200] == 0)
    assert 40 < drawn[:200].sum() < 160 and set(drawn.tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        (np.array([0, 1, 1]), "2-D"),
        (np.zeros((0, 3), dtype=int), "empty"),
        (np.array([[0, 2], [1, 1]]), "vote 2 at row 0, voter 1 is outside -1..1"),
        (np.array([[0.5, 1.0]]), "integers"),
    ],
)
def test_bad_votes_raise_value_error(votes: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=f"MetalLabelModel.fit: .*{message}"):
        MetalLabelModel(2).fit(votes)


def test_other_number_of_voters_unfitted_model_and_bad_balance_raise() -> None:
    model = MetalLabelModel(2)
    with pytest.raises(ValueError, match="call fit"):
        model.predict(np.zeros((2, 3), dtype=int))
    votes, _ = votes_from(np.random.default_rng(8), 200, TRUTH)
    model.fit(votes)
    with pytest.raises(ValueError, match="fitted on 5 voters, got 2 columns"):
        model.predict(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="class_balance must be 2 positive numbers"):
        model.fit(votes, class_balance=[1.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cardinality": 1}, "cardinality must be an int >= 2, got 1"),
        ({"tie_break": "bogus"}, "tie_break must be one of 'random', 'first', got 'bogus'"),
        ({"prec_init": 1.0}, r"prec_init must be in \(0, 1\), got 1.0"),
    ],
)
def test_bad_settings_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"MetalLabelModel: {message}"):
        MetalLabelModel(**kwargs)


def test_two_voters_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MetalLabelModel(2).fit(np.array([[0, 0], [1, 1], [0, 1]] * 10))
    assert any("2 voter(s)" in str(w.message) for w in caught)


def test_built_from_a_config() -> None:
    model = instantiate({"_target_": "ama/metal_label_model", "cardinality": 3, "seed": 4})
    assert isinstance(model, MetalLabelModel) and (model.cardinality, model.seed) == (3, 4)
