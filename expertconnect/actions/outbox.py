"""A transaction that records events: rows are written to the event log inside it, and the
events are published to sockets only after it has committed. With an Idempotency-Key it also
claims the key first and stores the request's answer before it commits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from expertconnect import wire
from expertconnect.actions.idempotency import Idempotency
from expertconnect.db import Executor
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.realtime import events
from expertconnect.realtime.events import Event
from expertconnect.services import Relay, Services


class Outbox:
    def __init__(self, conn: Executor):
        self.conn = conn
        self.events: list[Event] = []
        # What the action returns; with an Idempotency-Key, the answer is rendered from it.
        self.result: Any = None

    def add(self, event: Event) -> None:
        """Queue an event; one whose seq is set was already logged by the action's own
        statement, and is only published after the commit."""
        self.events.append(event)

    async def add_notification(
        self,
        *,
        user_id: int,
        notification_type: str,
        title: str,
        content: str,
        related_id: int | None,
    ) -> dict:
        """Store a notification row and queue its notification.receive event. (Not
        pg_notify: other processes hear of recorded events through record().)"""
        notification = await notifications_q.insert_notification(
            self.conn,
            user_id=user_id,
            notification_type=notification_type,
            title=title,
            content=content,
            related_id=related_id,
        )
        self.add(events.notification_received(notification))
        return notification

    async def record(self, relay: Relay | None) -> None:
        """Write the queued events to the log, in one statement that also gives each its
        user's next sequence number; with a relay, other processes hear of them on commit."""
        unlogged = [e for e in self.events if e.seq is None]
        if not unlogged:
            return
        seqs = await events_q.insert_events(
            self.conn,
            [e.user_id for e in unlogged],
            [e.event_type for e in unlogged],
            [e.peer_id for e in unlogged],
            [wire.dumps(e.payload) for e in unlogged],
            relay.origin if relay is not None else None,
        )
        for event, seq in zip(unlogged, seqs, strict=False):
            event.seq = seq


@contextlib.asynccontextmanager
async def transaction(
    services: Services, idempotency: Idempotency | None = None
) -> AsyncIterator[Outbox]:
    """`async with outbox.transaction(services) as box:` use box.conn for queries,
    box.add_notification() and box.add() for events. Events reach sockets only if the
    transaction commits. With `idempotency`, the key is claimed before the block runs (raising
    Replayed, 409 or 422 instead of running it), and the answer rendered from box.result, which
    the block sets, is stored before the commit."""
    async with services.db.transaction() as conn:
        box = Outbox(conn)
        if idempotency is not None:
            await idempotency.claim(conn)
        yield box
        if idempotency is not None:
            await idempotency.store(conn, box.result)
        await box.record(services.relay)
    services.hub.publish(box.events)
