"""The devart agent SDK for Python: take tasks from RabbitMQ, run a callback, report to the API.

Example (the template's shape)::

    from sdk.agent_sdk import AgentSDK

    def process_task(task):
        return {"echo": task["payload"]}          # → the task is DONE with this result

    sdk = AgentSDK(agent_id=os.getenv("DEVART_AGENT_ID"), api_key=os.getenv("DEVART_API_KEY"),
                   api_base_url=os.getenv("DEVART_API_BASE_URL"))
    sdk.start_consuming(process_task)             # returns; consumes on background threads
    while not shutdown_requested:
        time.sleep(1)
    sdk.stop_consuming()

It behaves as the TypeScript SDK (``packages/sdk``): the fenced ``start`` before the callback and
the ack right after it, heartbeats while the callback runs, the outcome held and retried until
the platform confirms it, reconnection with backoff, prefetch = concurrency, graceful shutdown.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import logging
import os
import queue as _queue
import re
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from .api_client import ApiClient, ApiResult, expect_ok, problem_detail
from .broker import Delivery, TaskConsumer, task_queue_name
from .errors import ApiError, BrokerError, ClaimTaskRemovedError, NonRetryableError, SandboxUnavailableError
from .reports import Report, Reporter
from .sandbox import Sandbox, TaskSandboxes

__all__ = [
    "AgentSDK",
    "ApiError",
    "BrokerError",
    "ClaimTaskRemovedError",
    "NonRetryableError",
    "Result",
    "SandboxUnavailableError",
    "Task",
    "TaskCallback",
]

_CAPABILITY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")


@dataclass(frozen=True)
class Result:
    """A callback's result with its cost: ``return Result({"verdict": "ok"}, cost=0.0123)``.

    ``cost`` is a non-negative decimal: an ``int``, a ``float``, a ``decimal.Decimal`` or a string
    of digits (kept exact).
    """

    value: Any = None
    cost: int | float | decimal.Decimal | str | None = None


class Task(dict):
    """One task, as a dict — ``id``, ``title``, ``payload``, ``attempt``, ``capability``,
    ``workflow_run_id`` — plus what a callback may do while it works on it.

    ``cancelled`` is a ``threading.Event`` set when the task was taken away (its lease lapsed, it
    was cancelled) or the agent is stopping past its grace period: a long callback should check
    it and give up, since its outcome will not be recorded.
    """

    def __init__(self, message: dict[str, Any], run: "_Running", sdk: "AgentSDK") -> None:
        super().__init__(
            id=message["task_id"],
            title=message["title"],
            payload=message["payload"],
            attempt=message["attempt"],
            capability=message["capability"],
            workflow_run_id=message["workflow_run_id"],
        )
        #: The whole ``devart.task.v1`` message, unknown fields included.
        self.message = message
        self.cancelled: threading.Event = run.cancelled
        self.logger = sdk.logger
        self._run = run
        self._sdk = sdk

    def heartbeat(self) -> None:
        """Extends the lease now (the SDK also does it every third of the lease). Raises the API's
        error when it cannot be reached; sets ``cancelled`` when the task is no longer ours."""
        self._sdk._heartbeat(self._run, raise_errors=True)

    def report_progress(self, message: str | None = None, *, percent: float | None = None) -> None:
        """Says the task is moving. The API has no progress endpoint yet, so this is a heartbeat
        (the lease is extended) and a log line at INFO; the text is not stored on the platform.
        Best effort: a heartbeat that fails here is not raised (the timer's next one may pass)."""
        self.logger.info(
            "task %s progress: %s%s",
            self["id"],
            message or "",
            f" ({percent:g} %)" if percent is not None else "",
        )
        self._sdk._heartbeat(self._run, raise_errors=False)

    def sandbox(
        self,
        *,
        cpu: int | None = None,
        memory: int | None = None,
        ttl_seconds: int | None = None,
        egress: Any = None,
    ) -> Sandbox:
        """Provisions a sandbox for this task through the API (bubblewrap on the API's host or a
        Kubernetes Pod; no network unless ``egress`` allows it). ``cpu`` in millicores, ``memory``
        in MiB. Every sandbox the callback opened is terminated when it returns or raises; raises
        :class:`SandboxUnavailableError` (non-retryable) when the server cannot provide one.

        Example::

            box = task.sandbox(memory=256, ttl_seconds=300)
            run = box.exec(["sh", "-c", "echo hello"])
            return {"exit_code": run.exit_code, "stdout": run.stdout}
        """
        return self._run.sandboxes.open(cpu=cpu, memory=memory, ttl_seconds=ttl_seconds, egress=egress)


TaskCallback = Callable[[Task], Any]


class _Running:
    """One task this agent holds: from its ``start`` until its outcome is settled."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.task_id: str = message["task_id"]
        self.attempt: int = message["attempt"]
        #: 'starting' until start answered, 'working' while the callback runs, then 'reporting'.
        self.phase = "starting"
        self.abandoned = False
        self.lost = False
        self.cancelled = threading.Event()
        self.beats_stop = threading.Event()
        self.beating = threading.Lock()
        self.sandboxes: TaskSandboxes
        self.lock = threading.Lock()


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _required(value: str | None, argument: str, variable: str, hint: str) -> str:
    if value:
        return value
    raise ValueError(f"{argument} is missing: pass {argument}=… or set {variable} ({hint})")


def _trim_traceback(error: BaseException) -> str:
    # The end of a Python traceback is where it happened: keep the last lines.
    lines = "".join(traceback.format_exception(error)).rstrip().splitlines()
    return "\n".join(lines[-24:])[-4000:]


def _lease_seconds(task: dict[str, Any]) -> float:
    """The lease the start answer granted, measured on the server's clock (started_at → expiry)."""
    try:
        expires = _dt.datetime.fromisoformat(task["lease_expires_at"])
        started = _dt.datetime.fromisoformat(task["started_at"])
        seconds = (expires - started).total_seconds()
        return seconds if seconds > 0 else 60.0
    except (KeyError, TypeError, ValueError):
        return 60.0


def _shutdown_failure(run: _Running) -> Report:
    return Report(
        "failure",
        run.task_id,
        run.attempt,
        error="agent shut down before the task finished",
        retryable=True,
    )


class AgentSDK:
    """A devart agent: consumes its task queues on RabbitMQ and runs a callback for each task.

    Every argument may come from the environment instead: ``DEVART_AGENT_ID``, ``DEVART_API_KEY``,
    ``DEVART_API_BASE_URL``, ``RABBITMQ_URL`` (the ``broker.url`` ``POST /api/agents`` returned),
    ``DEVART_AMQP_PREFIX`` (the API's ``AMQP_PREFIX``; the registration answer's
    ``broker.amqp_prefix``), ``DEVART_CAPABILITIES`` (comma-separated; default: the capabilities
    the agent was registered with, from ``GET /api/agents/me``) and ``DEVART_CONCURRENCY``. A
    missing required one raises ``ValueError`` naming it.

    Threads: one consumer thread owns the broker connection; ``concurrency`` worker threads run the
    callbacks (so a callback may block; at most ``concurrency`` run at once); each running task has
    a heartbeat thread. The callback's answer:

    - ``True``, ``None``, a dict or any JSON value, or ``Result(value, cost=…)`` → the task is DONE
      (with that result);
    - ``False`` → a retryable failure (retried after a backoff, up to the task's ``max_retries``);
    - an exception → a failure with its message and a trimmed traceback, retried;
      :class:`NonRetryableError` → quarantined at once.

    A finished outcome is never dropped while the agent runs: it is retried (network errors, 5xx,
    429, 503 after its Retry-After) until the platform confirms it, or says the attempt is no longer
    this agent's (409/404: dropped with a warning), or refuses the key (401: the agent stops taking
    tasks). A result the platform refuses (400) becomes a non-retryable failure with its reason.
    """

    def __init__(
        self,
        agent_id: str | None = None,
        api_key: str | None = None,
        api_base_url: str | None = None,
        amqp_url: str | None = None,
        capabilities: list[str] | None = None,
        concurrency: int | None = None,
        prefix: str | None = None,
        *,
        shutdown_grace: float = 30.0,
        report_grace: float = 30.0,
        presence_interval: float = 30.0,
        start_timeout: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        hint = "from POST /api/agents"
        self.agent_id = _required(
            agent_id or _env("DEVART_AGENT_ID"), "agent_id", "DEVART_AGENT_ID", f"the id {hint}"
        ).lower()
        self._api_key = _required(
            api_key or _env("DEVART_API_KEY"), "api_key", "DEVART_API_KEY", f"the api_key {hint}"
        )
        self.api_base_url = _required(
            api_base_url or _env("DEVART_API_BASE_URL"),
            "api_base_url",
            "DEVART_API_BASE_URL",
            "the devart API, e.g. http://127.0.0.1:8787",
        )
        self.amqp_url = _required(
            amqp_url or _env("RABBITMQ_URL"), "amqp_url", "RABBITMQ_URL", f"the broker.url {hint}"
        )
        if not self.amqp_url.startswith(("amqp://", "amqps://")):
            raise ValueError("amqp_url (RABBITMQ_URL) must be an amqp:// or amqps:// URL")
        self.prefix = prefix if prefix is not None else (_env("DEVART_AMQP_PREFIX") or "")
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"prefix (DEVART_AMQP_PREFIX) {self.prefix!r} is not a valid queue name prefix")
        if capabilities is None and _env("DEVART_CAPABILITIES"):
            capabilities = [c.strip() for c in os.environ["DEVART_CAPABILITIES"].split(",") if c.strip()]
        if capabilities is not None:
            if isinstance(capabilities, str):
                raise ValueError("capabilities must be a list of strings, e.g. ['echo']")
            for capability in capabilities:
                if not isinstance(capability, str) or not _CAPABILITY.match(capability):
                    raise ValueError(f"capability {capability!r} is not a lowercase slug")
        self.capabilities = list(dict.fromkeys(capabilities)) if capabilities is not None else None
        if concurrency is None:
            raw = _env("DEVART_CONCURRENCY") or "1"
            if not raw.isdigit():
                raise ValueError(f"DEVART_CONCURRENCY must be a positive integer, got {raw!r}")
            concurrency = int(raw)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 1000:
            raise ValueError(f"concurrency must be an integer from 1 to 1000, got {concurrency!r}")
        self.concurrency = concurrency
        self.shutdown_grace = shutdown_grace
        self.report_grace = report_grace
        self.presence_interval = presence_interval
        self.start_timeout = start_timeout
        self.logger = logger or logging.getLogger("devart.agent")

        self._api = ApiClient(self.api_base_url, self._api_key)
        self._reporter = Reporter(self._api, self.logger, on_revoked=self._refuse_work)
        self._work: _queue.Queue[Delivery | None] = _queue.Queue()
        self._state = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._helpers: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []
        self._consumer: TaskConsumer | None = None
        self._callback: TaskCallback | None = None
        self._stopping = threading.Event()
        #: Set when the agent stopped taking work by itself (its key was revoked).
        self.refused = threading.Event()
        self._stopped: threading.Event | None = None
        self._lifecycle = threading.Lock()

    # -- public -------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Tasks running now, or finished with their outcome not confirmed yet."""
        with self._state:
            return len(self._running)

    @property
    def pending_reports(self) -> int:
        """Finished outcomes the platform has not confirmed yet."""
        return self._reporter.pending

    def claim_task(self) -> Any:
        """Removed: raises :class:`ClaimTaskRemovedError`, which explains the queue model. Use
        :meth:`start_consuming`."""
        raise ClaimTaskRemovedError()

    def start_consuming(self, callback: TaskCallback) -> None:
        """Starts consuming on background threads and returns once the task queues are consumed.

        ``callback(task)`` runs on a worker thread for every task (see the class docstring for
        what its answer means). Raises :class:`BrokerError` when RabbitMQ refuses the agent or
        cannot be reached within ``start_timeout`` seconds, ``ApiError``/``ValueError`` when the
        API refuses the key or the key is another agent's. Call it once.
        """
        if not callable(callback):
            raise TypeError("start_consuming() needs a callable: process_task(task)")
        with self._lifecycle:
            if self._callback is not None:
                raise RuntimeError("start_consuming() was called already")
            self._callback = callback
        capabilities = self._check_identity()
        queues = [task_queue_name(None, self.prefix)] + [
            task_queue_name(c, self.prefix) for c in capabilities
        ]
        for index in range(self.concurrency):
            worker = threading.Thread(target=self._worker, name=f"devart-worker-{index + 1}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._consumer = TaskConsumer(
            url=self.amqp_url,
            queues=queues,
            prefetch=self.concurrency,
            prefix=self.prefix,
            on_delivery=self._work.put,
            logger=self.logger,
            connection_name=f"devart-agent-python {self.agent_id}",
        )
        try:
            self._consumer.start(self.start_timeout)
        except BaseException:
            self._stopping.set()
            for _ in self._workers:
                self._work.put(None)
            raise
        if self.presence_interval > 0:
            self._spawn(self._presence, "devart-presence")
        self.logger.info(
            "agent %s consuming %s (concurrency %d)", self.agent_id, ", ".join(queues), self.concurrency
        )

    def run(self, callback: TaskCallback) -> None:
        """``start_consuming(callback)``, then blocks until SIGINT or SIGTERM (or the agent's key is
        revoked) and stops gracefully with :meth:`stop_consuming`. Call it from the main thread
        (Python delivers signals there); the previous handlers are restored before it returns."""
        wake = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            self.logger.info("%s received; stopping", signal.Signals(signum).name)
            wake.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start_consuming(callback)
            while not wake.is_set() and not self.refused.is_set():
                wake.wait(0.5)
            self.stop_consuming()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop_consuming(self) -> None:
        """Stops taking messages (those not started go back to the queue), lets running callbacks
        finish within ``shutdown_grace`` seconds (the rest are reported as retryable failures;
        their threads cannot be killed and their outcome is ignored), waits up to
        ``report_grace`` seconds for held outcomes to be confirmed, then closes the connection.
        Blocks until then; safe to call twice (the second call waits for the first)."""
        with self._lifecycle:
            first = self._stopped is None
            if first:
                self._stopped = threading.Event()
            stopped = self._stopped
        if not first:
            stopped.wait()
            return
        try:
            self._stop()
        finally:
            stopped.set()

    # -- stopping -----------------------------------------------------------------------------

    def _stop(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.cancel()
        # Deliveries waiting for a worker go back to the queue.
        self._requeue_waiting()
        # First the callbacks, within their grace.
        deadline = time.monotonic() + self.shutdown_grace
        with self._state:
            while any(r.phase in ("starting", "working") and not r.abandoned for r in self._running.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._state.wait(left)
            late = [r for r in self._running.values() if r.phase in ("starting", "working")]
        for run in late:
            with run.lock:
                if run.phase == "reporting" or run.abandoned:
                    continue
                run.abandoned = True
                run.cancelled.set()
                working = run.phase == "working"
            self.logger.warning(
                "task %s still running after the %g s shutdown grace; reporting it failed",
                run.task_id,
                self.shutdown_grace,
            )
            # A start still in flight reports for itself once it knows the task is ours.
            if working:
                self._spawn(lambda r=run: self._report_shutdown(r), "devart-shutdown-report")
        # Then the outcomes held: bounded, so a platform that never answers cannot hold the agent.
        if not self._wait_settled(self.report_grace):
            held = self._reporter.pending
            self.logger.error(
                "stopping with %d outcome(s) the platform never confirmed; their tasks run again "
                "when their leases lapse",
                held,
            )
            self._reporter.abandon_all("agent stopped")
            self._wait_settled(2.0)
        if self._consumer is not None:
            self._consumer.close()
        for _ in self._workers:
            self._work.put(None)
        self.logger.info("agent %s stopped", self.agent_id)

    def _report_shutdown(self, run: _Running) -> None:
        try:
            self._reporter.report(_shutdown_failure(run))
        finally:
            self._finish(run)

    def _wait_settled(self, timeout: float) -> bool:
        """Waits until no outcome is held and no task is between start and its report (callbacks
        abandoned past the grace excepted); False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout

        def settled() -> bool:
            busy = [r for r in self._running.values() if not (r.abandoned and r.phase == "working")]
            return not busy and self._reporter.pending == 0

        with self._state:
            while not settled():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Reports settle on other threads without notifying: look again at least every 50 ms.
                self._state.wait(min(left, 0.05))
        return True

    def _requeue_waiting(self) -> None:
        while True:
            try:
                delivery = self._work.get_nowait()
            except _queue.Empty:
                return
            if delivery is None:
                self._work.put(None)
                return
            delivery.requeue()

    def _refuse_work(self) -> None:
        """The API refused this agent's key: stop consuming; unacked messages go to other agents."""
        if self._stopping.is_set():
            return
        self.logger.error("the API refused this agent's key (revoked?); it stops taking tasks")
        self._stopping.set()
        self.refused.set()
        if self._consumer is not None:
            self._consumer.cancel()
        self._requeue_waiting()

    # -- the work -----------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._helpers = [t for t in self._helpers if t.is_alive()]
        self._helpers.append(thread)
        thread.start()
        return thread

    def _presence(self) -> None:
        # Best effort: a missed ping only risks an OFFLINE mark, undone by the agent's next call.
        while not self._stopping.wait(self.presence_interval):
            try:
                self._api.call("GET", "/api/agents/me", retries=1)
            except Exception:
                pass

    def _check_identity(self) -> list[str]:
        """Checks the key is this agent's and learns its capabilities when none were given."""
        try:
            me = expect_ok(self._api.call("GET", "/api/agents/me"), "GET /api/agents/me")
        except ApiError as error:
            if error.status == 401 or self.capabilities is None:
                raise ApiError(
                    error.status,
                    error.problem,
                    f"the devart API at {self.api_base_url} refused the agent's key ({error}); use "
                    "the api_key POST /api/agents returned",
                ) from None
            self.logger.warning("could not check the agent's identity (%s); going on", error)
            return self.capabilities
        except OSError as error:
            if self.capabilities is None:
                raise
            self.logger.warning("could not reach the API to check the agent's identity (%s); going on", error)
            return self.capabilities
        if str(me.get("id", "")).lower() != self.agent_id:
            raise ValueError(
                f"agent_id (DEVART_AGENT_ID) is {self.agent_id} but the api_key belongs to agent "
                f"{me.get('id')}: use the id and key of the same POST /api/agents answer"
            )
        if self.capabilities is None:
            return [c for c in me.get("capabilities", []) if _CAPABILITY.match(c)]
        return self.capabilities

    def _worker(self) -> None:
        while True:
            delivery = self._work.get()
            if delivery is None:
                return
            try:
                self._handle(delivery)
            except Exception:
                self.logger.exception("handling task %s failed", delivery.message.get("task_id"))
                delivery.requeue()

    def _register(self, run: _Running) -> None:
        with self._state:
            self._running[run.task_id] = run
            self._state.notify_all()

    def _finish(self, run: _Running) -> None:
        run.beats_stop.set()
        with self._state:
            if self._running.get(run.task_id) is run:
                del self._running[run.task_id]
            self._state.notify_all()

    def _set_phase(self, run: _Running, phase: str) -> bool:
        """Moves ``run`` to ``phase`` unless stop() abandoned it; False if it did."""
        with run.lock:
            if run.abandoned:
                return False
            run.phase = phase
        with self._state:
            self._state.notify_all()
        return True

    def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        if not delivery.current:
            return  # its connection is gone: the broker has given the message to someone already
        if self._stopping.is_set():
            delivery.requeue()
            return
        run = _Running(message)
        self._register(run)
        try:
            started = self._api.call("POST", f"/api/tasks/{run.task_id}/start", {"attempt": run.attempt})
        except Exception as error:
            self._finish(run)
            self.logger.warning(
                "start of task %s failed (%s); message returned to the queue", run.task_id, error
            )
            delivery.requeue()
            return
        if started.status in (401, 403):
            # An answer about this agent, not the task (its key revoked, a capability it lacks):
            # dropping the message would leave the task TODO with nothing left to deliver it.
            self._finish(run)
            if started.status == 401:
                self._refuse_work()
            else:
                self.logger.warning(
                    "start of task %s forbidden for this agent (%s); message returned to the queue",
                    run.task_id,
                    problem_detail(started.body),
                )
            delivery.requeue()
            return
        # The database's lease guards the task from here on, so the message is settled at once.
        delivery.ack()
        if started.status != 200:
            self._finish(run)
            if started.status not in (404, 409):
                self.logger.warning(
                    "start of task %s refused: %s %s",
                    run.task_id,
                    started.status,
                    problem_detail(started.body),
                )
            return
        if not self._set_phase(run, "working"):
            # stop() ran out of grace while start was in flight: the task is ours, so say it failed.
            self._report_shutdown(run)
            return
        try:
            self._work_on(message, started.body, run)
        finally:
            self._finish(run)

    def _work_on(self, message: dict[str, Any], started: Any, run: _Running) -> None:
        interval = max(0.05, _lease_seconds(started if isinstance(started, dict) else {}) / 3)
        beats = threading.Thread(
            target=self._beat_loop,
            args=(run, interval),
            name=f"devart-heartbeat-{run.task_id[:8]}",
            daemon=True,
        )
        beats.start()
        run.sandboxes = TaskSandboxes(self._api, self.agent_id, run.task_id, self.logger)
        task = Task(message, run, self)
        assert self._callback is not None
        try:
            outcome = self._callback(task)
            report = self._outcome_report(run, outcome)
        except NonRetryableError as error:
            report = self._failure_report(run, error, retryable=False)
        except (Exception, SystemExit) as error:
            report = self._failure_report(run, error, retryable=True)
        finally:
            # Before the outcome is reported: a finished task leaves nothing running.
            run.sandboxes.close_all()
        if run.lost:
            self.logger.warning("task %s was lost before it finished; its outcome is dropped", run.task_id)
            return
        if not self._set_phase(run, "reporting"):
            return  # stop() reported it failed already
        end = self._reporter.report(report)
        if end.outcome == "confirmed" and report.kind == "failure":
            self.logger.info("task %s attempt %d reported failed: %s", run.task_id, run.attempt, report.error)

    def _outcome_report(self, run: _Running, outcome: Any) -> Report:
        if outcome is False:
            return Report(
                "failure", run.task_id, run.attempt, error="the task callback returned False", retryable=True
            )
        cost = None
        has_result = True
        if isinstance(outcome, Result):
            value, cost = outcome.value, outcome.cost
        elif outcome is True or outcome is None:
            value, has_result = None, False
        else:
            value = outcome
        if isinstance(cost, decimal.Decimal):
            cost = format(cost, "f")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            # The same code would produce the same result: quarantined for a human, not re-run.
            return Report(
                "failure",
                run.task_id,
                run.attempt,
                error=f"the task callback's result is not JSON: {error}",
                retryable=False,
            )
        return Report("complete", run.task_id, run.attempt, result=value, has_result=has_result, cost=cost)

    def _failure_report(self, run: _Running, error: BaseException, *, retryable: bool) -> Report:
        text = str(error)
        return Report(
            "failure",
            run.task_id,
            run.attempt,
            error=f"{type(error).__name__}: {text}" if text else type(error).__name__,
            retryable=retryable,
            details={"name": type(error).__name__, "stack": _trim_traceback(error)},
        )

    # -- heartbeats ---------------------------------------------------------------------------

    def _beat_loop(self, run: _Running, interval: float) -> None:
        # Runs until the outcome is settled: a held outcome keeps its lease.
        while not run.beats_stop.wait(interval):
            if run.lost:
                return
            # One heartbeat at a time, so a slow API does not pile them up.
            if run.beating.acquire(blocking=False):
                try:
                    self._heartbeat(run, raise_errors=False)
                finally:
                    run.beating.release()

    def _heartbeat(self, run: _Running, *, raise_errors: bool) -> None:
        try:
            res: ApiResult = self._api.call(
                "POST", f"/api/tasks/{run.task_id}/heartbeat", cancel=run.beats_stop
            )
        except Exception as error:
            if raise_errors:
                raise
            self.logger.debug("heartbeat of task %s failed: %s", run.task_id, error)
            return
        if res.status in (404, 409):
            reason = f"the task was taken away ({problem_detail(res.body) or 'lease lapsed or cancelled'})"
            if not run.lost and self._reporter.holds(run.task_id, run.attempt):
                self.logger.warning("task %s: %s; its held outcome is dropped", run.task_id, reason)
            run.lost = True
            run.cancelled.set()
            run.beats_stop.set()
            self._reporter.drop(run.task_id, run.attempt, reason)
        elif res.status == 401:
            self._refuse_work()
