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
    prompt = few_shot("Do it.", [{"a": "1", "b": "2"}], "A: {a}\nB: {b}", {"a": "3"})
    assert prompt == "Do it.\n\nA: 1\nB: 2\n\nA: 3\nB:"
    # No instruction, a multi-line output field: the query keeps the newline before it.
    prompt = few_shot("", [{"q": "1+1", "a": "2"}], "Q: {q}\nA:\n{a}", {"q": "2+2"})
    assert prompt == "Q: 1+1\nA:\n2\n\nQ: 2+2\nA:\n"
    with pytest.raises(ValueError, match="must be a plain name"):
        few_shot("", [], "Q: {q!r}", {})
