"""The per-user event log (user_events) and its sequence counters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypedDict

from expertconnect import wire
from expertconnect.db import Executor, Row, channels


def wire_object(alias: str, keys: Iterable[str]) -> str:
    """A jsonb object of the columns `keys` of `alias`, a created_at spelled as the wire spells
    it: a payload field of the events a write logs in its own statement (log_events_ctes)."""
    fields = ", ".join(
        f"'{key}', "
        + (wire.sql_timestamp(f"{alias}.{key}") if key == "created_at" else f"{alias}.{key}")
        for key in keys
    )
    return f"jsonb_build_object({fields})"


# The tail of a statement that logs events: given a CTE `given (u, t, p, d, ord)` (user, type,
# peer, payload as jsonb or JSON text, order), it bumps the users' counters (row-locked until
# commit, in ascending user_id order, so concurrent writers cannot deadlock on them), numbers
# each user's events with their next sequence numbers (`numbered`: ord, u, seq), inserts them,
# and with $origin (a parameter, NULL for none) pg_notifies their ids on $channel (the format
# channels.decode_event_ids reads), which PostgreSQL delivers only if the transaction commits.
# The statement must read `notified` (a plain SELECT runs only if read). Shared by
# insert_events and the writes that log their events in their own statement (a message).
def log_events_ctes(origin: str, channel: str) -> str:
    return f"""bumped AS (
               INSERT INTO user_event_counters AS c (user_id, last_seq)
               SELECT u, count(*) FROM given GROUP BY u ORDER BY u
               ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
               RETURNING c.user_id, c.last_seq),
           numbered AS (
               SELECT g.ord, g.u, g.t, g.p, g.d,
                      b.last_seq - count(*) OVER per_user
                          + row_number() OVER (per_user ORDER BY g.ord) AS seq
               FROM given g JOIN bumped b ON b.user_id = g.u
               WINDOW per_user AS (PARTITION BY g.u)),
           inserted AS (
               INSERT INTO user_events (user_id, seq, event_type, peer_id, payload)
               SELECT u, seq, t, p, d::jsonb FROM numbered),
           notified AS (
               SELECT pg_notify({channel},
                                {origin} || ' ' || string_agg(u || ':' || seq, ';' ORDER BY ord))
               FROM numbered WHERE {origin} IS NOT NULL HAVING count(*) > 0)"""


async def insert_events(
    conn: Executor,
    user_ids: list[int],
    event_types: list[str],
    peer_ids: list[int | None],
    payloads: list[str],
    notify_origin: str | None,
) -> list[int]:
    """Log events (payloads as JSON text), numbering each user's with their next sequence
    numbers, in one statement; returns the seqs in the order given. With notify_origin, other
    processes are told the new ids (see log_events_ctes)."""
    rows = await conn.fetch(
        f"""WITH given AS (
               SELECT u, t, p, d, ord
               FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[])
                    WITH ORDINALITY AS g(u, t, p, d, ord)),
           {log_events_ctes("$5", "$6")}
           SELECT n.seq FROM numbered n, (SELECT count(*) FROM notified) AS sent
           ORDER BY n.ord""",
        user_ids,
        event_types,
        peer_ids,
        payloads,
        notify_origin,
        channels.EVENTS,
    )
    return [r["seq"] for r in rows]


async def notify_control(conn: Executor, payload: str) -> None:
    """A command for every server process (a payload encoded by channels, e.g. close the
    sockets of a revoked token)."""
    await conn.execute("SELECT pg_notify($1, $2)", channels.CONTROL, payload)


class EventPage(TypedDict):
    head: int
    purged_through: int
    events: list[Row]


async def get_head(conn: Executor, user_id: int) -> int:
    """The user's last committed sequence number (0 before their first event)."""
    head = await conn.fetchval(
        "SELECT last_seq FROM user_event_counters WHERE user_id = $1", user_id
    )
    return head or 0


async def list_events_after(
    conn: Executor,
    user_id: int,
    after_seq: int,
    event_types: list[str],
    peer_id: int | None,
    limit: int,
) -> EventPage:
    """One consistent read for replay: the user's committed head (last seq), the seq through
    which events were purged, and up to `limit` events after `after_seq` of the given types
    (and peer, for a chat socket), in order. {"head", "purged_through", "events": [row]}, each
    row as list_events_by_seq gives it."""
    rows = await conn.fetch(
        """SELECT COALESCE(c.last_seq, 0) AS head, COALESCE(c.purged_through, 0) AS purged_through,
                  u.user_id, e.seq, e.event_type, e.peer_id, e.payload::text AS payload
           FROM (SELECT $1::bigint AS user_id) u
           LEFT JOIN user_event_counters c ON c.user_id = u.user_id
           LEFT JOIN LATERAL (
               SELECT seq, event_type, peer_id, payload FROM user_events
               WHERE user_id = $1 AND seq > $2 AND event_type = ANY($3::text[])
                 AND ($4::bigint IS NULL OR peer_id = $4)
               ORDER BY seq
               LIMIT $5) e ON true
           ORDER BY e.seq""",
        user_id,
        after_seq,
        event_types,
        peer_id,
        limit,
    )
    return {
        "head": rows[0]["head"],
        "purged_through": rows[0]["purged_through"],
        "events": [
            {key: r[key] for key in ("user_id", "seq", "event_type", "peer_id", "payload")}
            for r in rows
            if r["seq"] is not None
        ],
    }


async def list_events_by_seq(conn: Executor, user_id: int, seqs: list[int]) -> list[Row]:
    """Events of one user by sequence number (a process relaying another's events)."""
    rows = await conn.fetch(
        """SELECT user_id, seq, event_type, peer_id, payload::text AS payload
           FROM user_events WHERE user_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq""",
        user_id,
        seqs,
    )
    return [dict(r) for r in rows]


async def delete_events_before(conn: Executor, cutoff: dt.datetime, batch: int) -> int:
    """Purge up to `batch` events older than `cutoff`, remembering per user the highest seq
    purged (so a replay from before it answers resync_required). Returns rows deleted."""
    return await conn.fetchval(
        """WITH doomed AS (
               SELECT user_id, seq FROM user_events WHERE created_at < $1
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),
           gone AS (
               DELETE FROM user_events e USING doomed d
               WHERE e.user_id = d.user_id AND e.seq = d.seq
               RETURNING e.user_id, e.seq),
           marked AS (
               UPDATE user_event_counters c SET purged_through = GREATEST(c.purged_through, g.top)
               FROM (SELECT user_id, max(seq) AS top FROM gone GROUP BY user_id) g
               WHERE c.user_id = g.user_id)
           SELECT count(*) FROM gone""",
        cutoff,
        batch,
    )
