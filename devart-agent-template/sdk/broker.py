"""Consuming the task queues on RabbitMQ with pika, on one thread that owns one connection.

pika's ``BlockingConnection`` is not thread-safe: only the consumer thread touches it. Worker
threads settle deliveries through :meth:`TaskConsumer.settle`, which hands the ack or nack to the
consumer thread with ``add_callback_threadsafe`` (the one thread-safe method pika offers).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from .contract import parse_task_message
from .errors import BrokerError, InvalidMessageError

__all__ = ["Delivery", "TaskConsumer", "task_queue_name"]

Settlement = Literal["ack", "requeue", "reject"]


def task_queue_name(capability: str | None, prefix: str = "") -> str:
    """The queue (and routing key) of tasks needing ``capability``; None means no capability.

    >>> task_queue_name("shell", "t1.")
    't1.tasks.todo.shell'
    """
    return f"{prefix}tasks.todo" if capability is None else f"{prefix}tasks.todo.{capability}"


def _delay(failures: int, initial: float, cap: float) -> float:
    # Exponential, capped, shortened by up to 30 % so agents dropped together come back apart.
    return min(cap, initial * 2 ** min(failures - 1, 30)) * (1 - 0.3 * random.random())


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass
class Delivery:
    """One task message received, checked against the contract; settle it exactly once."""

    message: dict[str, Any]
    queue: str
    redelivered: bool
    message_id: str | None
    _consumer: "TaskConsumer" = field(repr=False)
    _channel: Any = field(repr=False)
    _tag: int = field(repr=False)
    _generation: int = field(repr=False)
    _settled: bool = field(default=False, repr=False)

    @property
    def current(self) -> bool:
        """False once the connection it came on is gone (the broker has put it back already)."""
        return self._generation == self._consumer.generation

    def ack(self) -> None:
        self._settle("ack")

    def requeue(self) -> None:
        self._settle("requeue")

    def reject(self) -> None:
        """Nack without requeue: the queue dead-letters it."""
        self._settle("reject")

    def _settle(self, how: Settlement) -> None:
        if self._settled:
            return
        self._settled = True
        self._consumer.settle(self, how)


class TaskConsumer:
    """Consumes ``queues`` with prefetch ``prefetch`` each (a channel per queue, as quorum queues
    take no channel-wide prefetch), on a thread of its own, and reconnects with backoff (0.1 s
    doubling to 10 s) when the connection drops. A queue that does not exist is waited for
    (0.5 s doubling to 5 s, one warning), as the devart API declares it; a consumer the broker
    cancels (queue deleted) is re-subscribed the same way.

    A delivery that is not a valid ``devart.task.v1`` message is rejected without requeue (the
    queue dead-letters it) with an error in the log; the others go to ``on_delivery``, called on
    the consumer thread: it must not block.
    """

    def __init__(
        self,
        *,
        url: str,
        queues: list[str],
        prefetch: int,
        prefix: str,
        on_delivery: Callable[[Delivery], None],
        logger: logging.Logger,
        connection_name: str = "devart-agent-python",
    ) -> None:
        self._url = url
        self._queues = list(queues)
        self._prefetch = prefetch
        self._prefix = prefix
        self._on_delivery = on_delivery
        self._log = logger
        self._connection_name = connection_name
        self.generation = 0
        self._conn: pika.BlockingConnection | None = None
        self._cancel_requested = threading.Event()
        self._close_requested = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._last_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._established = False

    # -- called from other threads ------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Starts the consumer thread; returns once every existing queue is consumed (a missing
        one is waited for in the background). Raises :class:`BrokerError` when RabbitMQ refuses
        the credentials or a queue for good, or cannot be reached within ``timeout`` seconds."""
        self._thread = threading.Thread(target=self._run, name="devart-consumer", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close(timeout=5)
            raise BrokerError(
                f"RabbitMQ at {_redact(self._url)} could not be reached within {timeout:g} s"
                f" ({self._describe(self._last_error)})"
            )
        if self._start_error is not None:
            self.close(timeout=5)
            raise self._start_error

    def cancel(self) -> None:
        """Stops taking messages (unsettled ones stay ours until settled); the connection stays
        open so that deliveries in hand can still be acked."""
        self._cancel_requested.set()

    def close(self, timeout: float = 10) -> None:
        """Closes the connection (the broker returns what was not acked) and ends the thread."""
        self._cancel_requested.set()
        self._close_requested.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def settle(self, delivery: Delivery, how: Settlement) -> None:
        """Acks, requeues or rejects ``delivery`` from any thread. A no-op when its connection is
        gone: the broker has put the message back already."""
        conn = self._conn
        if conn is None or not delivery.current:
            return
        try:
            conn.add_callback_threadsafe(functools.partial(self._settle_now, delivery, how))
        except pika.exceptions.ConnectionWrongStateError:
            pass

    # -- the consumer thread ------------------------------------------------------------------

    def _settle_now(self, delivery: Delivery, how: Settlement) -> None:
        channel = delivery._channel
        if not delivery.current or not channel.is_open:
            return
        try:
            if how == "ack":
                channel.basic_ack(delivery._tag)
            else:
                channel.basic_nack(delivery._tag, requeue=how == "requeue")
        except pika.exceptions.AMQPError:
            pass  # the channel went: RabbitMQ has put the message back

    def _describe(self, error: BaseException | None) -> str:
        if error is None:
            return "no answer"
        text = str(error) or repr(error)
        return f"{type(error).__name__}: {text}"

    def _run(self) -> None:
        failures = 0
        warned = False
        while not self._close_requested.is_set():
            self._established = False
            try:
                self._session(reconnected=failures > 0)
                return
            except Exception as error:
                self._last_error = error
                if self._established:
                    # It worked for a while: a new outage, logged once, backing off from the start.
                    failures, warned = 0, False
                if isinstance(error, BrokerError) and not self._ready.is_set():
                    self._start_error = error
                    self._ready.set()
                    return
                if not warned:
                    warned = True
                    if isinstance(error, BrokerError):
                        # Refused after it once worked: a revoked agent, a permission taken away.
                        self._log.error("%s; retrying with backoff", error)
                    elif isinstance(error, (pika.exceptions.AMQPError, OSError)):
                        self._log.warning(
                            "RabbitMQ connection lost or refused (%s); reconnecting with backoff",
                            self._describe(error),
                        )
                    else:  # a bug must not end consuming silently
                        self._log.exception("consumer loop failed; reconnecting")
            finally:
                self._drop_connection()
            failures += 1
            self._close_requested.wait(_delay(failures, 0.1, 10.0))

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        # Deliveries of the old connection can no longer be settled; the broker requeued them.
        self.generation += 1
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:
                pass

    def _session(self, *, reconnected: bool) -> None:
        params = pika.URLParameters(self._url)
        params.client_properties = {"connection_name": self._connection_name}
        try:
            conn = pika.BlockingConnection(params)
        except pika.exceptions.ProbableAuthenticationError as error:
            user = unquote(urlsplit(self._url).username or "") or "(none)"
            raise BrokerError(
                f"RabbitMQ refused the credentials of user {user!r} ({error}): use the broker URL "
                "POST /api/agents returned for this agent (shown once), and check the agent was "
                "not revoked"
            ) from None
        except pika.exceptions.ProbableAccessDeniedError as error:
            vhost = unquote(urlsplit(self._url).path[1:]) or "/"
            raise BrokerError(
                f"RabbitMQ refused access to vhost {vhost!r} ({error}): use the broker URL "
                "POST /api/agents returned for this agent"
            ) from None
        self.generation += 1
        self._conn = conn
        consumers: dict[str, tuple[Any, str]] = {}
        # queue -> (when to try again, failures so far)
        missing: dict[str, tuple[float, int]] = {}
        cancelled = False

        def subscribe(queue: str) -> None:
            channel = conn.channel()
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.add_on_cancel_callback(lambda _frame, q=queue: on_cancelled(q))
            on_message = functools.partial(self._on_message, queue)
            try:
                tag = channel.basic_consume(queue, on_message, auto_ack=False)
            except pika.exceptions.ChannelClosedByBroker as error:
                if error.reply_code == 404:
                    raise _QueueMissing(queue) from None
                if error.reply_code == 403:
                    raise BrokerError(self._access_refused(queue, error)) from None
                raise
            consumers[queue] = (channel, tag)

        def on_cancelled(queue: str) -> None:
            if queue in consumers and not cancelled:
                self._log.warning(
                    "RabbitMQ cancelled the consumer of %s (queue deleted?); re-subscribing", queue
                )
                channel, _ = consumers.pop(queue)
                if channel.is_open:
                    conn.add_callback_threadsafe(channel.close)
                missing[queue] = (time.monotonic(), 0)

        def try_missing(queue: str) -> None:
            _, tries = missing.pop(queue)
            try:
                subscribe(queue)
            except _QueueMissing:
                if tries == 0:
                    self._log.warning(
                        "queue %s does not exist yet; waiting for the devart API to declare it", queue
                    )
                missing[queue] = (time.monotonic() + _delay(tries + 1, 0.5, 5.0), tries + 1)
                return
            if tries > 0:
                self._log.info("queue %s exists now; consuming it", queue)

        for queue in self._queues:
            missing[queue] = (0.0, 0)
            try_missing(queue)
        if reconnected:
            self._log.info("RabbitMQ connection re-established; consuming %s", ", ".join(self._queues))
        self._established = True
        self._ready.set()

        while not self._close_requested.is_set():
            if self._cancel_requested.is_set() and not cancelled:
                cancelled = True
                missing.clear()
                for channel, tag in consumers.values():
                    if channel.is_open:
                        # Messages prefetched but not yet dispatched to us are nacked by pika.
                        channel.basic_cancel(tag)
            now = time.monotonic()
            for queue, (due, _) in list(missing.items()):
                if due <= now and not cancelled:
                    try_missing(queue)
            for queue, (channel, _) in list(consumers.items()):
                if channel.is_closed and not cancelled:
                    # Closed by the broker for this channel alone: consume it again.
                    self._log.warning("consumer channel of %s closed; re-subscribing", queue)
                    del consumers[queue]
                    missing[queue] = (now, 0)
            conn.process_data_events(time_limit=0.2)

    def _access_refused(self, queue: str, error: pika.exceptions.ChannelClosedByBroker) -> str:
        prefix = f"prefix {self._prefix!r}" if self._prefix else "no prefix"
        return (
            f"RabbitMQ refused to consume queue {queue!r} ({error.reply_text}). This agent's broker user may "
            f"read only its own task queues; it tried {', '.join(self._queues)} ({prefix}). If the "
            "devart API runs with AMQP_PREFIX, give the agent the same prefix (prefix=..., or "
            "DEVART_AMQP_PREFIX; the registration answer's broker.amqp_prefix), and consume only "
            "the capabilities it was registered with"
        )

    def _on_message(self, queue: str, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            message = parse_task_message(body)
        except InvalidMessageError as error:
            self._log.error(
                "%s (queue %s, message id %s); dead-lettering it",
                error,
                queue,
                properties.message_id,
            )
            channel.basic_nack(method.delivery_tag, requeue=False)
            return
        self._on_delivery(
            Delivery(
                message=message,
                queue=queue,
                redelivered=bool(method.redelivered),
                message_id=properties.message_id,
                _consumer=self,
                _channel=channel,
                _tag=method.delivery_tag,
                _generation=self.generation,
            )
        )


class _QueueMissing(Exception):
    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.queue = queue
