"""A transaction that records events: rows are written to the event log inside it, and the
events are published to sockets only after it has committed."""

from __future__ import annotations

import contextlib
from itertools import groupby
from typing import AsyncIterator

from expertconnect import wire
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.realtime import events
from expertconnect.realtime.events import Event


class Outbox:
    def __init__(self, conn):
        self.conn = conn
        self.events: list[Event] = []

    def add(self, event: Event) -> None:
        self.events.append(event)

    async def notify(self, *, user_id: int, notification_type: str, title: str, content: str,
                     related_id: int | None) -> dict:
        """Store a notification and queue its notification.receive event."""
        notification = await notifications_q.insert_notification(
            self.conn, user_id=user_id, notification_type=notification_type, title=title,
            content=content, related_id=related_id)
        self.add(events.notification_received(notification))
        return notification

    async def record(self, relay) -> None:
        """Give each event its user's next sequence number and write the log rows. Counters are
        bumped in ascending user_id order, so concurrent writers cannot deadlock on them.
        With a relay, other processes are told the new ids when the transaction commits."""
        ordered = sorted(self.events, key=lambda e: e.user_id)
        rows = []
        for user_id, group in groupby(ordered, key=lambda e: e.user_id):
            group = list(group)
            last = await events_q.bump_counter(self.conn, user_id, len(group))
            for seq, event in enumerate(group, start=last - len(group) + 1):
                event.seq = seq
                rows.append((user_id, seq, event.event_type, event.peer_id,
                             wire.dumps(event.payload)))
        if rows:
            notify_payload = relay.payload_for(self.events) if relay is not None else None
            await events_q.insert_events(self.conn, rows, notify_payload)


@contextlib.asynccontextmanager
async def transaction(services) -> AsyncIterator[Outbox]:
    """`async with outbox.transaction(services) as box:` use box.conn for queries, box.notify()
    and box.add() for events. Events reach sockets only if the transaction commits."""
    async with services.db.transaction() as conn:
        box = Outbox(conn)
        yield box
        await box.record(services.relay)
    services.hub.publish(box.events)
