"""At-least-once events between GAplics, through NATS JetStream (a helper of GRemote).

Opt-in per event: ``send_event_outside(..., __durable__=True)``; the receiving GAplic's
GRemote has ``durable = true``.

* The events go to one JetStream stream (``durable_stream``, file storage, work-queue
  retention: an event is removed once acknowledged) on ``P.dur.<dst>.<src>.<gobj>.<EVENT>``.
* **Sending** queues the event (bounded by ``durable_max_queued``) and returns; one task
  per GAplic publishes the queue in order, one event at a time, each with a
  ``Nats-Msg-Id`` of its own, and retries it **with the same id** until the server has
  stored it or ``durable_publish_timeout`` has passed.  A publish that timed out may still
  have been stored (the research reproduced it): the id lets the server drop the copy
  (within the stream's ``duplicate_window``).  Unlike core events, durable events sent
  while disconnected wait in the queue.  An event not stored in time is reported
  (``EV_REMOTE_ERROR``, reason ``durable_not_stored``).
* **Receiving**: a durable pull consumer per GAplic (``fsmio_<gaplic>``, filter
  ``P.dur.<me>.>``) survives restarts of either side.  Each event is delivered with kw
  ``__redelivered__`` (True when the server delivers it again) and acknowledged **after**
  the action returns.  An action that raises gets it again after
  ``durable_retry_delay``; after ``durable_max_deliver`` deliveries it is a dead letter
  (``EV_REMOTE_ERROR``, reason ``dead_letter``).  An unknown gobj or a refused event is
  terminated at once (reported, not retried).  The action must be idempotent, or check
  ``__redelivered__``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fsmio.remote.errors import RemoteError

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["DurableChannel"]

_LOG = logging.getLogger("fsmio")

#: What ``deliver`` returns for a message: ack it, retry it later, or drop it for good.
ACK, RETRY, TERM = "ack", "retry", "term"


class DurableChannel:
    """The JetStream side of one GRemote: a publishing queue and a pull consumer."""

    def __init__(
        self,
        *,
        me: str,
        prefix: str,
        stream: str,
        ack_wait: float,
        max_deliver: int,
        retry_delay: float,
        publish_timeout: float,
        max_queued: int,
        spawn: Callable[[Any], asyncio.Task[Any]],
        deliver: Callable[[Msg, bool, bool], str],
        report: Callable[[str, str, str], None],
        logger: logging.Logger | None = None,
    ) -> None:
        self.me = me
        self.prefix = prefix
        self.stream = stream
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.retry_delay = retry_delay
        self.publish_timeout = publish_timeout
        self.max_queued = max_queued
        self._spawn = spawn
        self._deliver = deliver
        self._report = report
        self._log = logger or _LOG
        self._queue: collections.deque[tuple[str, bytes, dict[str, str]]] = collections.deque()
        self._wake = asyncio.Event()
        self._boot = os.urandom(6).hex()
        self._seq = 0
        self._nc: NatsClient | None = None
        self._publisher: asyncio.Task[Any] | None = None
        self._consumer: asyncio.Task[Any] | None = None
        self._ready = False
        #: Statistics.
        self.stored = 0
        self.duplicates = 0
        self.delivered = 0
        self.redelivered = 0
        self.dead_letters = 0

    @property
    def subject_root(self) -> str:
        return f"{self.prefix}.dur"

    def my_subjects(self) -> str:
        return f"{self.subject_root}.{self.me}.>"

    def subject_to(self, gaplic: str, gobj: str, event: str) -> str:
        return f"{self.subject_root}.{gaplic}.{self.me}.{gobj}.{event}"

    def queued(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------------------------
    #   Life cycle
    # ------------------------------------------------------------------------------------
    async def start(self, nc: NatsClient) -> None:
        """Make sure the stream and this GAplic's consumer exist; start both tasks."""
        from nats.js.api import (
            AckPolicy,
            ConsumerConfig,
            RetentionPolicy,
            StorageType,
            StreamConfig,
        )
        from nats.js.errors import NotFoundError

        self._nc = nc
        js = nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.subject_root}.>"],
                    retention=RetentionPolicy.WORK_QUEUE,
                    storage=StorageType.FILE,
                    duplicate_window=120.0,
                )
            )
        config = ConsumerConfig(
            durable_name=f"fsmio_{self.me}",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            filter_subject=self.my_subjects(),
        )
        pull = await js.pull_subscribe(
            self.my_subjects(), durable=f"fsmio_{self.me}", stream=self.stream, config=config
        )
        self._ready = True
        if self._publisher is None:
            self._publisher = self._spawn(self._publish_loop())
        if self._consumer is None:
            self._consumer = self._spawn(self._consume_loop(pull))
        self._wake.set()

    async def stop(self) -> None:
        for task in (self._consumer, self._publisher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._consumer = self._publisher = None

    # ------------------------------------------------------------------------------------
    #   Sending
    # ------------------------------------------------------------------------------------
    def send(self, subject: str, payload: bytes, headers: dict[str, str]) -> str:
        """Queue one durable event; returns its ``Nats-Msg-Id``."""
        if len(self._queue) >= self.max_queued:
            raise RemoteError(
                f"{len(self._queue)} durable events wait to be stored, the limit "
                f"durable_max_queued: this one was not queued"
            )
        self._seq += 1
        msg_id = f"{self.me}-{self._boot}-{self._seq}"
        self._queue.append((subject, payload, {**headers, "Nats-Msg-Id": msg_id}))
        self._wake.set()
        return msg_id

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            subject, payload, headers = self._queue[0]
            deadline = loop.time() + self.publish_timeout
            stored = False
            while loop.time() < deadline:
                nc = self._nc
                try:
                    if nc is None or not nc.is_connected:
                        raise ConnectionError("not connected")
                    ack = await nc.jetstream().publish(
                        subject, payload, timeout=min(2.0, self.publish_timeout), headers=headers
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Maybe stored anyway: the same Nats-Msg-Id makes the retry harmless.
                    self._log.debug("durable publish %s: %r; again", headers["Nats-Msg-Id"], exc)
                    await asyncio.sleep(0.1)
                    continue
                stored = True
                self.stored += 1
                if ack.duplicate:
                    self.duplicates += 1
                break
            self._queue.popleft()
            if not stored:
                self._report(
                    "durable_not_stored",
                    f"{headers['Nats-Msg-Id']} not stored in {self.publish_timeout} s",
                    subject,
                )

    # ------------------------------------------------------------------------------------
    #   Receiving
    # ------------------------------------------------------------------------------------
    async def _consume_loop(self, pull: Any) -> None:
        import nats.errors

        while True:
            try:
                msgs = await pull.fetch(batch=64, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as exc:
                # Disconnected, or the server restarting: the consumer is durable, so
                # fetching again later goes on where it was.
                self._log.debug("durable fetch: %r", exc)
                await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        delivered = msg.metadata.num_delivered
        redelivered = delivered > 1
        last_chance = delivered >= self.max_deliver
        self.delivered += 1
        if redelivered:
            self.redelivered += 1
        outcome = self._deliver(msg, redelivered, last_chance)
        try:
            if outcome == ACK:
                await msg.ack()
            elif outcome == TERM:
                await msg.term()
            elif last_chance:
                self.dead_letters += 1
                await msg.term()
                self._report("dead_letter", f"failed {delivered} times; given up", msg.subject)
            else:
                await msg.nak(delay=self.retry_delay)
        except Exception as exc:
            # The ack did not reach the server: it will deliver the event again.
            self._log.warning("durable ack of %s: %r", msg.subject, exc)
