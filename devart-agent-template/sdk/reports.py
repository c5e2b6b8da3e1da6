"""Holding a finished task's outcome until the platform confirms it (as the TypeScript SDK's
``reports.ts`` does)."""

from __future__ import annotations

import http.client
import logging
import random as _random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .api_client import ApiClient, backoff_seconds, problem_detail, retry_after_seconds
from .errors import ApiError

__all__ = ["Report", "ReportEnd", "Reporter", "classify_report_status"]

Verdict = Literal["confirmed", "lost", "revoked", "refused", "retry"]


@dataclass
class Report:
    """A finished attempt's outcome: ``complete`` (result, cost) or ``failure`` (error, retryable)."""

    kind: Literal["complete", "failure"]
    task_id: str
    attempt: int
    result: Any = None
    has_result: bool = False
    cost: Any = None
    error: str = ""
    retryable: bool = True
    details: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        if self.kind == "complete":
            body: dict[str, Any] = {"attempt": self.attempt}
            if self.has_result:
                body["result"] = self.result
            if self.cost is not None:
                body["cost"] = self.cost
            return body
        body = {"error": self.error, "retryable": self.retryable, "attempt": self.attempt}
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class ReportEnd:
    """How holding a report ended.

    ``confirmed``: the platform recorded it (``kind`` says what: a refused result becomes a
    failure). ``lost``: the attempt is no longer the agent's (409/404/403/410). ``revoked``: the
    agent's key was refused (401). ``refused``: even a bare failure report was refused (400).
    ``abandoned``: given up without an answer (stop past its grace, or a heartbeat said the task
    was lost).
    """

    outcome: Literal["confirmed", "lost", "revoked", "refused", "abandoned"]
    kind: str | None = None
    status: int | None = None
    detail: str | None = None


def classify_report_status(status: int) -> Verdict:
    """What the platform's answer to one try means: 2xx confirmed; 401 the key is refused;
    403/404/409/410 the attempt is not the agent's (any more); 408, 425, 429 and 5xx are
    temporary; any other 4xx refuses the data, which a retry would not change.

    >>> classify_report_status(503)
    'retry'
    """
    if 200 <= status < 300:
        return "confirmed"
    if status == 401:
        return "revoked"
    if status in (403, 404, 409, 410):
        return "lost"
    if status in (408, 425, 429) or status >= 500:
        return "retry"
    return "refused"


_NUL_OR_LONE_SURROGATE = re.compile("\x00|[\ud800-\udfff]")


def _bare_failure(report: Report) -> Report:
    """The smallest failure report the platform should accept: a clean, bounded message, no details."""
    error = _NUL_OR_LONE_SURROGATE.sub("\ufffd", report.error)[:8192] or "failed"
    return Report("failure", report.task_id, report.attempt, error=error, retryable=report.retryable)


@dataclass
class _Answer:
    status: int | None = None
    detail: str | None = None
    retry_after: str | None = None
    error: BaseException | None = None


@dataclass
class _Pending:
    report: Report
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    end: ReportEnd | None = None


