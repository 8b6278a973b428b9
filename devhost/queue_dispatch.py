"""Delivers local-queue messages to Service Bus-triggered functions, with peek-lock settlement.

Session-enabled triggers (``is_sessions_enabled=True``) get ``maxConcurrentSessions`` receivers
(one for ``cardinality=many``, as the extension applies that limit to single dispatch only). Each
receiver accepts a session nobody else holds, delivers its messages one at a time in order while
renewing the session lock, and releases the session once it has nothing ready (the real extension
waits ``sessionIdleTimeout`` first; releasing at once only lets other receivers in sooner).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessage

from devhost.app_index import QueueFunction
from devhost.host_config import HostConfig
from devhost.invocation import Counters, Invoker
from devhost.local_queue import LocalQueueStore, SessionLock, StoredMessage
from shared.errors import PreconditionFailed

logger = logging.getLogger("devhost")
_POLL_MIN_S = 0.02
_POLL_MAX_S = 0.5


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_service_bus_message(message: StoredMessage) -> ServiceBusMessage:
    """The object the Python worker would build from the trigger's data and metadata."""
    properties = dict(message.application_properties)
    metadata = {
        "MessageId": meta.Datum(message.message_id, "string"),
        "DeliveryCount": meta.Datum(message.delivery_count, "int"),
        "SequenceNumber": meta.Datum(message.sequence_number, "int"),
        "LockToken": meta.Datum(message.lock_token or "", "string"),
        "ContentType": meta.Datum(message.content_type or "", "string"),
        "SessionId": meta.Datum(message.session_id or "", "string"),
        "ApplicationProperties": meta.Datum(json.dumps(properties), "json"),
        "UserProperties": meta.Datum(json.dumps(properties), "json"),
    }
    return ServiceBusMessage(
        body=message.body,
        trigger_metadata=metadata,
        application_properties=properties,
        content_type=message.content_type,
        delivery_count=message.delivery_count,
        enqueued_sequence_number=message.sequence_number,
        enqueued_time_utc=_utc(message.enqueued_at),
        locked_until=_utc(message.locked_until),
        lock_token=message.lock_token,
        message_id=message.message_id,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        state=0,
        user_properties=dict(properties),
    )


def _argument(function: QueueFunction, messages: Sequence[StoredMessage]) -> Any:
    def one(message: StoredMessage) -> Any:
        if function.argument_kind == "bytes":
            return message.body
        if function.argument_kind == "str":
            return message.body.decode("utf-8")
        return to_service_bus_message(message)

    return [one(m) for m in messages] if function.many else one(messages[0])


@dataclass(slots=True)
class _HeldSession:
    lock: SessionLock  # replaced on each renewal


