"""Delivery across server processes (realtime.backend: postgres) through LISTEN/NOTIFY.

A transaction that records events also calls pg_notify with their (user, seq) ids; PostgreSQL
delivers a notification only when its transaction commits, and in commit order. Every process
hears them on its LISTEN connection (db/listener.py), ignores its own notifications, and for
users with sockets here reads the rows from the event log, so the 8000-byte payload limit never
applies to the events themselves."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from expertconnect.db import Database, channels
from expertconnect.db.listener import Listener, Subscription
from expertconnect.db.queries import events as events_q
from expertconnect.realtime.events import Event
from expertconnect.realtime.hub import Hub

log = logging.getLogger(__name__)


class PostgresRelay:
    def __init__(self, listener: Listener, db: Database, hub: Hub[Event]):
        self.db = db
        self.hub = hub
        self.origin = uuid.uuid4().hex[:12]
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        listener.subscribe(
            Subscription(
                {
                    channels.EVENTS: self._on_notify(channels.EVENTS),
                    channels.CONTROL: self._on_notify(channels.CONTROL),
                },
                on_restored=self._resume_sockets,
            )
        )

    async def start(self) -> None:
        self._consumer = asyncio.create_task(self._consume())

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()

    def _on_notify(self, channel: str) -> Callable[[str], None]:
        def enqueue(payload: str) -> None:
            self._queue.put_nowait((channel, payload))

        return enqueue

    def _resume_sockets(self) -> None:
        """The LISTEN connection was lost and is back: sockets here may have missed events
        meanwhile. They are closed with 1012 so clients reconnect with last_event_id and
        replay."""
        log.warning("relay: asking sockets to resume after a lost LISTEN connection")
        self.hub.close_all(1012, "Reconnect with last_event_id to resume")

    async def _consume(self) -> None:
        """One notification at a time, in arrival (= commit) order."""
        while True:
            channel, payload = await self._queue.get()
            try:
                if channel == channels.CONTROL:
                    self._apply_control(payload)
                else:
                    await self._relay(payload)
            except Exception:
                # One bad notification must not stop delivery of the following ones.
                log.exception("relay: cannot handle notification %r", payload[:200])

    def _apply_control(self, payload: str) -> None:
        command = channels.decode_control(payload)
        if isinstance(command, channels.Logout):
            self.hub.close_token(command.user_id, command.jti)

    async def _relay(self, payload: str) -> None:
        origin, ids = channels.decode_event_ids(payload)
        if origin == self.origin:
            return
        for user_id, seqs in ids.items():
            if not self.hub.sockets_of(user_id):
                continue
            rows = await events_q.list_events_by_seq(self.db, user_id, seqs)
            self.hub.publish(Event.from_row(row) for row in rows)
