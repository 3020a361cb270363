"""A small yes/no task for the prompt-chain tests: examples, chains' demonstrations, config."""

from __future__ import annotations

from typing import Any

EXAMPLES = [
    {"input": "the train leaves at 5 pm", "context": "The train leaves at 5 pm.", "label": 1},
    {"input": "the sky is green", "context": "The sky is blue today.", "label": 0},
    {"input": "Tom has 7 apples", "context": "Tom had 3 apples and bought 4.", "label": 1},
]
LABELS = {"yes": 1, "no": 0}
QUESTION_DEMOS = [{"statement": "the movie was great", "question": "Was the movie great?"}]
ANSWER_DEMOS = [
    {"context": "The movie was great.", "question": "Was the movie great?", "answer": "Yes"},
    {"context": "It rained.", "question": "Is the sky green?", "answer": "Unknown"},
]
INSTRUCTIONS = [
    "Rewrite the statement as a question.",
    "Turn the statement into a yes/no question.",
    "Ask whether the statement is true.",
]


def chain_config(llm: Any, instruction: str) -> dict[str, Any]:
    """A config node for one `ama/chain` over the shared `llm` node."""
    return {
        "_target_": "ama/chain",
        "llm": llm,
        "labels": LABELS,
        "question_demos": QUESTION_DEMOS,
        "answer_demos": ANSWER_DEMOS,
        "question_instruction": instruction,
        "max_new_tokens": 8,
    }


def task_config(llm: dict[str, Any], aggregator: str = "ama/label_model") -> dict[str, Any]:
    """An `ama/task` config: three chains sharing one LLM node, aggregated by `aggregator`."""
    return {
        "_target_": "ama/task",
        "chains": [chain_config(llm, text) for text in INSTRUCTIONS],
        "aggregator": {"_target_": aggregator, "cardinality": 2},
        "examples": EXAMPLES,
    }
