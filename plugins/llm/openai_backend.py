"""`OpenAILLM`: any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI), over stdlib HTTP.

One request per prompt (its ``n`` samples together), at most ``max_concurrency`` in flight, each
retried on 429/5xx/connection errors/timeouts. No third-party HTTP client: ``urllib`` and a
thread pool are all this needs.

Credentials: the variable that holds the key (``api_key_env``) is a trusted-only parameter, and
the key goes only to a host the user named outside an untrusted config file (see `OpenAILLM`).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from corelib import Trusted, safe_mode
from plugins.llm._retry import Backoff, is_retryable, parse_retry_after
from plugins.llm._types import Completion, check_parameters
from plugins.llm._wire import WireError, parse_completions, request_body

__all__ = ["DEFAULT_BASE_URL", "Backoff", "OpenAILLM"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

logger = logging.getLogger(__name__)

_CONNECTION_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would carry the Authorization header to the new address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class _Retry(Exception):
    """A transient failure: try again after ``retry_after`` seconds at the earliest."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _GiveUp(Exception):
    """A failure that retrying cannot fix (4xx other than 429, malformed response)."""


class OpenAILLM:
    """Completions (``chat=False``) or chat completions from ``base_url`` (e.g.
    ``http://127.0.0.1:8000/v1``; OpenAI's API by default).

    The API key is read from the environment variable ``api_key_env`` at each request (none
    is sent when it is unset) and is never stored, logged or shown. ``api_key_env`` is
    trusted-only. The key is sent only to a host the user named: the default endpoint, any
    ``base_url`` in a trusted build (Python, a ``.py`` config), and in safe mode a ``base_url``
    set outside the file (a command-line override) or whose host is in ``--allow-host``
    (`corelib.safe_mode`). Otherwise requests go without the key, with a warning.

    A prompt that still fails after ``1 + max_retries`` requests gets an empty list, is logged
    at WARNING and counted in ``failures`` (cumulative over calls). ``logprobs=False`` stops
    asking for token log-probabilities, for servers that refuse them.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key_env: Annotated[str, Trusted] = "OPENAI_API_KEY",
        chat: bool = False,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        logprobs: bool = True,
    ) -> None:
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError(
                "llm/openai: need max_concurrency >= 1, max_retries >= 0 and timeout > 0, got "
                f"{max_concurrency}, {max_retries} and {timeout}"
            )
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"llm/openai: base_url must be an http(s) URL, got {base_url!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self._sends_key = _key_may_go_to(self.base_url, api_key_env)
        self.chat = chat
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.logprobs = logprobs
        self.failures = 0
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._url = self.base_url + ("/chat/completions" if chat else "/completions")

    def __repr__(self) -> str:
        return (
            f"OpenAILLM(model={self.model!r}, base_url={self.base_url!r}, chat={self.chat}, "
            f"api_key_env={self.api_key_env!r})"
        )

    @property
    def identity(self) -> dict[str, Any]:
        """What makes this backend's outputs what they are (the cache keys on it; no key)."""
        return {
            "backend": "openai",
            "model": self.model,
            "base_url": self.base_url,
            "chat": self.chat,
            "logprobs": self.logprobs,
        }

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """Generate ``n`` completions for each prompt (see `plugins.llm.LLM`)."""
        check_parameters(n, temperature, top_p, max_new_tokens)

        def one(index: int) -> list[Completion]:
            body = request_body(
                self.model,
                prompts[index],
                chat=self.chat,
                logprobs=self.logprobs,
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                stop=stop,
                seed=seed,
            )
            return self._generate_one(index, json.dumps(body).encode(), n, stop)

        if not prompts:
            return []
        with ThreadPoolExecutor(min(self.max_concurrency, len(prompts)), "llm-openai") as pool:
            return list(pool.map(one, range(len(prompts))))

    def _generate_one(
        self, index: int, body: bytes, n: int, stop: list[str] | None
    ) -> list[Completion]:
        """Up to ``1 + max_retries`` requests for prompt ``index``; [] if all fail."""
        requests = 0
        while True:
            requests += 1
            try:
                return parse_completions(self._post(body), chat=self.chat, n=n, stop=stop)
            except WireError as error:
                return self._fail(index, requests, f"malformed response from {self._url}: {error}")
            except _GiveUp as error:
                return self._fail(index, requests, str(error))
            except _Retry as error:
                if requests > self.max_retries:
                    return self._fail(index, requests, str(error))
                delay = self.backoff.delay(requests - 1, error.retry_after, self._rng)
                logger.info("llm/openai: prompt %d: %s; retrying in %.2fs", index, error, delay)
                time.sleep(delay)

    def _post(self, body: bytes) -> bytes:
        """One request; raises `_Retry` or `_GiveUp` on failure."""
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self._sends_key else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            reason = f"HTTP {error.code} from {self._url}{detail}"
            if is_retryable(error.code):
                raise _Retry(reason, parse_retry_after(error.headers.get("Retry-After"))) from None
            raise _GiveUp(reason) from None
        except TimeoutError:
            raise _Retry(f"no answer from {self._url} within {self.timeout}s") from None
        except _CONNECTION_ERRORS as error:
            raise _Retry(f"connection to {self._url} failed: {error!r}") from None

    def _fail(self, index: int, requests: int, reason: str) -> list[Completion]:
        with self._lock:
            self.failures += 1
        logger.warning(
            "llm/openai: prompt %d failed after %d request(s): %s", index, requests, reason
        )
        return []


def _key_may_go_to(base_url: str, api_key_env: str) -> bool:
    """Whether the user named ``base_url``'s host outside an untrusted config; if not, warns
    (when there is a key to withhold)."""
    policy = safe_mode()
    if policy is None or "base_url" in policy.trusted or base_url == DEFAULT_BASE_URL:
        return True
    if policy.allows_host(base_url):
        return True
    if os.environ.get(api_key_env):
        logger.warning(
            "llm/openai: the config file points base_url at %r, a host not named outside it; "
            "requests go without the API key from %s (name the host with --allow-host "
            "HOST[:PORT], or set base_url on the command line, to send it)",
            urllib.parse.urlsplit(base_url).netloc[:200],
            api_key_env,
        )
    return False


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's error message, if its body has one."""
    try:
        message = json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return ""
    return f": {str(message)[:200]}"
