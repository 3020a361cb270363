"""The OpenAI wire format (completions and chat), for the client and the local server alike."""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

from plugins.llm._text import cut_at_stop
from plugins.llm._types import Completion

DEFAULT_MAX_TOKENS = 256


class WireError(ValueError):
    """A request or response body that does not follow the OpenAI format."""


def request_body(
    model: str,
    prompt: str,
    *,
    chat: bool,
    logprobs: bool,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop: list[str] | None,
    seed: int | None,
) -> dict[str, Any]:
    """The JSON body asking ``model`` for ``n`` completions of one prompt."""
    body: dict[str, Any] = {
        "model": model,
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_new_tokens,
    }
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
        if logprobs:
            body["logprobs"] = True
    else:
        body["prompt"] = prompt
        if logprobs:
            body["logprobs"] = 1
    if stop:
        body["stop"] = list(stop)
    if seed is not None:
        body["seed"] = seed
    return body


def parse_completions(
    raw: bytes, *, chat: bool, n: int, stop: list[str] | None
) -> list[Completion]:
    """The ``n`` completions in a response body, in index order; `WireError` if malformed."""
    try:
        choices = sorted(json.loads(raw)["choices"], key=lambda choice: choice["index"])
        completions = [_parse_choice(choice, chat, stop) for choice in choices]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise WireError(
            f"malformed response body ({type(error).__name__}: {error}): {raw[:200]!r}"
        ) from None
    if len(completions) != n:
        raise WireError(f"expected {n} choices, got {len(completions)}: {raw[:200]!r}")
    return completions


def _parse_choice(choice: dict[str, Any], chat: bool, stop: list[str] | None) -> Completion:
    text = choice["message"]["content"] if chat else choice["text"]
    if not isinstance(text, str):
        raise TypeError(f"text is {type(text).__name__}, not str")
    text, stopped = cut_at_stop(text, stop)  # some servers leave the stop string in
    finish_reason = "length" if choice.get("finish_reason") == "length" and not stopped else "stop"
    logprobs = choice.get("logprobs")
    token_logprobs = None
    if logprobs and chat:
        token_logprobs = [float(entry["logprob"]) for entry in logprobs["content"]]
    elif logprobs:
        token_logprobs = [float(lp) for lp in logprobs["token_logprobs"]]
    return Completion(text, token_logprobs, finish_reason)


def parse_request(body: Any, *, chat: bool) -> tuple[list[str], dict[str, Any], bool]:
    """A request body's prompts, the `LLM.generate` keyword arguments, and whether log-probs
    were asked for; `WireError` naming the offending field otherwise."""
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            raise WireError("'messages' must be a list of objects with a string 'content'")
        prompts = ["\n".join(m["content"] for m in messages)]
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompt = [prompt]
        if not isinstance(prompt, list) or not all(isinstance(p, str) for p in prompt):
            raise WireError("'prompt' must be a string or a list of strings")
        prompts = prompt
    raw_stop = body.get("stop")
    stop = [raw_stop] if isinstance(raw_stop, str) else raw_stop
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise WireError("'stop' must be a string or a list of strings")
    parameters = {
        "n": _integer(body, "n", 1, low=1),
        "temperature": _number(body, "temperature", 1.0),
        "top_p": _number(body, "top_p", 1.0),
        "max_new_tokens": _integer(body, "max_tokens", DEFAULT_MAX_TOKENS, low=1),
        "stop": stop,
        "seed": _integer(body, "seed", None, low=-_SEED_BOUND, high=_SEED_BOUND - 1),
    }
    if not 0.0 <= parameters["temperature"] <= 2.0:
        raise WireError("'temperature' must be between 0 and 2")
    if not 0.0 < parameters["top_p"] <= 1.0:
        raise WireError("'top_p' must be greater than 0 and at most 1")
    return prompts, parameters, bool(body.get("logprobs"))


_SEED_BOUND = 1 << 63  # seeds are 64-bit signed integers, as in OpenAI's API


def _integer(
    body: dict[str, Any], key: str, default: Any, low: int, high: int | None = None
) -> Any:
    value = _checked(key, body.get(key), int, default)
    if value is not None and (value < low or (high is not None and value > high)):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise WireError(f"'{key}' must be {bounds}")
    return value


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = _checked(key, body.get(key), (int, float), default)
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise WireError(f"'{key}' must be a finite number")
    return number


def _checked(key: str, value: Any, kind: type | tuple[type, ...], default: Any) -> Any:
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WireError(f"'{key}' has the wrong type: {type(value).__name__}")
    return value


def response_body(
    model: str, completions: list[list[Completion]], *, chat: bool, logprobs: bool
) -> dict[str, Any]:
    """The response to a request whose prompts got ``completions`` (choices prompt-major)."""
    flat = [c for per_prompt in completions for c in per_prompt]
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [_choice(index, c, chat, logprobs) for index, c in enumerate(flat)],
    }


def _choice(index: int, completion: Completion, chat: bool, logprobs: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "finish_reason": completion.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": completion.text}
    else:
        choice["text"] = completion.text
    values = completion.token_logprobs
    if logprobs and values is not None:
        choice["logprobs"] = (
            {"content": [{"logprob": lp} for lp in values]} if chat else {"token_logprobs": values}
        )
    else:
        choice["logprobs"] = None
    return choice


def error_body(message: str, kind: str) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": kind}}
