"""The OpenAI-compatible server: routes, request validation, batching, faults, the CLI, and
hostile requests (raw sockets) that must each get a JSON 4xx while the server keeps serving."""

from __future__ import annotations

import gc
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from plugins.llm import Completion
from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.server import FaultPlan, LLMServer, RequestLimits
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


def served_model_ids(base_url: str) -> tuple[str, str]:
    """The id ``/v1/models`` lists and the ``model`` a completion reports."""
    with urllib.request.urlopen(base_url + "/models", timeout=10) as response:
        [listed] = json.loads(response.read())["data"]
    status, answer = post(base_url + "/completions", {"prompt": "hi", "max_tokens": 1})
    assert status == 200
    return listed["id"], answer["model"]


def test_models_route_and_unknown_routes(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm, model_name="tiny") as server:
        assert served_model_ids(server.base_url) == ("tiny", "tiny")
        status, body = post(server.base_url + "/embeddings", {})
    assert status == 404 and "no route" in body["error"]["message"]


def test_the_model_id_is_the_model_directory_name(
    tiny_llm: TransformersLLM, tiny_model_dir: Path
) -> None:
    with LLMServer(tiny_llm) as server:
        assert server.model_name == tiny_model_dir.name != "local"
        assert served_model_ids(server.base_url) == (tiny_model_dir.name, tiny_model_dir.name)


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("/completions", {"prompt": 3}, "'prompt' must be a string"),
        ("/completions", {"prompt": "hi", "n": "2"}, "'n' has the wrong type"),
        ("/completions", {"prompt": "hi", "n": 0}, "'n' must be at least 1"),
        ("/chat/completions", {"messages": "hi"}, "'messages' must be a list"),
        ("/completions", [], "must be a JSON object"),
        ("/completions", {"prompt": "hi", "stop": [1]}, "'stop' must be a string or a list"),
        ("/completions", {"prompt": "hi", "temperature": 10**400}, "must be a finite number"),
        ("/completions", {"prompt": "hi", "temperature": 2.5}, "between 0 and 2"),
        ("/completions", {"prompt": "hi", "top_p": 0}, "'top_p' must be greater than 0"),
        ("/completions", {"prompt": "hi", "seed": 2**64}, "'seed' must be between"),
        ("/completions", {"prompt": "hi", "max_tokens": 0}, "'max_tokens' must be at least 1"),
        ("/completions", {"prompt": "hi", "n": 10**400}, "'n' is over this server's limit of"),
        ("/completions", {"prompt": "hi", "max_tokens": 5000}, "'max_tokens' is over this"),
        ("/completions", {"prompt": ["hi"] * 65}, "the number of prompts is over this"),
        ("/completions", {"prompt": "hi", "stop": ["x"] * 17}, "number of stop strings is over"),
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
    """A real backend whose first call waits until ``expected`` requests reached the server
    (and a little more), so the others queue up behind it; records the prompts and parameters
    of each call."""

    def __init__(self, llm: TransformersLLM, expected: int) -> None:
        self.llm, self.expected = llm, expected
        self.server: LLMServer | None = None
        self.calls: list[tuple[int, int]] = []  # (prompts, max_new_tokens)

    def generate(self, prompts: list[str], **parameters) -> list[list[Completion]]:
        if not self.calls:
            while self.server.received < self.expected:
                threading.Event().wait(0.01)
            threading.Event().wait(0.2)  # a request is counted just before it is queued
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
    command += ["--device", "cpu", "--fault", "503", "--retry-after", "0", "--max-n", "2"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if found := re.search(r"as '([^']+)' at (http://127\.0\.0\.1:\d+/v1)", line):
                break
        else:
            pytest.fail(f"the server exited with {process.wait()} before serving")
        llm = OpenAILLM("local", base_url=found[2], max_retries=1)
        [[completion]] = llm.generate(["hi"], max_new_tokens=3)  # after one injected 503
        assert completion.finish_reason == "length" and llm.failures == 0
        assert found[1] == tiny_model_dir.name  # the id it logs is the id it reports
        assert served_model_ids(found[2]) == (tiny_model_dir.name, tiny_model_dir.name)
        status, answer = post(found[2] + "/completions", {"prompt": "hi", "n": 3})
        assert status == 400 and "limit of 2" in answer["error"]["message"]
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- hostile requests, on raw sockets ------------------------------------------------------


def exchange(base_url: str, request: bytes, *, timeout: float = 5.0) -> tuple[int, dict, bool]:
    """Send raw bytes; return the status, the JSON body, and whether the server then closed
    the connection (within ``timeout``)."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
        closed = sock.recv(1) == b""
    assert response.getheader("Content-Type") == "application/json"
    return response.status, body, closed


def post_head(length: str | None = None, *extra: str) -> bytes:
    lines = ["POST /v1/completions HTTP/1.1", "Host: 127.0.0.1", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def with_body(body: bytes) -> bytes:
    return post_head(str(len(body))) + body


HOSTILE = {
    "negative length": (post_head("-1"), 400, "Content-Length must be one non-negative"),
    "signed length": (post_head("+5") + b"{}", 400, "Content-Length must be one"),
    "two lengths": (post_head("2", "Content-Length: 3") + b"{}", 400, "Content-Length must"),
    "400-digit length": (post_head("9" * 400), 413, "larger than this server's limit"),
    "huge length": (post_head(str(10**12)), 413, "larger than this server's limit of 1048576"),
    "zero-padded length": (post_head("0" * 30 + "2") + b"{}", 400, "'prompt' must be a string"),
    "no length": (post_head(None), 411, "a Content-Length is required"),
    "chunked": (post_head(None, "Transfer-Encoding: chunked"), 411, "chunked bodies"),
    "100k-deep body": (with_body(b"[" * 100_000), 400, "nested too deeply"),
    "100k-deep prompt": (with_body(b'{"prompt": ' + b"[" * 100_000), 400, "nested too deeply"),
    "400-digit temperature": (
        with_body(b'{"prompt": "hi", "temperature": 1' + b"0" * 400 + b"}"),
        400,
        "'temperature' must be a finite number",
    ),
    "5000-digit n": (with_body(b'{"prompt": "hi", "n": ' + b"9" * 5000 + b"}"), 400, "digits"),
    "NaN top_p": (with_body(b'{"prompt": "hi", "top_p": NaN}'), 400, "NaN is not a JSON number"),
    "not UTF-8": (with_body(b'{"prompt": "\xff"}'), 400, "utf-8"),
    "garbage request line": (b"GARBAGE\r\n\r\n", 400, "Bad request"),
    "unknown method": (b"PUT /v1/completions HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501, ""),
}


def test_hostile_requests_get_a_json_4xx_and_a_closed_connection(
    tiny_llm: TransformersLLM,
) -> None:
    with LLMServer(tiny_llm) as server:
        for name, (request, expected, message) in HOSTILE.items():
            started = time.monotonic()
            status, body, closed = exchange(server.base_url, request)
            assert (name, status, closed) == (name, expected, True)
            assert message in body["error"]["message"], name
            assert time.monotonic() - started < 2.0, name
        assert served_model_ids(server.base_url)  # still serving


def test_a_stalled_body_gets_408_and_blocks_no_one(tiny_llm: TransformersLLM) -> None:
    limits = RequestLimits(read_timeout_s=3.0)
    with LLMServer(tiny_llm, limits=limits) as server, ThreadPoolExecutor(1) as pool:
        stalled = pool.submit(exchange, server.base_url, post_head("10") + b"{}")  # 2 of 10
        status, _ = post(server.base_url + "/completions", {"prompt": "hi", "max_tokens": 1})
        assert status == 200 and not stalled.done()  # served while the other one stalls
        status, body, closed = stalled.result(timeout=10)
    assert status == 408 and closed and "did not arrive within 3 s" in body["error"]["message"]


def test_a_client_that_sends_an_oversized_body_first_still_reads_413(
    tiny_llm: TransformersLLM,
) -> None:
    with LLMServer(tiny_llm) as server:  # 8 MiB: more than the sockets buffer, under 16 x 1 MiB
        request = urllib.request.Request(server.base_url + "/completions", b" " * (8 << 20))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413


def test_connections_past_the_limit_get_503_until_one_closes(tiny_llm: TransformersLLM) -> None:
    limits = RequestLimits(max_connections=2)
    with LLMServer(tiny_llm, limits=limits) as server:
        url = urlsplit(server.base_url)
        idle = [socket.create_connection((url.hostname, url.port), timeout=5) for _ in range(2)]
        status, body, closed = exchange(server.base_url, with_body(b"{}"))
        assert (status, closed) == (503, True) and "too many connections" in str(body)
        for connection in idle:
            connection.close()
        deadline = time.monotonic() + 5
        while exchange(server.base_url, with_body(b"{}"))[0] == 503:  # their threads end
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert exchange(server.base_url, with_body(b"{}"))[0] == 400  # served again


def test_limits_are_configurable(tiny_llm: TransformersLLM) -> None:
    limits = RequestLimits(max_body_bytes=100, max_n=2)
    with LLMServer(tiny_llm, limits=limits) as server:
        status, body, _ = exchange(server.base_url, with_body(b" " * 101))
        assert status == 413 and "limit of 100 bytes" in body["error"]["message"]
        status, body = post(server.base_url + "/completions", {"prompt": "hi", "n": 3})
        assert status == 400 and "'n' is over this server's limit of 2" in body["error"]["message"]
    with pytest.raises(ValueError, match="max_n must be > 0"):
        RequestLimits(max_n=0)


def test_the_api_key_is_checked(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm, api_key="sk-right") as server:
        for authorization in [None, "Bearer sk-wrong", "Basic sk-right", "Bearer "]:
            extra = [f"Authorization: {authorization}"] if authorization else []
            request = post_head("2", *extra) + b"{}"
            status, body, closed = exchange(server.base_url, request)
            assert (status, closed) == (401, True)
            assert "sk-right" not in json.dumps(body)
        body = b'{"prompt": "hi", "max_tokens": 1}'
        request = post_head(str(len(body)), "Authorization: Bearer sk-right", "Connection: close")
        request += body
        assert exchange(server.base_url, request, timeout=30)[0] == 200


def strings_holding(needle: str) -> list[object]:
    """Every object the garbage collector knows that holds a str or bytes containing
    ``needle`` (other than ``needle`` itself), directly or in a tuple (which it may not track)."""

    def holds(value: object) -> bool:
        if type(value) is tuple:
            return any(holds(item) for item in value)
        if type(value) is str:
            return value is not needle and needle in value
        return type(value) is bytes and needle.encode() in value

    gc.collect()
    return [o for o in gc.get_objects() if any(holds(v) for v in gc.get_referents(o))]


def test_nothing_of_an_answered_request_is_kept(tiny_llm: TransformersLLM) -> None:
    secret, prompt = f"sk-{uuid.uuid4().hex}", f"prompt-{uuid.uuid4().hex}"
    with LLMServer(tiny_llm, api_key=secret, history=0) as server:
        before = threading.active_count()
        url = urlsplit(server.base_url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        for chat in [False, True]:  # keep-alive: the handler outlives each request
            body = {"messages": [{"content": prompt}]} if chat else {"prompt": prompt}
            path = "/v1/chat/completions" if chat else "/v1/completions"
            connection.request(
                "POST",
                path,
                json.dumps({**body, "max_tokens": 2}),
                {"Authorization": "Bearer " + secret},
            )
            assert connection.getresponse().read() and server.received == (2 if chat else 1)
        assert not server.requests
        assert strings_holding(secret) == [] and strings_holding(prompt) == []  # connection open
        connection.close()
        while threading.active_count() > before:
            time.sleep(0.01)
        assert strings_holding(secret) == [] and strings_holding(prompt) == []


def test_history_keeps_the_last_requests_without_their_headers(tiny_llm: TransformersLLM) -> None:
    with LLMServer(tiny_llm, history=2) as server:
        llm = OpenAILLM("local", base_url=server.base_url)
        llm.generate(["a", "b", "c"], max_new_tokens=1)
    assert server.received == 3 and len(server.requests) == 2
    assert {r.prompt for r in server.requests} < {"a", "b", "c"}
    assert not hasattr(server.requests[0], "bearer")


def test_the_command_line_refuses_an_unset_api_key_variable(tiny_model_dir: Path) -> None:
    command = [sys.executable, "-m", "plugins.llm.server", str(tiny_model_dir)]
    command += ["--api-key-env", "CORELIB_TEST_UNSET_KEY"]
    env = {k: v for k, v in os.environ.items() if k != "CORELIB_TEST_UNSET_KEY"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the environment variable CORELIB_TEST_UNSET_KEY is not set" in done.stderr
