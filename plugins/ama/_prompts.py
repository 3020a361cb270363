"""Prompt text for AMA chains, and the mapping from an answer's free text to a label."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

ABSTAIN = -1

QUESTION_INSTRUCTION = "Rewrite the statement as a question."
ANSWER_INSTRUCTION = (
    'Answer the question from the context. If the context has no evidence, answer "Unknown".'
)


QUESTION_FORMAT = "Statement: {statement}\nQuestion: {question}"
ANSWER_FORMAT = "Context: {context}\nQuestion: {question}\nAnswer: {answer}"


def template_fields(template: str) -> list[str]:
    """The `{field}` names of a demonstration template, in order; ValueError on anything but
    plain names (no format specs, conversions, attributes or positional fields)."""
    fields = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"template field {{{name}}} must be a plain name like {{question}}")
        fields.append(name)
    if not fields:
        raise ValueError(f"template {template!r} has no {{field}}")
    return fields


def few_shot(
    instruction: str,
    demos: Sequence[Mapping[str, str]],
    template: str,
    query: Mapping[str, str],
) -> str:
    """An instruction, worked demonstrations, then the query with its last field left open.

    Each demonstration is `template` filled in (e.g. `"Statement: {statement}\nQuestion:
    {question}"`); the query is the template up to its last field (trailing spaces dropped),
    for the model to complete. Blocks are separated by a blank line; an empty instruction is
    left out.
    """
    fields = template_fields(template)
    blocks = [instruction.strip()] if instruction.strip() else []
    for index, demo in enumerate(demos):
        missing = [field for field in fields if field not in demo]
        if missing:
            raise ValueError(f"demonstration {index} lacks field(s) {missing}; has {sorted(demo)}")
        blocks.append(template.format_map(demo))
    head = template[: template.rindex("{" + fields[-1] + "}")].rstrip(" ")
    blocks.append(head.format_map(query))
    return "\n\n".join(blocks)


class AnswerMap:
    """Turns an answer's free text into a class (0..k-1) or ABSTAIN.

    The text is lower-cased and stripped of surrounding whitespace and punctuation; it maps to
    the label whose word(s) it starts with (longest match first). Text starting with an
    `unknown` phrase, empty text and text that matches nothing all abstain; `classify` says
    which of these happened.
    """

    def __init__(self, labels: Mapping[str, int], unknown: Sequence[str] = ("unknown",)) -> None:
        if not labels:
            raise ValueError("AnswerMap: labels is empty; give e.g. {'yes': 1, 'no': 0}")
        bad = {
            word: label for word, label in labels.items() if not isinstance(label, int) or label < 0
        }
        if bad:
            raise ValueError(f"AnswerMap: labels must map to class indices >= 0, got {bad}")
        self.labels = {_normalise(word): label for word, label in labels.items()}
        self.unknown = tuple(_normalise(word) for word in unknown)
        self.cardinality = max(self.labels.values()) + 1
        self._by_length = sorted(self.labels, key=len, reverse=True)

    def classify(self, text: str) -> tuple[int, str]:
        """`(label, how)`, how being "label", "unknown" or "unmatched" (the last two abstain)."""
        norm = _normalise(text)
        if any(_starts_with(norm, phrase) for phrase in self.unknown):
            return ABSTAIN, "unknown"
        for word in self._by_length:
            if _starts_with(norm, word):
                return self.labels[word], "label"
        return ABSTAIN, "unmatched"


def _normalise(text: str) -> str:
    return " ".join(text.lower().strip().strip(string.punctuation + string.whitespace).split())


def _starts_with(text: str, phrase: str) -> bool:
    return re.match(re.escape(phrase) + r"\b", text) is not None
