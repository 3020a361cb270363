"""A real OpenAI-compatible HTTP server over any `LLM`, on 127.0.0.1, with fault injection.

Serves ``POST /v1/completions``, ``POST /v1/chat/completions`` and ``GET /v1/models``;
concurrent requests are batched into one ``generate`` call. Every request is bounded
(`RequestLimits`) and every bad one gets a JSON 4xx. Runnable::

    python -m plugins.llm.server MODEL_DIR --port 8000 [--fault 429 --fault ok ...]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import logging
import os
import threading
import time
from pathlib import Path

import attrs

from plugins.llm._batcher import Batcher
from plugins.llm._faults import FaultPlan
from plugins.llm._handler import HTTPServer
from plugins.llm._limits import RequestLimits
from plugins.llm._types import LLM

__all__ = ["FaultPlan", "LLMServer", "RequestLimits", "ServedRequest", "main", "model_id"]

logger = logging.getLogger(__name__)


@attrs.frozen
class ServedRequest:
    """One request the server received: its path, its prompt (when it had exactly one), the
    fault it got and when it arrived (monotonic). Never its headers or bearer token."""

    path: str
    prompt: str | None
    fault: str
    received_at: float


def model_id(llm: LLM) -> str:
    """The id a server reports for ``llm``: its model directory's name, else ``"local"``."""
    model_dir = getattr(llm, "model_dir", None)
    return Path(model_dir).name if isinstance(model_dir, str | os.PathLike) else "local"


class LLMServer:
    """Serves ``llm`` at ``base_url`` (``http://127.0.0.1:PORT/v1``) between `start` and `stop`
    (or as a context manager).

    ``model_name`` is the model id it reports (default: `model_id`). ``limits`` bound each
    request. With ``api_key``, a request without ``Authorization: Bearer <api_key>`` gets 401.
    ``requests`` holds the last ``history`` requests (`ServedRequest`, oldest first; 0 keeps
    none); ``received`` counts them all.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        faults: FaultPlan | None = None,
        max_batch_prompts: int = 64,
        limits: RequestLimits | None = None,
        api_key: str | None = None,
        history: int = 100,
    ) -> None:
        self.llm = llm
        self.model_name = model_name if model_name is not None else model_id(llm)
        self._host = host
        self.faults = faults or FaultPlan()
        self.limits = limits or RequestLimits()
        self._key_digest = _digest(api_key) if api_key is not None else None
        self.requests: collections.deque[ServedRequest] = collections.deque(maxlen=history)
        self.received = 0
        self._lock = threading.Lock()
        self._prompt_counts: dict[str, int] = {}  # only prompts that ``faults.by_prompt`` names
        self._stopping = threading.Event()
        self._batcher = Batcher(llm, max_prompts=max_batch_prompts)
        self._http = HTTPServer((host, port), self)
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

    def _authorized(self, authorization: str | None) -> bool:
        if self._key_digest is None:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        given = _digest(token) if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(given, self._key_digest)

    def _record(self, path: str, prompt: str | None) -> str:
        """Count and log the request and return the fault it gets."""
        with self._lock:
            prompt_index = 0
            if prompt is not None and prompt in self.faults.by_prompt:
                prompt_index = self._prompt_counts.get(prompt, 0)
                self._prompt_counts[prompt] = prompt_index + 1
            fault = self.faults.fault_for(self.received, prompt, prompt_index)
            self.received += 1
            self.requests.append(ServedRequest(path, prompt, fault, time.monotonic()))
        return fault


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def main(argv: list[str] | None = None) -> None:
    """Serve a model directory through `TransformersLLM` until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m plugins.llm.server", description=__doc__)
    parser.add_argument("model_dir", help="a Hugging Face model directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--model-name",
        "--model-id",
        default=None,
        help="the model id reported to clients (default: the model directory's name)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass")
    parser.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="require the API key held by this environment variable",
    )
    parser.add_argument(
        "--history", type=int, default=0, help="recent requests kept in memory (for tests)"
    )
    for field in attrs.fields(RequestLimits):  # --max-body-bytes, --max-n ... (see RequestLimits)
        option, default = "--" + field.name.replace("_", "-"), field.default
        parser.add_argument(option, type=type(default), default=default)
    parser.add_argument("--fault", action="append", default=[], help="fault for the next request")
    parser.add_argument(
        "--retry-after", type=float, default=None, help="seconds, sent with 429/503"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api_key = None
    if args.api_key_env is not None:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"--api-key-env: the environment variable {args.api_key_env} is not set")

    from plugins.llm.transformers_backend import TransformersLLM

    llm = TransformersLLM(
        args.model_dir, device=args.device, dtype=args.dtype, batch_size=args.batch_size
    )
    limits = RequestLimits(**{f.name: getattr(args, f.name) for f in attrs.fields(RequestLimits)})
    server = LLMServer(
        llm,
        host=args.host,
        port=args.port,
        model_name=args.model_name,
        faults=FaultPlan(schedule=args.fault, retry_after=args.retry_after),
        limits=limits,
        api_key=api_key,
        history=args.history,
    )
    with server:
        logger.info("serving %s as %r at %s", args.model_dir, server.model_name, server.base_url)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("stopping")


if __name__ == "__main__":
    main()
