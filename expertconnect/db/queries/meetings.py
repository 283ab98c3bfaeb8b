"""Meetings: booking, the participant's view of one, their lists, and status changes."""

from __future__ import annotations

import datetime as dt

from expertconnect.db.queries import NO_CURSOR

# The spec's meeting fields; `m` is meetings, `r` the requester, `e` the expert, `c` the category.
_MEETING_FIELDS = """m.id, m.title, m.description,
    m.requester_id, user_display_name(r) AS requester_name,
    m.expert_id, user_display_name(e) AS expert_name,
    m.status, m.category_id, c.name AS category_name,
    m.scheduled_start, m.scheduled_end, m.created_at"""
_MEETING_JOINS = """JOIN users r ON r.id = m.requester_id
    JOIN users e ON e.id = m.expert_id
    JOIN categories c ON c.id = m.category_id"""


async def insert_meeting(
    conn,
    *,
    title: str,
    description: str,
    requester_id: int,
    expert_id: int,
    category_id: int,
    scheduled_start: dt.datetime,
    scheduled_end: dt.datetime,
) -> dict:
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO meetings (title, description, requester_id, expert_id, category_id,
                                      scheduled_start, scheduled_end)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING *)
            SELECT {_MEETING_FIELDS} FROM m {_MEETING_JOINS}""",
        title,
        description,
        requester_id,
        expert_id,
        category_id,
        scheduled_start,
        scheduled_end,
    )
    return dict(row)


async def fits_availability(conn, expert_id: int, start: dt.datetime, end: dt.datetime) -> bool:
    """True if the expert declared no availability at all, or if one of their availability
    windows on that weekday covers [start, end), both read as wall-clock times in the expert's
    time zone.
    A meeting that crosses the expert's local midnight never fits: no window ends after 24:00.
    The windows are found through user_availability_no_overlap_excl's index (user_id, day)."""
    return await conn.fetchval(
        """SELECT NOT EXISTS (SELECT 1 FROM user_availability WHERE user_id = $1)
               OR EXISTS (
                   SELECT 1
                   FROM users u
                   CROSS JOIN LATERAL (
                       SELECT $2::timestamptz AT TIME ZONE u.timezone AS start_local,
                              $3::timestamptz AT TIME ZONE u.timezone AS end_local) l
                   JOIN user_availability a
                     ON a.user_id = u.id
                    AND a.day_of_week = EXTRACT(DOW FROM l.start_local)::smallint
                   WHERE u.id = $1
                     AND l.start_local >= l.start_local::date + a.start_time
                     AND l.end_local <= l.start_local::date + a.end_time)""",
        expert_id,
        start,
        end,
    )


async def get_meeting_for_participant(conn, meeting_id: int, user_id: int) -> dict | None:
    """The meeting, if `user_id` is its requester or expert; None for everyone else."""
    row = await conn.fetchrow(
        f"""SELECT {_MEETING_FIELDS} FROM meetings m {_MEETING_JOINS}
            WHERE m.id = $1 AND $2 IN (m.requester_id, m.expert_id)""",
        meeting_id,
        user_id,
    )
    return dict(row) if row else None


async def get_meeting_for_update(conn, meeting_id: int, user_id: int) -> dict | None:
    """Row-locks the meeting until commit, if `user_id` takes part in it; a concurrent change
    waits here and then reads the committed status."""
    row = await conn.fetchrow(
        """SELECT id, title, status, requester_id, expert_id, scheduled_start, created_at
           FROM meetings
           WHERE id = $1 AND $2 IN (requester_id, expert_id)
           FOR UPDATE""",
        meeting_id,
        user_id,
    )
    return dict(row) if row else None


async def lock_participants(conn, user_ids: list[int]) -> None:
    """Row-lock the users about to be given a confirmed meeting, in ascending id order, until
    commit. Two confirmations that could overlap share a participant, so they take turns here:
    the second then meets the first's committed row in the exclusion constraint (a clean
    ExclusionViolationError) instead of both finding each other's uncommitted row and waiting
    on each other (a deadlock, see PostgreSQL's execIndexing.c). NO KEY UPDATE does not block
    the foreign-key checks of other writers."""
    await conn.execute(
        """SELECT id FROM users WHERE id = ANY($1::bigint[])
           ORDER BY id
           FOR NO KEY UPDATE""",
        user_ids,
    )


async def update_status(conn, meeting_id: int, *, from_status: str, to_status: str) -> dict | None:
    """Move the meeting from `from_status` to `to_status`; None if it is no longer in
    `from_status` (somebody else changed it first)."""
    row = await conn.fetchrow(
        """UPDATE meetings SET status = $3, updated_at = now()
           WHERE id = $1 AND status = $2
           RETURNING id, status, updated_at""",
        meeting_id,
        from_status,
        to_status,
    )
    return dict(row) if row else None


async def update_expired_to_cancelled(conn, *, ttl_hours: int, batch: int) -> list[dict]:
    """Cancel up to `batch` pending requests that reached their start, or were made more than
    `ttl_hours` ago, and return them. Rows locked by anyone else (a user confirming it right
    now, another process expiring it) are skipped, never waited for: each row is expired by one
    transaction only, and a concurrent confirmation either wins or finds it cancelled. Found
    through the partial indexes meetings_pending_scheduled_start_idx and _created_at_idx."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM meetings
               WHERE status = 'pending'
                 AND (scheduled_start <= now()
                      OR created_at <= now() - make_interval(hours => $1))
               LIMIT $2
               FOR UPDATE SKIP LOCKED)
           UPDATE meetings m SET status = 'cancelled', updated_at = now()
           FROM due WHERE m.id = due.id
           RETURNING m.id, m.title, m.requester_id, m.expert_id""",
        ttl_hours,
        batch,
    )
    return [dict(row) for row in rows]


# The lists: newest first, below the cursor, optionally of one status. Each side is served by
# its (user, id DESC) index; "both roles" is the UNION ALL of the two sides (never a user is
# both: meetings_not_self_check), each already cut to the limit.


async def list_meetings_as_requester(
    conn, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {_MEETING_FIELDS}
            FROM (SELECT * FROM meetings
                  WHERE requester_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC""",
        user_id,
        status,
        before_id or NO_CURSOR,
        limit,
    )
    return [dict(row) for row in rows]


async def list_meetings_as_expert(
    conn, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {_MEETING_FIELDS}
            FROM (SELECT * FROM meetings
                  WHERE expert_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC""",
        user_id,
        status,
        before_id or NO_CURSOR,
        limit,
    )
    return [dict(row) for row in rows]


async def list_meetings_of_participant(
    conn, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {_MEETING_FIELDS}
            FROM ((SELECT * FROM meetings
                   WHERE requester_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                   ORDER BY id DESC LIMIT $4)
                  UNION ALL
                  (SELECT * FROM meetings
                   WHERE expert_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                   ORDER BY id DESC LIMIT $4)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC""",
        user_id,
        status,
        before_id or NO_CURSOR,
        limit,
    )
    return [dict(row) for row in rows]
