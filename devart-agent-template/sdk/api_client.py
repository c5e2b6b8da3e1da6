"""The agent-facing HTTP API of devart over the standard library (urllib), with its retry rules."""

from __future__ import annotations

import email.utils
import http.client
import json
import random as _random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ApiError

__all__ = ["ApiClient", "ApiResult", "backoff_seconds", "retry_after_seconds", "problem_detail"]

_NO_BODY = object()
USER_AGENT = "devart-agent-python/0.1"


@dataclass(frozen=True)
class ApiResult:
    """One answer: its status, its parsed JSON body, and its Retry-After header if any."""

    status: int
    body: Any
    retry_after: str | None = None


def backoff_seconds(
    attempt: int, *, base: float, cap: float, random: Callable[[], float] = _random.random
) -> float:
    """Exponential backoff with jitter: half to all of ``min(cap, base * 2**attempt)``, so agents
    that lost the API together do not come back in step.

    >>> 0.4 <= backoff_seconds(3, base=0.1, cap=2.0) <= 0.8
    True
    """
    return min(cap, base * 2 ** min(attempt, 30)) * (0.5 + random() / 2)


def retry_after_seconds(header: str | None, cap: float, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), clamped to
    ``[0, cap]``; None when there is no usable header.

    >>> retry_after_seconds("2", 60, time.time())
    2.0
    """
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text))
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return min(cap, max(0.0, seconds))


def problem_detail(body: Any) -> str | None:
    """The ``detail`` (or ``title``) of a problem+json body, if it has one."""
    if isinstance(body, dict):
        text = body.get("detail", body.get("title"))
        if isinstance(text, str):
            return text
    return None


def _parse_body(raw: bytes) -> Any:
    # A body that is not JSON (a proxy's HTML 502, a cut answer) becomes a problem with its text.
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return {"detail": text[:500]}


class ApiClient:
    """Calls the devart API with the agent's key. Thread-safe: every call is its own request.

    Network errors, 5xx and 429 answers are retried (``retries`` attempts in all, default 5) with a
    jittered backoff, honouring Retry-After up to 2 s: the agent's calls are idempotent or fenced,
    so a retry is safe; a call that is not (provisioning a sandbox, running a command) passes
    ``retries=1``. When the attempts run out, a network error is raised as it came and a 5xx as an
    :class:`ApiError`; a 429 is returned. Every other answer is returned to the caller.

    Example::

        api = ApiClient("http://127.0.0.1:8787", "dva_…")
        me = api.call("GET", "/api/agents/me").body
    """

    def __init__(
        self, api_base_url: str, api_key: str, *, retries: int = 5, timeout: float = 30.0
    ) -> None:
        self.base = api_base_url.rstrip("/")
        self._key = api_key
        self.retries = retries
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        retries: int | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> ApiResult:
        """Sends one request (retrying as the class says) and returns the answer.

        ``cancel``, when set, ends the waits between attempts early and raises the last error.
        Raises ``ValueError`` for a body that is not JSON (NaN included) before sending anything.
        """
        data = None
        if body is not _NO_BODY:
            data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
        attempts = max(1, retries if retries is not None else self.retries)
        last_error: BaseException | None = None
        wait: float | None = None
        for attempt in range(attempts):
            if attempt > 0:
                delay = wait if wait is not None else backoff_seconds(attempt, base=0.1, cap=2.0)
                if cancel is not None:
                    if cancel.wait(delay):
                        break
                else:
                    time.sleep(delay)
            wait = None
            try:
                status, raw, retry_after = self._send(method, path, data, timeout or self.timeout)
            except (OSError, http.client.HTTPException) as error:
                last_error = error
                continue
            parsed = _parse_body(raw)
            last_attempt = attempt == attempts - 1
            if status >= 500 or (status == 429 and not last_attempt):
                wait = retry_after_seconds(retry_after, 2.0, time.time())
                last_error = ApiError(
                    status, parsed, f"{method} {path} answered {status}", retry_after
                )
                continue
            return ApiResult(status, parsed, retry_after)
        if last_error is None:
            last_error = ApiError(0, None, f"{method} {path} was cancelled")
        raise last_error

    def _send(
        self, method: str, path: str, data: bytes | None, timeout: float
    ) -> tuple[int, bytes, str | None]:
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get("Retry-After")
        except urllib.error.HTTPError as error:
            # 4xx and 5xx come as an exception carrying the answer.
            with error:
                return error.code, error.read(), error.headers.get("Retry-After")


def expect_ok(result: ApiResult, what: str) -> Any:
    """The body of a 2xx answer; otherwise raises an :class:`ApiError` with the problem's detail."""
    if 200 <= result.status < 300:
        return result.body
    raise ApiError(
        result.status,
        result.body,
        f"{what} answered {result.status}: {problem_detail(result.body) or ''}",
    )
