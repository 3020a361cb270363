"""OpenAILLM against the real local server (tiny GPT-2), with injected faults."""

from __future__ import annotations

import itertools
import logging

import pytest

from plugins.llm import LLM
from plugins.llm.openai_backend import Backoff, OpenAILLM
from plugins.llm.server import FaultPlan, LLMServer
from plugins.llm.transformers_backend import TransformersLLM

pytestmark = pytest.mark.timeout(60)

PROMPTS = ["Question: Tom has 3 apples.", "hi", "Answer: the answer is", "Context: 5 pm."]
FAST = Backoff(base_s=0.01, max_s=0.05)


def client(server: LLMServer, **options) -> OpenAILLM:
    options.setdefault("backoff", FAST)
    options.setdefault("timeout", 10.0)
    return OpenAILLM("local", base_url=server.base_url, **options)


def requests_for(server: LLMServer, prompt: str) -> list:
    return [r for r in server.requests if r.prompt == prompt]


@pytest.mark.parametrize("chat", [False, True])
def test_matches_the_served_model_in_both_modes(tiny_llm: TransformersLLM, chat: bool) -> None:
    options = dict(max_new_tokens=6, stop=["zz"])
    with LLMServer(tiny_llm) as server:
        llm = client(server, chat=chat)
        assert isinstance(llm, LLM)
        greedy = llm.generate(PROMPTS, n=2, **options)
        sampled = llm.generate(PROMPTS, n=2, temperature=1.0, seed=5, **options)
        [[plain]] = client(server, chat=chat, logprobs=False).generate(PROMPTS[:1], **options)
    assert plain.token_logprobs is None and plain.text == greedy[0][0].text
    for remote, local in [
        (greedy, tiny_llm.generate(PROMPTS, n=2, **options)),
        (sampled, tiny_llm.generate(PROMPTS, n=2, temperature=1.0, seed=5, **options)),
    ]:
        assert [[c.text for c in cs] for cs in remote] == [[c.text for c in cs] for cs in local]
        assert [[c.finish_reason for c in cs] for cs in remote] == [
            [c.finish_reason for c in cs] for cs in local
        ]
        assert remote[0][0].token_logprobs == pytest.approx(local[0][0].token_logprobs, abs=1e-4)
    assert llm.failures == 0


def test_429_is_retried_after_retry_after(tiny_llm: TransformersLLM) -> None:
    faults = FaultPlan(by_prompt={"hi": ("429", "429")}, retry_after=0.3)
    with LLMServer(tiny_llm, faults=faults) as server:
        llm = client(server)
        results = llm.generate(PROMPTS, max_new_tokens=4)
    assert all(len(r) == 1 for r in results) and llm.failures == 0
    times = [r.received_at for r in requests_for(server, "hi")]
    assert len(times) == 3
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))
    assert all(len(requests_for(server, p)) == 1 for p in PROMPTS if p != "hi")