class QueueDispatcher:
    """Receivers per queue function: ``maxConcurrentCalls``, or ``maxConcurrentSessions`` for
    session triggers (one for ``cardinality=many``)."""

    def __init__(
        self,
        functions: Sequence[QueueFunction],
        store: LocalQueueStore,
        invoker: Invoker,
        counters: Counters,
        config: HostConfig,
    ) -> None:
        self._functions = list(functions)
        self._store = store
        self._invoker = invoker
        self._counters = counters
        self._config = config
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def queues(self) -> list[str]:
        return sorted({f.queue for f in self._functions})

    def in_flight(self) -> int:
        with self._in_flight_lock:
            return self._in_flight

    def start(self) -> None:
        self._stop.clear()
        for function in self._functions:
            receivers = 1 if function.many else (
                self._config.max_concurrent_sessions if function.sessions
                else self._config.max_concurrent_calls)
            for number in range(receivers):
                thread = threading.Thread(
                    target=self._receive_loop, args=(function,),
                    name=f"queue-{function.name}-{number}", daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            logger.info("listening on queue %s for %s (%d at a time)", function.queue,
                        function.name, receivers)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop receiving; lets running invocations finish (up to ``timeout_s`` each)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []

    def _receive_loop(self, function: QueueFunction) -> None:
        batch = self._config.max_message_batch_size if function.many else 1
        pause = _POLL_MIN_S
        while not self._stop.is_set():
            try:
                got = self.deliver_once(function, batch)
            except Exception:  # keep receiving: a broken store should be loud, not fatal
                logger.exception("receiving from queue %s failed", function.queue)
                got = False
            if got:
                pause = _POLL_MIN_S
            else:
                self._stop.wait(pause)
                pause = min(pause * 2, _POLL_MAX_S)

    def deliver_once(self, function: QueueFunction, max_messages: int = 1) -> bool:
        """Receive and process up to ``max_messages``; returns False when the queue had none.

        For a session trigger: accept one session and process its ready messages one call at a
        time, then release it; returns False when no session was available.
        """
        with self._in_flight_lock:
            self._in_flight += 1  # counted before receiving so "idle" never misses this work
        try:
            if function.sessions:
                return self._deliver_session(function, max_messages)
            result = self._store.receive(function.queue, max_messages)
            self._report_expired(function, result.dead_lettered)
            if not result.messages:
                return bool(result.dead_lettered)
            self._process(function, result.messages)
            return True
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _deliver_session(self, function: QueueFunction, max_messages: int) -> bool:
        accepted = self._store.accept_next_session(function.queue)
        if accepted is None:
            return False
        session = _HeldSession(accepted)
        logger.info("session %s on %s accepted for %s", accepted.session_id, function.queue,
                    function.name)
        try:
            while not self._stop.is_set():
                result = self._store.receive_from_session(session.lock, max_messages)
                self._report_expired(function, result.dead_lettered)
                if not result.messages:
                    if result.dead_lettered:
                        continue  # the session's next message may be ready now
                    break
                self._process(function, result.messages, session)
            self._store.release_session(session.lock)
        except PreconditionFailed as lost:  # another receiver has it now; nothing to release
            logger.warning("session %s on %s: %s", accepted.session_id, function.queue, lost)
        return True

    def _report_expired(self, function: QueueFunction, messages: list[StoredMessage]) -> None:
        for message in messages:
            self._counters.add(dead_lettered=1)
            logger.warning("message %s on %s dead-lettered: MaxDeliveryCountExceeded after"
                           " %d deliveries (lock expired)", message.message_id,
                           function.queue, message.delivery_count)

    def _process(
        self, function: QueueFunction, messages: list[StoredMessage],
        session: _HeldSession | None = None,
    ) -> None:
        self._counters.add(delivered=len(messages))
        for message in messages:
            logger.info("message delivered: %s on %s (delivery %d) to %s", message.message_id,
                        function.queue, message.delivery_count, function.name)
        lock_s = self._store.options(function.queue).lock_duration_s
        renew_until = time.monotonic() + self._config.max_auto_lock_renewal_s

        def renew_locks() -> None:
            if time.monotonic() > renew_until:
                return  # past maxAutoLockRenewalDuration the lock is left to expire
            if session is not None:  # the session lock covers its messages' locks
                try:
                    session.lock = self._store.renew_session_lock(session.lock)
                except PreconditionFailed:
                    logger.warning("lock of session %s was lost", session.lock.session_id)
                return
            for message in messages:
                try:
                    self._store.renew_lock(message)
                except PreconditionFailed:
                    logger.warning("lock of message %s was lost", message.message_id)

        if session is not None:
            # The host renews a held session's lock all along, not only inside invocations:
            # a session that served many short ones would otherwise expire under the next.
            renew_locks()
        try:
            argument = _argument(function, messages)
        except UnicodeDecodeError as error:  # the worker fails such an invocation before the call
            for message in messages:
                self._settle(function, message, False, f"body is not UTF-8 text: {error}")
            return
        outcome = self._invoker.invoke(
            function.name, function.call, {function.arg_name: argument},
            wants_context=function.wants_context, heartbeat=renew_locks,
            # A quarter of the lock: a renewal delayed by a busy machine still lands in time.
            heartbeat_every_s=max(lock_s / 4, 0.05),
            detail=f" for message {messages[0].message_id}" if len(messages) == 1 else "",
        )
        if not self._config.auto_complete_messages or not function.auto_complete:
            return  # Python cannot settle by itself: the lock expires and the message returns
        for message in messages:
            self._settle(function, message, outcome.succeeded, outcome.describe_error())
        if outcome.pending is not None:
            outcome.pending.join()  # keep the concurrency honest while a stuck function runs

    def _settle(
        self, function: QueueFunction, message: StoredMessage, ok: bool, error: str
    ) -> None:
        try:
            if ok:
                self._store.complete(message)
                self._counters.add(completed=1)
                logger.info("message completed: %s on %s", message.message_id, function.queue)
            elif self._store.abandon(message, error):
                self._counters.add(dead_lettered=1)
                logger.warning("message dead-lettered: %s on %s after %d deliveries"
                               " (MaxDeliveryCountExceeded: %s)", message.message_id,
                               function.queue, message.delivery_count, error)
            else:
                self._counters.add(abandoned=1)
                logger.warning("message abandoned: %s on %s (delivery %d): %s",
                               message.message_id, function.queue, message.delivery_count, error)
        except PreconditionFailed as lost:
            logger.warning("could not settle message %s: %s", message.message_id, lost)
