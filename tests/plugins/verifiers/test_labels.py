"""Path and step labelling: DiVeRSe's sub-multiset rule on hand cases, and the parsers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from plugins.verifiers.labels import ArithmeticStepLabeller, LabeledPath, PathLabeller
from plugins.verifiers.parsing import RegexAnswer, RegexResults, StepSplitter

GOLD = "3 + 4 = 7\n7 * 2 = 14\nThe answer is 14."


def test_parsers_read_steps_answers_and_results() -> None:
    assert StepSplitter()("a = 1\n\n  b = 2 \n") == ["a = 1", "b = 2"]
    assert StepSplitter(separator=r"\. ")("One. Two. Three") == ["One", "Two", "Three"]
    assert RegexAnswer()("5 + 5 = 10\nThe answer is 1,000.") == "1000"
    assert RegexAnswer()("The answer is 3. No, the answer is 4.0") == "4"
    assert RegexAnswer()("no final line") is None
    assert RegexResults()("12 + 7 = 19") == ["19"]
    assert RegexResults()("The answer is 31.") == ["31"]
    assert RegexResults()("Sam has apples.") == []
    with pytest.raises(ValueError, match="invalid regular expression"):
        RegexAnswer(pattern="(")


def test_step_rule_hand_cases() -> None:
    labeller = ArithmeticStepLabeller()
    gold = GOLD.split("\n")
    # right first step, wrong second: {7} <= {7, 14, 14}; {7, 15} is not
    assert labeller.label_steps("q", ["3 + 4 = 7", "7 * 2 = 15", "The answer is 15."], [gold]) == [
        True,
        False,
        False,
    ]
    # a step without results adds nothing; before any result a step is incorrect
    assert labeller.label_steps("q", ["Let us think.", "3 + 4 = 7"], [gold]) == [False, True]
    # multiset, not set: 7 twice is not a sub-multiset of one 7
    assert labeller.label_steps("q", ["3 + 4 = 7", "0 + 7 = 7"], [gold]) == [True, False]
    # any positive path may cover the prefix; order does not matter
    other = ["4 * 2 = 8", "8 + 6 = 14", "The answer is 14."]
    assert labeller.label_steps("q", ["2 * 4 = 8", "3 + 4 = 7"], [gold, other]) == [True, False]
    assert labeller.label_steps("q", ["7 * 2 = 14", "3 + 4 = 7"], [gold]) == [True, True]


def test_path_labeller_puts_the_gold_solution_first_as_a_positive() -> None:
    paths = [
        "3 + 4 = 7\n7 * 2 = 14\nThe answer is 14.",
        "3 + 4 = 7\n7 + 2 = 9\nThe answer is 9.",
        "3 * 4 = 12\n12 + 2 = 14\nThe answer is 14.",
        "3 + 4 = 7\nI am not sure.",
    ]
    examples = PathLabeller().label("What is (3 + 4) * 2?", GOLD, paths)
    assert [ex.correct for ex in examples] == [True, True, False, True, False]
    assert examples[0].steps == tuple(GOLD.split("\n"))
    assert examples[0].step_labels == (True, True, True)
    assert examples[2].step_labels == (True, False, False)
    assert examples[3].step_labels == (True,) * 3  # a correct answer makes every step correct
    assert examples[4].step_labels == (True, True)  # no answer: wrong path, steps by the rule


def test_path_labeller_with_an_extractor_that_never_matches_raises_clearly() -> None:
    labeller = PathLabeller(answer=RegexAnswer(pattern=r"#### (\d+)"))
    with pytest.raises(ValueError, match="no answer found in the gold solution"):
        labeller.label("q", GOLD, [GOLD])
    # with an explicit gold answer, unparseable paths are wrong, never silently right
    examples = labeller.label("q", GOLD, [GOLD], gold_answer="14")
    assert [ex.correct for ex in examples] == [True, False]


def test_a_gold_answer_that_disagrees_with_the_gold_solution_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"gold_answer=14 but the gold solution .* reads '14'"):
        PathLabeller().label("q", GOLD, [GOLD], gold_answer=14)
    assert PathLabeller().label("q", GOLD, [GOLD], gold_answer="14")[1].correct


def test_labeled_path_checks_its_lengths() -> None:
    with pytest.raises(ValueError, match="2 steps but 1 step labels"):
        LabeledPath("q", ("a", "b"), True, (True,))


def test_step_labeller_is_pluggable() -> None:
    class FirstStepOnly:
        def label_steps(
            self, question: str, steps: Sequence[str], positives: Sequence[Sequence[str]]
        ) -> list[bool]:
            return [k == 0 for k in range(len(steps))]

    examples = PathLabeller(step_labeller=FirstStepOnly()).label("q", GOLD, ["1 = 1\n2 = 2"])
    assert examples[1].step_labels == (True, False)
