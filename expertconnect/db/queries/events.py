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


async def insert_events(conn, rows: list[tuple[int, int, str, int | None, str]]) -> None:
    """rows: (user_id, seq, event_type, peer_id, payload as JSON text)."""
    await conn.executemany(
        """INSERT INTO user_events (user_id, seq, event_type, peer_id, payload)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        rows)
