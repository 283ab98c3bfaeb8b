"""The per-user event log (user_events) and its sequence counters."""

from __future__ import annotations


async def bump_counter(conn, user_id: int, count: int) -> int:
    """Reserve `count` sequence numbers for the user; returns the last one. Row-locks the
    user's counter until commit."""
    return await conn.fetchval(
        """INSERT INTO user_event_counters AS c (user_id, last_seq) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
           RETURNING last_seq""",
        user_id, count)


async def insert_events(conn, rows: list[tuple[int, int, str, int | None, str]],
                        notify_payload: str | None) -> None:
    """rows: (user_id, seq, event_type, peer_id, payload as JSON text). With notify_payload,
    also pg_notify other processes, which PostgreSQL does only if the transaction commits."""
    user_ids, seqs, types, peers, payloads = (list(column) for column in zip(*rows))
    await conn.execute(
        """WITH inserted AS (
               INSERT INTO user_events (user_id, seq, event_type, peer_id, payload)
               SELECT u, s, t, p, d::jsonb
               FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[])
                    AS e(u, s, t, p, d))
           SELECT pg_notify('expertconnect_events', $6) WHERE $6 IS NOT NULL""",
        user_ids, seqs, types, peers, payloads, notify_payload)


async def notify_control(conn, payload: str) -> None:
    """A command for every server process (e.g. close the sockets of a revoked token)."""
    await conn.execute("SELECT pg_notify('expertconnect_control', $1)", payload)


async def list_events_after(conn, user_id: int, after_seq: int, event_types: list[str],
                            peer_id: int | None, limit: int) -> dict:
    """One consistent read for replay: the user's committed head (last seq), the seq through
    which events were purged, and up to `limit` events after `after_seq` of the given types
    (and peer, for a chat socket), in order. {"head", "purged_through", "events": [(seq, json)]}"""
    rows = await conn.fetch(
        """SELECT COALESCE(c.last_seq, 0) AS head, COALESCE(c.purged_through, 0) AS purged_through,
                  e.seq, e.payload::text AS payload
           FROM (SELECT $1::bigint AS user_id) u
           LEFT JOIN user_event_counters c ON c.user_id = u.user_id
           LEFT JOIN LATERAL (
               SELECT seq, payload FROM user_events
               WHERE user_id = $1 AND seq > $2 AND event_type = ANY($3::text[])
                 AND ($4::bigint IS NULL OR peer_id = $4)
               ORDER BY seq
               LIMIT $5) e ON true
           ORDER BY e.seq""",
        user_id, after_seq, event_types, peer_id, limit)
    return {"head": rows[0]["head"], "purged_through": rows[0]["purged_through"],
            "events": [(r["seq"], r["payload"]) for r in rows if r["seq"] is not None]}


async def list_events_by_seq(conn, user_id: int, seqs: list[int]) -> list[dict]:
    """Events of one user by sequence number (a process relaying another's events)."""
    rows = await conn.fetch(
        """SELECT user_id, seq, event_type, peer_id, payload::text AS payload
           FROM user_events WHERE user_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq""",
        user_id, seqs)
    return [dict(r) for r in rows]


async def delete_events_before(conn, cutoff, batch: int) -> int:
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
        cutoff, batch)
