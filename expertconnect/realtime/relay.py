"""Delivery across server processes (realtime.backend: postgres) through LISTEN/NOTIFY.

A transaction that records events also calls pg_notify with their (user, seq) ids; PostgreSQL
delivers a notification only when its transaction commits, and in commit order. Every process
LISTENs on a dedicated connection (never a pooled one: LISTEN is session state), ignores its own
notifications, and for users with sockets here reads the rows from the event log, so the
8000-byte payload limit never applies to the events themselves."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg

from expertconnect.db import channels
from expertconnect.db.queries import events as events_q
from expertconnect.realtime.events import Event
from expertconnect.realtime.hub import Hub

log = logging.getLogger(__name__)

# Seconds between attempts to re-establish a lost LISTEN connection.
RECONNECT_DELAY = 1.0


class PostgresRelay:
    def __init__(self, dsn: str, db, hub: Hub):
        self.dsn = dsn
        self.db = db
        self.hub = hub
        self.origin = uuid.uuid4().hex[:12]
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._conn: asyncpg.Connection | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._connect()
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._watch())]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    async def _connect(self) -> None:
        self._conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "expertconnect-relay"}
        )
        await self._conn.add_listener(channels.EVENTS, self._on_notify)
        await self._conn.add_listener(channels.CONTROL, self._on_notify)

    def _on_notify(self, conn, pid, channel: str, payload: str) -> None:
        self._queue.put_nowait((channel, payload))

    async def _watch(self) -> None:
        """Re-LISTEN when the connection drops. Sockets here may have missed events meanwhile:
        they are closed with 1012 so clients reconnect with last_event_id and replay."""
        while not self._stopping:
            await asyncio.sleep(RECONNECT_DELAY)
            if self._conn is not None and not self._conn.is_closed():
                continue
            try:
                await self._connect()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("relay: cannot re-LISTEN yet: %r", exc)
                continue
            log.warning("relay: LISTEN connection restored; asking sockets to resume")
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
