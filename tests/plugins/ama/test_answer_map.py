"""The mapping from an answer's free text to a class or an abstain, and the prompt layout."""

from __future__ import annotations

import pytest

from plugins.ama._prompts import ABSTAIN, AnswerMap, few_shot


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", (1, "label")),
        ("  yes, it does.", (1, "label")),
        ("NO", (0, "label")),
        ("not sure", (2, "label")),  # the longest label wins over "no"
        ("Unknown.", (ABSTAIN, "unknown")),
        ("yesterday it rained", (ABSTAIN, "unmatched")),  # whole words only
        ("", (ABSTAIN, "unmatched")),
        ("maybe", (ABSTAIN, "unmatched")),
    ],
)
def test_answers_map_to_labels_or_abstain(text: str, expected: tuple[int, str]) -> None:
    mapping = AnswerMap({"yes": 1, "no": 0, "Not sure": 2})
    assert mapping.classify(text) == expected
    assert mapping.cardinality == 3


def test_bad_label_maps_are_errors() -> None:
    with pytest.raises(ValueError, match="labels is empty"):
        AnswerMap({})
    with pytest.raises(ValueError, match="class indices >= 0"):
        AnswerMap({"yes": -1})


def test_few_shot_layout() -> None:
    prompt = few_shot("Do it.", [{"a": "1", "b": "2"}], ("a", "b"), {"a": "3"})
    assert prompt == "Do it.\n\nA: 1\nB: 2\n\nA: 3\nB:"
