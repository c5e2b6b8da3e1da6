"""The errors the SDK raises, and the one a callback raises to fail a task for good."""

from __future__ import annotations

from typing import Any


class NonRetryableError(Exception):
    """Raise it from a task callback for a failure retrying cannot fix: the task is quarantined at once.

    Example::

        def process_task(task):
            if "repo" not in task["payload"]:
                raise NonRetryableError("payload.repo is missing")
    """


class SandboxUnavailableError(NonRetryableError):
    """The server cannot provide sandboxes (no provider, bubblewrap missing, the cluster refused).

    Non-retryable, since another attempt meets the same server; ``detail`` is the server's reason.
    Catch it in a callback that can do without a sandbox.
    """

    def __init__(self, detail: str) -> None:
        self.detail = detail
        # The server's detail may say it already ("Sandboxes are unavailable on this server: …").
        if detail.lower().startswith("sandboxes are unavailable"):
            super().__init__(detail)
        else:
            super().__init__(f"sandboxes are unavailable on this server: {detail}")


class ApiError(Exception):
    """The devart API answered with a problem the SDK could not handle (after its retries)."""

    def __init__(
        self, status: int, problem: Any, message: str, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem
        #: The answer's Retry-After header: the server says the condition is temporary.
        self.retry_after = retry_after


class InvalidMessageError(ValueError):
    """A delivery is not a ``devart.task.v1`` message; ``reason`` says which rule it broke."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a devart.task.v1 message: {reason}")
        self.reason = reason


class BrokerError(Exception):
    """RabbitMQ refused the agent for good (bad credentials, a queue its user may not read), or
    could not be reached before ``start_consuming`` gave up."""


class ClaimTaskRemovedError(RuntimeError):
    """``claim_task()`` no longer exists: tasks come from the broker (see ``AgentSDK.start_consuming``)."""

    def __init__(self) -> None:
        super().__init__(
            "claim_task() was removed: devart no longer hands out tasks by polling "
            "(POST /api/agents/{id}/claim-task answers 410 Gone). Tasks are queued on RabbitMQ "
            "(queue tasks.todo.<capability>) and pushed to the agent: call "
            "sdk.start_consuming(process_task) once, and the SDK runs process_task(task) for every "
            "task it receives, with the fenced start, heartbeats and the report done for you. "
            "See devart-agent-template/README.md."
        )
