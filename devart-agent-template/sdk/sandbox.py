"""Sandboxes a task callback opens through the API (``task.sandbox()``)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .api_client import ApiClient, expect_ok, problem_detail
from .errors import ApiError, NonRetryableError, SandboxUnavailableError

__all__ = ["Sandbox", "ExecResult", "TaskSandboxes"]


@dataclass(frozen=True)
class ExecResult:
    """How a command in a sandbox ended. A nonzero exit is a result, not an error."""

    #: 124 after the timeout, 128+N after signal N.
    exit_code: int
    stdout: str
    stderr: str
    #: stdout or stderr was cut at the server's output cap.
    truncated: bool
    timed_out: bool
    duration_ms: int


class Sandbox:
    """A running sandbox of the current task; the SDK terminates it when the callback ends."""

    def __init__(self, api: ApiClient, sandbox_id: str) -> None:
        self._api = api
        #: The platform's sandbox id (``GET /api/sandboxes/{id}``).
        self.id = sandbox_id
        self._ended = False
        self._lock = threading.Lock()

    def exec(
        self,
        command: list[str],
        *,
        timeout_ms: int | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Runs ``command`` (an argv list; no shell unless you run one) in /workspace and waits for
        it. Blocks the calling thread. A failed call is not repeated: running a command twice is
        not harmless.

        Example::

            result = box.exec(["sh", "-c", "make test"], timeout_ms=120_000)
        """
        if self._ended:
            raise RuntimeError(f"sandbox {self.id} was terminated")
        body: dict[str, Any] = {"command": command}
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        if stdin is not None:
            body["stdin"] = stdin
        if env is not None:
            body["env"] = env
        # The server answers when the command ends: wait for its timeout (default 60 s) and more.
        wait = (timeout_ms if timeout_ms is not None else 60_000) / 1000 + 30
        try:
            res = self._api.call(
                "POST", f"/api/sandboxes/{self.id}/exec", body, retries=1, timeout=wait
            )
        except ApiError as error:
            raise ApiError(
                error.status,
                error.problem,
                f"exec in sandbox {self.id} answered {error.status}: {problem_detail(error.problem) or ''}",
                error.retry_after,
            ) from None
        if res.status == 400:
            raise NonRetryableError(
                f"exec in sandbox {self.id} refused: {problem_detail(res.body) or 'bad request'}"
            )
        out = expect_ok(res, f"exec in sandbox {self.id}")
        # A long command is answered 200 before it ends; a sandbox failure after that comes in the body.
        if out.get("error"):
            raise RuntimeError(f"exec in sandbox {self.id} failed: {out['error'].get('detail')}")
        return ExecResult(
            exit_code=out["exit_code"],
            stdout=out["stdout"],
            stderr=out["stderr"],
            truncated=out["truncated"],
            timed_out=out["timed_out"],
            duration_ms=out["duration_ms"],
        )

    def terminate(self) -> None:
        """Kills everything running in it and removes its workspace. Idempotent."""
        with self._lock:
            if self._ended:
                return
            res = self._api.call("DELETE", f"/api/sandboxes/{self.id}")
            if res.status != 404:
                expect_ok(res, f"terminate sandbox {self.id}")
            self._ended = True


class TaskSandboxes:
    """The sandboxes of one task callback: opened on demand, all terminated by ``close_all``."""

    def __init__(
        self,
        api: ApiClient,
        agent_id: str,
        task_id: str,
        logger: logging.Logger,
    ) -> None:
        self._api = api
        self._agent_id = agent_id
        self._task_id = task_id
        self._log = logger
        self._lock = threading.Lock()
        self._handles: list[Sandbox] = []
        self._closed = False

    def open(
        self,
        *,
        cpu: int | None = None,
        memory: int | None = None,
        ttl_seconds: int | None = None,
        egress: Any = None,
    ) -> Sandbox:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"task {self._task_id} has ended: it cannot open sandboxes any more")
        body: dict[str, Any] = {"task_id": self._task_id}
        resources = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        if resources:
            body["resources"] = resources
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        if egress is not None:
            body["egress"] = egress
        try:
            # Not idempotent (each call provisions one): one attempt. A 503 without Retry-After
            # says the server has no provider; with it, the provider is briefly unreachable.
            res = self._api.call(
                "POST", f"/api/agents/{self._agent_id}/request-sandbox", body, retries=1, timeout=300
            )
        except ApiError as error:
            if error.status == 503:
                detail = problem_detail(error.problem) or "the server answered 503"
                if error.retry_after:
                    raise RuntimeError(f"the sandbox provider is unavailable for now: {detail}") from None
                raise SandboxUnavailableError(detail) from None
            raise
        if res.status == 400:
            raise NonRetryableError(
                f"sandbox request refused: {problem_detail(res.body) or 'bad request'}"
            )
        handle = Sandbox(self._api, expect_ok(res, "request-sandbox")["sandbox_id"])
        with self._lock:
            self._handles.append(handle)
            closed = self._closed
        if closed:
            # The callback ended while this request was in flight.
            self._terminate(handle)
        return handle

    def close_all(self) -> None:
        """Terminates every sandbox opened; failures are logged, not raised."""
        with self._lock:
            self._closed = True
            handles = list(self._handles)
        for handle in handles:
            self._terminate(handle)

    def _terminate(self, handle: Sandbox) -> None:
        try:
            handle.terminate()
        except Exception as error:
            self._log.error(
                "terminating sandbox %s of task %s failed (%s); the platform ends it when the task "
                "leaves IN_PROGRESS",
                handle.id,
                self._task_id,
                error,
            )