class Reporter:
    """Holds every finished outcome until the platform answers for it.

    ``report()`` blocks the calling thread (a worker, whose concurrency slot stays taken: an agent
    that cannot report takes no new work). A try that meets a network error, a 5xx, a 408/425/429
    is repeated — after Retry-After when the server sent one (up to ``max_retry_after`` s), never
    sooner than a jittered backoff of 0.25 s doubling to ``max_backoff`` s — for as long as the
    agent runs. It ends when the platform confirms the report, says the attempt is no longer the
    agent's (409/404), or refuses the agent's key (401: every held outcome is dropped and
    ``on_revoked`` called). A completion whose data the platform refuses (400) is reported as a
    non-retryable failure carrying the server's detail; a failure report refused is sent once more
    bare, then given up. While the API is unreachable it logs one warning, and one line when
    reports go through again.
    """

    def __init__(
        self,
        api: ApiClient,
        logger: logging.Logger,
        *,
        max_backoff: float = 5.0,
        max_retry_after: float = 60.0,
        on_revoked: Callable[[], None] | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._api = api
        self._log = logger
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._on_revoked = on_revoked
        self._random = random
        self._lock = threading.Condition()
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._revoked = False
        self._outage_since: float | None = None

    @property
    def pending(self) -> int:
        """Outcomes held now."""
        with self._lock:
            return len(self._pending)

    @property
    def revoked(self) -> bool:
        return self._revoked

    def holds(self, task_id: str, attempt: int) -> bool:
        with self._lock:
            return (task_id, attempt) in self._pending

    def report(self, report: Report) -> ReportEnd:
        """Reports until settled and returns how it ended (never raises). A second report of the
        same attempt waits for the first and returns its end."""
        key = (report.task_id, report.attempt)
        with self._lock:
            existing = self._pending.get(key)
            if existing is None:
                entry = self._pending[key] = _Pending(report)
        if existing is not None:
            existing.done.wait()
            return existing.end or ReportEnd("abandoned")
        try:
            entry.end = self._hold(entry)
        except Exception as error:  # never lose the worker to a bug in here
            self._log.exception("reporting task %s failed", report.task_id)
            entry.end = ReportEnd("abandoned", detail=str(error))
        finally:
            entry.done.set()
            with self._lock:
                del self._pending[key]
                self._lock.notify_all()
        return entry.end

    def drop(self, task_id: str, attempt: int, reason: str) -> None:
        """Stops reporting one attempt (a heartbeat said it is no longer the agent's)."""
        with self._lock:
            entry = self._pending.get((task_id, attempt))
        if entry is not None:
            entry.reason = reason
            entry.stop.set()

    def drain(self, timeout: float) -> int:
        """Waits until nothing is held, at most ``timeout`` s; returns how many are still held."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return len(self._pending)

    def abandon_all(self, reason: str) -> None:
        """Gives up every held outcome (shutdown past the grace, or the key revoked)."""
        with self._lock:
            entries = list(self._pending.values())
        for entry in entries:
            entry.reason = reason
            entry.stop.set()

    # -- one report ---------------------------------------------------------------------------

    def _send(self, report: Report) -> _Answer:
        kind = "complete" if report.kind == "complete" else "report-failure"
        try:
            res = self._api.call(
                "POST", f"/api/tasks/{report.task_id}/{kind}", report.body(), retries=1
            )
        except (TypeError, ValueError) as error:
            # The body cannot be sent as JSON (NaN, an object json cannot encode): like a 400,
            # trying again would not change it.
            return _Answer(status=400, detail=f"not JSON: {error}")
        except ApiError as error:
            return _Answer(error=error, retry_after=error.retry_after)
        except (OSError, http.client.HTTPException) as error:
            return _Answer(error=error)
        return _Answer(res.status, problem_detail(res.body), res.retry_after)

    def _unreachable(self, answer: _Answer) -> None:
        with self._lock:
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
            held = len(self._pending)
        if answer.status is None:
            reason = (
                f"answered {answer.error.status}"
                if isinstance(answer.error, ApiError)
                else type(answer.error).__name__ + (f": {answer.error}" if str(answer.error) else "")
            )
        else:
            reason = f"answered {answer.status}"
        self._log.warning(
            "API unreachable (%s); holding %d outcome(s) until it confirms them", reason, held
        )

    def _reachable(self) -> None:
        with self._lock:
            if self._outage_since is None:
                return
            seconds = time.monotonic() - self._outage_since
            self._outage_since = None
            held = len(self._pending)
        self._log.info(
            "API reachable again after %.1f s; reporting %d held outcome(s)", seconds, held
        )

    def _hold(self, entry: _Pending) -> ReportEnd:
        report = entry.report
        retried_bare = False
        tries = 0
        while True:
            if self._revoked:
                return ReportEnd("revoked")
            if entry.stop.is_set():
                return ReportEnd("abandoned", detail=entry.reason)
            answer = self._send(report)
            verdict: Verdict = (
                "retry" if answer.status is None else classify_report_status(answer.status)
            )
            if verdict == "retry":
                self._unreachable(answer)
                # At least what the server asked for, never faster than the backoff.
                asked = retry_after_seconds(answer.retry_after, self._max_retry_after, time.time())
                own = backoff_seconds(tries, base=0.25, cap=self._max_backoff, random=self._random)
                entry.stop.wait(max(asked or 0.0, own))
                tries += 1
                continue
            self._reachable()
            status = answer.status
            assert status is not None
            where = f"task {report.task_id} attempt {report.attempt}"
            if verdict == "confirmed":
                return ReportEnd("confirmed", kind=report.kind, status=status)
            if verdict == "lost":
                if tries > 0 and report.kind == "complete" and "DONE" in (answer.detail or ""):
                    # A try that got no answer may have been applied: the likely reason it is DONE.
                    self._log.info(
                        "%s is DONE already (an earlier try that got no answer went through, most likely)",
                        where,
                    )
                else:
                    self._log.warning(
                        "report of %s refused: the task is no longer this agent's (%s)",
                        where,
                        answer.detail or status,
                    )
                return ReportEnd("lost", status=status, detail=answer.detail)
            if verdict == "revoked":
                self._revoke()
                return ReportEnd("revoked", status=status)
            # refused: the data, not the moment, is the problem.
            if report.kind == "complete":
                self._log.error(
                    "the platform refused the result of %s (%s); reporting a failure instead",
                    where,
                    answer.detail or status,
                )
                report = _bare_failure(
                    Report(
                        "failure",
                        report.task_id,
                        report.attempt,
                        error=f"the platform refused the result: {answer.detail or f'status {status}'}",
                        retryable=False,
                    )
                )
                retried_bare = True
                continue
            if not retried_bare:
                self._log.error(
                    "the platform refused the failure report of %s (%s); sending it bare",
                    where,
                    answer.detail or status,
                )
                retried_bare = True
                report = _bare_failure(report)
                continue
            self._log.error(
                "the platform refused even a bare failure report of %s; giving up on it", where
            )
            return ReportEnd("refused", status=status, detail=answer.detail)

    def _revoke(self) -> None:
        with self._lock:
            if self._revoked:
                return
            self._revoked = True
            held = len(self._pending)
        self._log.error(
            "the API refused this agent's key (revoked?); dropping %d unreported outcome(s)", held
        )
        self.abandon_all("the agent was revoked")
        if self._on_revoked is not None:
            self._on_revoked()
