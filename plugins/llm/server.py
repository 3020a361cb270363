"""A real OpenAI-compatible HTTP server over any `LLM`, on 127.0.0.1, with fault injection.

Serves ``POST /v1/completions``, ``POST /v1/chat/completions`` and ``GET /v1/models``;
concurrent requests are batched into one ``generate`` call. Runnable::

    python -m plugins.llm.server MODEL_DIR --port 8000 [--fault 429 --fault ok ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from plugins.llm import _faults
from plugins.llm._batcher import Batcher
from plugins.llm._faults import FaultPlan
from plugins.llm._types import LLM
from plugins.llm._wire import error_body, parse_request, response_body

__all__ = ["FaultPlan", "LLMServer", "ServedRequest", "main"]

logger = logging.getLogger(__name__)

_ROUTES = {"/v1/completions": False, "/v1/chat/completions": True}  # path -> chat


@attrs.frozen
class ServedRequest:
    """One request the server received: what it asked, which fault it got, when (monotonic)."""

    path: str
    prompt: str | None
    fault: str
    received_at: float
    bearer: str | None


class LLMServer:
    """Serves ``llm`` at ``base_url`` (``http://127.0.0.1:PORT/v1``) between `start` and `stop`
    (or as a context manager). ``requests`` records every request, in arrival order."""

    def __init__(
        self,
        llm: LLM,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "local",
        faults: FaultPlan | None = None,
        max_batch_prompts: int = 64,
    ) -> None:
        self.llm = llm
        self.model_name = model_name
        self._host = host
        self.faults = faults or FaultPlan()
        self.requests: list[ServedRequest] = []
        self._lock = threading.Lock()
        self._prompt_counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._batcher = Batcher(llm, max_prompts=max_batch_prompts)
        self._http = _HTTPServer((host, port), self)
        self._thread = threading.Thread(target=self._http.serve_forever, name="llm-server")

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what `OpenAILLM` takes as ``base_url``."""
        return f"http://{self._host}:{self._http.server_port}/v1"

    def start(self) -> LLMServer:
        """Start serving on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests, release the port and the worker."""
        self._stopping.set()
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join()
        self._http.server_close()
        self._batcher.close()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, path: str, prompt: str | None, bearer: str | None) -> str:
        """Log the request and return the fault it gets."""
        with self._lock:
            prompt_index = self._prompt_counts.get(prompt, 0) if prompt is not None else 0
            if prompt is not None:
                self._prompt_counts[prompt] = prompt_index + 1
            fault = self.faults.fault_for(len(self.requests), prompt, prompt_index)
            self.requests.append(ServedRequest(path, prompt, fault, time.monotonic(), bearer))
        return fault


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: LLMServer) -> None:
        super().__init__(address, _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    @property
    def app(self) -> LLMServer:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._send_json(HTTPStatus.NOT_FOUND, error_body(f"no route {self.path}", "not_found"))
            return
        model = {"id": self.app.model_name, "object": "model", "owned_by": "corelib"}
        self._send_json(HTTPStatus.OK, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        chat = _ROUTES.get(self.path.rstrip("/"))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if chat is None:
            self._send_json(HTTPStatus.NOT_FOUND, error_body(f"no route {self.path}", "not_found"))
            return
        try:
            prompts, parameters, logprobs = parse_request(json.loads(raw or b"null"), chat=chat)
        except ValueError as error:  # WireError or invalid JSON
            self._record(None)
            self._send_json(HTTPStatus.BAD_REQUEST, error_body(str(error), "invalid_request_error"))
            return
        fault = self._record(prompts[0] if len(prompts) == 1 else None)
        if fault != _faults.OK and not self._inject(fault):
            return
        try:
            completions = self.app._batcher.generate(prompts, **parameters)
        except ValueError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, error_body(str(error), "invalid_request_error"))
            return
        except Exception as error:
            logger.exception("generation failed")
            self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR, error_body(str(error), "server_error")
            )
            return
        body = response_body(self.app.model_name, completions, chat=chat, logprobs=logprobs)
        self._send_json(HTTPStatus.OK, body)

    def _record(self, prompt: str | None) -> str:
        authorization = self.headers.get("Authorization", "")
        bearer = authorization.removeprefix("Bearer ") if authorization else None
        return self.app._record(self.path, prompt, bearer)

    def _inject(self, fault: str) -> bool:
        """Apply ``fault``; True when the request should still be answered normally."""
        plan = self.app.faults
        if fault == _faults.SLEEP:
            self.app._stopping.wait(plan.sleep_s)
            return True
        if fault == _faults.DISCONNECT:
            self.close_connection = True
            return False
        if fault == _faults.MALFORMED:
            self._send(
                HTTPStatus.OK, b'{"choices": [{"index": 0, "text": "trunc', "application/json"
            )
            return False
        status = int(fault)
        headers = {}
        if 300 <= status < 400:
            headers["Location"] = "/v1/moved"
        if status in (429, 503) and plan.retry_after is not None:
            headers["Retry-After"] = f"{plan.retry_after:g}"
        body = error_body(f"injected fault {status}", "injected_fault")
        self._send_json(status, body, headers)  # any code, known to HTTPStatus or not
        return False

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out)
            self.close_connection = True


def main(argv: list[str] | None = None) -> None:
    """Serve a model directory through `TransformersLLM` until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m plugins.llm.server", description=__doc__)
    parser.add_argument("model_dir", help="a Hugging Face model directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model-name", default="local", help="the model id clients send")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass")
    parser.add_argument("--fault", action="append", default=[], help="fault for the next request")
    parser.add_argument(
        "--retry-after", type=float, default=None, help="seconds, sent with 429/503"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from plugins.llm.transformers_backend import TransformersLLM

    llm = TransformersLLM(
        args.model_dir, device=args.device, dtype=args.dtype, batch_size=args.batch_size
    )
    faults = FaultPlan(schedule=args.fault, retry_after=args.retry_after)
    server = LLMServer(
        llm, host=args.host, port=args.port, model_name=args.model_name, faults=faults
    )
    with server:
        logger.info("serving %s at %s", args.model_dir, server.base_url)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("stopping")


if __name__ == "__main__":
    main()