def test_persistent_500_gives_an_empty_result_counted_and_logged(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with LLMServer(tiny_llm, faults=FaultPlan(by_prompt={"hi": ("500",) * 10})) as server:
        llm = client(server, max_retries=3)
        with caplog.at_level(logging.WARNING, logger="plugins.llm.openai_backend"):
            results = llm.generate(PROMPTS, max_new_tokens=4)
    assert results[1] == [] and all(len(r) == 1 for i, r in enumerate(results) if i != 1)
    assert len(requests_for(server, "hi")) == 4  # 1 + max_retries
    assert llm.failures == 1
    assert "prompt 1 failed after 4 request(s): HTTP 500" in caplog.text


def test_backoff_grows_between_retries(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm, faults=FaultPlan.first(3, "503")) as server:
        llm = client(server, backoff=Backoff(base_s=0.1, max_s=1.0))
        [[completion]] = llm.generate(["hi"], max_new_tokens=4)
    times = [r.received_at for r in server.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4 and completion.finish_reason == "length"
    assert [g >= 0.05 * 2**i for i, g in enumerate(gaps)] == [
        True,
        True,
        True,
    ]  # >= half of 0.1*2^i


def test_timeouts_and_dropped_connections_are_retried(tiny_llm: TransformersLLM) -> None:
    faults = FaultPlan(by_prompt={"hi": ("sleep",), "?": ("disconnect", "disconnect")}, sleep_s=2.0)
    with LLMServer(tiny_llm, faults=faults) as server:
        llm = client(server, timeout=0.5)
        results = llm.generate(["hi", "?"], max_new_tokens=4)
    assert [len(r) for r in results] == [1, 1] and llm.failures == 0
    assert len(requests_for(server, "hi")) == 2 and len(requests_for(server, "?")) == 3


@pytest.mark.parametrize("fault", ["400", "404", "422", "499"])
def test_other_4xx_fail_at_once(tiny_llm: TransformersLLM, fault: str) -> None:
    with LLMServer(tiny_llm, faults=FaultPlan(by_prompt={"hi": (fault,)})) as server:
        llm = client(server)
        results = llm.generate(["hi", "?"], max_new_tokens=4)
    assert results[0] == [] and len(results[1]) == 1
    assert len(requests_for(server, "hi")) == 1 and llm.failures == 1


def test_redirects_are_not_followed(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with LLMServer(tiny_llm, faults=FaultPlan.first(1, "302")) as server:
        llm = client(server)
        with caplog.at_level(logging.WARNING, logger="plugins.llm.openai_backend"):
            assert llm.generate(["hi"], max_new_tokens=4) == [[]]
    assert "failed after 1 request(s): HTTP 302" in caplog.text  # following it would end in a 404


def test_malformed_json_is_a_recorded_failure(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with LLMServer(tiny_llm, faults=FaultPlan.first(1, "malformed")) as server:
        llm = client(server)
        with caplog.at_level(logging.WARNING, logger="plugins.llm.openai_backend"):
            assert llm.generate(["hi"], max_new_tokens=4) == [[]]
    assert llm.failures == 1 and len(server.requests) == 1
    assert "prompt 0 failed after 1 request(s): malformed response" in caplog.text


def test_concurrency_is_bounded(tiny_llm: TransformersLLM) -> None:
    faults = FaultPlan(schedule=("sleep",) * 4, sleep_s=0.4)
    with LLMServer(tiny_llm, faults=faults) as server:
        llm = client(server, max_concurrency=2)
        assert all(len(r) == 1 for r in llm.generate(PROMPTS, max_new_tokens=2))
    times = sorted(r.received_at for r in server.requests)
    assert times[2] - times[0] >= 0.4  # the third request waited for a slot


def test_the_api_key_is_sent_but_never_shown(
    tiny_llm: TransformersLLM, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("CORELIB_TEST_KEY", secret)
    faults = FaultPlan(by_prompt={"hi": ("500", "401"), "?": ("malformed",)}, retry_after=0.01)
    with LLMServer(tiny_llm, faults=faults, api_key=secret) as server:  # 401 without the key
        llm = client(server, api_key_env="CORELIB_TEST_KEY")
        with caplog.at_level(logging.DEBUG):
            results = llm.generate(["hi", "?", "ok"], max_new_tokens=2)
    assert [len(r) for r in results] == [0, 0, 1] and len(server.requests) == 4
    assert llm.failures == 2
    shown = caplog.text + repr(llm) + str(vars(llm))
    assert secret not in shown and "CORELIB_TEST_KEY" in repr(llm)


def test_unreachable_server_fails_every_prompt_without_raising(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm) as server:
        base_url = server.base_url  # the port is closed once the server stops
    llm = OpenAILLM("local", base_url=base_url, max_retries=1, backoff=FAST, timeout=2.0)
    assert llm.generate(["a", "b"], max_new_tokens=2) == [[], []]
    assert llm.failures == 2
