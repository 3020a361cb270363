"""The local server's HTTP side: reads each request within `RequestLimits`, answers it or
refuses it with a JSON error, and keeps nothing of it afterwards."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from plugins.llm import _faults
from plugins.llm._wire import error_body, parse_request, response_body

if TYPE_CHECKING:
    from plugins.llm.server import LLMServer

__all__ = ["HTTPServer"]

logger = logging.getLogger("plugins.llm.server")

_ROUTES = {"/v1/completions": False, "/v1/chat/completions": True}  # path -> chat
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() takes "+5", " 5", "5_0"
_DISCARD_FACTOR = 16  # of max_body_bytes: what is read and dropped of an oversized body
_DISCARD_S = 2.0  # and for how long at most
_DISCARD_IDLE_S = 0.2  # a client silent this long is not sending the rest


class _Refused(Exception):
    """A request answered with an error ``status`` (the connection is then closed, after
    discarding up to ``unread`` bytes of a body left unread)."""

    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", unread: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.unread = unread


class HTTPServer(ThreadingHTTPServer):
    """One thread per connection, each handled by `_Handler` for ``app``; past
    ``max_connections`` open at once, a new connection gets 503 and is closed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: LLMServer) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._slots = threading.BoundedSemaphore(app.limits.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _answer_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _answer_busy(connection: socket.socket) -> None:
    """503 on a connection no thread will serve (read what it already sent, so that closing
    it does not reset it before the client reads the answer)."""
    message = "too many connections to this server; retry later"
    body = json.dumps(error_body(message, "server_busy")).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        connection.settimeout(_DISCARD_IDLE_S)
        connection.sendall(head.encode() + body)
        connection.recv(1 << 16)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer

    @property
    def app(self) -> LLMServer:
        return self.server.app

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.app.limits.read_timeout_s)  # bounds every read and write

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:  # keep nothing of an answered request (its Authorization header) on the handler
            self.headers = HTTPMessage()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, oversized headers, unknown
        method...) as JSON, closing the connection."""
        self.request_version = self.protocol_version  # not HTTP/0.9: that has no status line
        self._refuse(code, (message or HTTPStatus(code).phrase)[:200], "invalid_request_error")

    def do_GET(self) -> None:
        try:
            self._check_authorized()
            if self.path.rstrip("/") != "/v1/models":
                raise _Refused(HTTPStatus.NOT_FOUND, _no_route(self.path), "not_found")
        except _Refused as refusal:
            self._refuse(refusal.status, str(refusal), refusal.kind)
            return
        model = {"id": self.app.model_name, "object": "model", "owned_by": "corelib"}
        self._send_json(HTTPStatus.OK, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        try:
            self._answer_post()
        except _Refused as refusal:
            self._refuse(refusal.status, str(refusal), refusal.kind)
            self._discard(refusal.unread)
        except Exception:  # whatever went wrong, the client gets an answer
            logger.exception("request failed")
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error", "server_error")

    def _answer_post(self) -> None:
        self._check_authorized()
        raw = self._read_body()
        chat = _ROUTES.get(self.path.rstrip("/"))
        if chat is None:
            raise _Refused(HTTPStatus.NOT_FOUND, _no_route(self.path), "not_found")
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
            prompts, parameters, logprobs = parse_request(body, chat=chat)
            self.app.limits.check(prompts, parameters)
        except (ValueError, RecursionError) as error:  # WireError, invalid or too deep JSON
            self.app._record(self.path, None)
            deep = isinstance(error, RecursionError)
            message = "the JSON body is nested too deeply" if deep else str(error)
            raise _Refused(HTTPStatus.BAD_REQUEST, message) from None
        fault = self.app._record(self.path, prompts[0] if len(prompts) == 1 else None)
        if fault != _faults.OK and not self._inject(fault):
            return
        try:
            completions = self.app._batcher.generate(prompts, **parameters)
        except ValueError as error:
            raise _Refused(HTTPStatus.BAD_REQUEST, str(error)) from None
        except Exception as error:
            logger.exception("generation failed")
            message = f"generation failed: {type(error).__name__}: {str(error)[:500]}"
            raise _Refused(HTTPStatus.INTERNAL_SERVER_ERROR, message, "server_error") from None
        body = response_body(self.app.model_name, completions, chat=chat, logprobs=logprobs)
        self._send_json(HTTPStatus.OK, body)

    def _check_authorized(self) -> None:
        if not self.app._authorized(self.headers.get("Authorization")):
            message = "a valid API key is required (Authorization: Bearer KEY)"
            raise _Refused(HTTPStatus.UNAUTHORIZED, message, "invalid_api_key")

    def _read_body(self) -> bytes:
        """The body, exactly as long as its Content-Length says, or `_Refused`."""
        if "Transfer-Encoding" in self.headers:
            message = "chunked bodies are not supported: send a Content-Length"
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, message)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
        if len(set(lengths)) > 1 or not _DIGITS.fullmatch(lengths[0]):
            message = "Content-Length must be one non-negative decimal integer"
            raise _Refused(HTTPStatus.BAD_REQUEST, message)
        digits, limit = lengths[0].lstrip("0") or "0", self.app.limits.max_body_bytes
        if len(digits) > len(str(limit)) or int(digits) > limit:  # never int() 5,000 digits
            message = f"the request body is larger than this server's limit of {limit} bytes"
            unread = int(digits) if len(digits) <= 20 else limit
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, unread=unread)
        length = int(digits)
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            message = f"the body did not arrive within {self.app.limits.read_timeout_s:g} s"
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, message) from None
        if len(raw) < length:
            message = f"the body ended after {len(raw)} of {length} bytes"
            raise _Refused(HTTPStatus.BAD_REQUEST, message)
        return raw

    def _discard(self, unread: int) -> None:
        """Read and drop what the client still sends of a refused body, at most
        `_DISCARD_FACTOR` times the body limit, for at most `_DISCARD_S` seconds, until it is
        silent for `_DISCARD_IDLE_S`: a client that sends a whole body before reading can then
        read its answer instead of a reset."""
        left = min(unread, _DISCARD_FACTOR * self.app.limits.max_body_bytes)
        deadline = time.monotonic() + _DISCARD_S
        try:
            while left > 0 and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(min(remaining, _DISCARD_IDLE_S))
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:  # timed out or reset: close anyway
            return

    def _refuse(self, status: int, message: str, kind: str) -> None:
        """Answer ``status`` with a JSON error and close the connection."""
        self.close_connection = True
        self._send_json(status, error_body(message, kind), {"Connection": "close"})

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


def _no_route(path: str) -> str:
    return f"no route {path[:200]!r}"


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")
