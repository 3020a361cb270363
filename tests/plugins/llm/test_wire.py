"""Reading OpenAI response bodies, including the malformed ones."""

from __future__ import annotations

import json

import pytest

from plugins.llm import Completion
from plugins.llm._wire import WireError, parse_completions, request_body


def encode(choices: object) -> bytes:
    return json.dumps({"choices": choices}).encode()


def test_completions_in_index_order_with_logprobs() -> None:
    raw = encode(
        [
            {"index": 1, "text": "b", "finish_reason": "length", "logprobs": None},
            {
                "index": 0,
                "text": "a",
                "finish_reason": "stop",
                "logprobs": {"token_logprobs": [-1]},
            },
        ]
    )
    assert parse_completions(raw, chat=False, n=2, stop=None) == [
        Completion("a", [-1.0], "stop"),
        Completion("b", None, "length"),
    ]


def test_chat_logprobs_and_a_stop_string_left_in_by_the_server() -> None:
    content = {"content": [{"logprob": -0.5}, {"logprob": -0.25}]}
    message = {"role": "assistant", "content": "x = 1\n\nQ: next"}
    raw = encode([{"index": 0, "message": message, "finish_reason": "length", "logprobs": content}])
    [completion] = parse_completions(raw, chat=True, n=1, stop=["\n\n"])
    assert completion == Completion("x = 1", [-0.5, -0.25], "stop")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"choices": [{"index": 0, "text": "trunc', "malformed response body"),
        (b"\xff\xfe", "malformed response body"),
        (encode([{"index": 0, "text": None}]), "text is NoneType"),
        (b'{"error": "overloaded"}', "KeyError"),
        (encode([{"index": 0, "text": "a"}]), "expected 2 choices, got 1"),
    ],
)
def test_malformed_bodies_are_wire_errors(raw: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        parse_completions(raw, chat=False, n=2, stop=None)


def test_request_bodies_ask_for_logprobs_and_leave_out_unset_options() -> None:
    common = dict(n=2, temperature=0.7, top_p=0.9, max_new_tokens=5)
    body = request_body("m", "hi", chat=False, logprobs=True, stop=None, seed=None, **common)
    assert body == {"model": "m", "prompt": "hi", "logprobs": 1, "n": 2, "temperature": 0.7,
                    "top_p": 0.9, "max_tokens": 5}  # fmt: skip
    chat = request_body("m", "hi", chat=True, logprobs=True, stop=["\n"], seed=3, **common)
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and chat["logprobs"] is True
    assert (chat["stop"], chat["seed"]) == (["\n"], 3)
    for chat in (False, True):
        plain = request_body("m", "hi", chat=chat, logprobs=False, stop=None, seed=None, **common)
        assert "logprobs" not in plain
