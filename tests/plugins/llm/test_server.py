"""The OpenAI-compatible server: routes, request validation, batching, faults, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from plugins.llm import Completion
from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.server import FaultPlan, LLMServer
from plugins.llm.testing import serve
from plugins.llm.transformers_backend import TransformersLLM

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[3]


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_models_route_and_unknown_routes(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm, model_name="tiny") as server:
        with urllib.request.urlopen(server.base_url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == "tiny"
        status, body = post(server.base_url + "/embeddings", {})
    assert status == 404 and "no route" in body["error"]["message"]


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("/completions", {"prompt": 3}, "'prompt' must be a string"),
        ("/completions", {"prompt": "hi", "n": "2"}, "'n' has the wrong type"),
        ("/completions", {"prompt": "hi", "n": 0}, "n must be >= 1"),
        ("/chat/completions", {"messages": "hi"}, "'messages' must be a list"),
        ("/completions", [], "must be a JSON object"),
        ("/completions", {"prompt": "hi", "stop": [1]}, "'stop' must be a string or a list"),
    ],
)
def test_bad_requests_are_400_with_a_message(
    tiny_llm: TransformersLLM, route: str, body: object, message: str
) -> None:
    with LLMServer(tiny_llm) as server:
        status, answer = post(server.base_url + route, body)
    assert status == 400 and message in answer["error"]["message"]


def test_a_list_of_prompts_gets_choices_prompt_major(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm) as server:
        body = {"prompt": ["hi", "ho"], "n": 2, "max_tokens": 3, "temperature": 0}
        status, answer = post(server.base_url + "/completions", body)
    expected = tiny_llm.generate(["hi", "ho"], n=2, max_new_tokens=3)
    assert status == 200 and answer["choices"][0]["logprobs"] is None
    assert [c["text"] for c in answer["choices"]] == [c.text for cs in expected for c in cs]


class GatedLLM:
    """A real backend whose first call waits until ``expected`` requests reached the server,
    so the others queue up behind it; records the prompts and parameters of each call."""

    def __init__(self, llm: TransformersLLM, expected: int) -> None:
        self.llm, self.expected = llm, expected
        self.server: LLMServer | None = None
        self.calls: list[tuple[int, int]] = []  # (prompts, max_new_tokens)

    def generate(self, prompts: list[str], **parameters) -> list[list[Completion]]:
        while not self.calls and len(self.server.requests) < self.expected:
            threading.Event().wait(0.01)
        self.calls.append((len(prompts), parameters["max_new_tokens"]))
        return self.llm.generate(prompts, **parameters)


def test_concurrent_requests_are_batched(tiny_llm: TransformersLLM) -> None:
    prompts = [f"Question {i}?" for i in range(8)]
    gated = GatedLLM(tiny_llm, expected=len(prompts))
    with LLMServer(gated) as server:
        gated.server = server
        results = OpenAILLM("local", base_url=server.base_url).generate(prompts, max_new_tokens=4)
    assert len(gated.calls) <= 2 and sum(n for n, _ in gated.calls) == len(prompts)
    expected = tiny_llm.generate(prompts, max_new_tokens=4)
    assert [[c.text for c in cs] for cs in results] == [[c.text for c in cs] for cs in expected]


def test_requests_with_other_parameters_are_batched_apart(tiny_llm: TransformersLLM) -> None:
    lengths = [2, 3, 2, 3, 2, 3]
    gated = GatedLLM(tiny_llm, expected=len(lengths))
    with LLMServer(gated) as server:
        gated.server = server
        llm = OpenAILLM("local", base_url=server.base_url)
        with ThreadPoolExecutor(len(lengths)) as pool:
            jobs = [
                pool.submit(llm.generate, [f"Q{i}"], max_new_tokens=length)
                for i, length in enumerate(lengths)
            ]
            results = [job.result() for job in jobs]
    assert [len(r[0][0].token_logprobs) for r in results] == lengths  # each got its own answer
    assert len(gated.calls) <= 3 and sorted({m for _, m in gated.calls}) == [2, 3]
    assert sum(n for n, _ in gated.calls) == len(lengths)


def test_a_bad_prompt_does_not_fail_its_batch(tiny_llm: TransformersLLM) -> None:
    prompts = ["hi", "x" * 600, "ho", "hu"]  # the second is too long for the model
    with serve(tiny_llm) as base_url:
        llm = OpenAILLM("local", base_url=base_url)
        results = llm.generate(prompts, max_new_tokens=4)
    assert [len(r) for r in results] == [1, 0, 1, 1] and llm.failures == 1


def test_unknown_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'boom'"):
        FaultPlan.first(2, "boom")
    with pytest.raises(ValueError, match="unknown fault '42'"):
        FaultPlan(by_prompt={"p": ("ok", "42")})


@pytest.mark.slow
def test_runs_as_a_module(tiny_model_dir: Path) -> None:
    command = [sys.executable, "-m", "plugins.llm.server", str(tiny_model_dir), "--port", "0"]
    command += ["--device", "cpu", "--fault", "503", "--retry-after", "0"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if found := re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line):
                break
        else:
            pytest.fail(f"the server exited with {process.wait()} before serving")
        llm = OpenAILLM("local", base_url=found[1], max_retries=1)
        [[completion]] = llm.generate(["hi"], max_new_tokens=3)  # after one injected 503
        assert completion.finish_reason == "length" and llm.failures == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
