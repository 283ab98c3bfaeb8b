"""Meetings: booking, the participant's view of one, their lists, and status changes."""

from __future__ import annotations

import datetime as dt

# The spec's meeting fields; `m` is meetings, `r` the requester, `e` the expert, `c` the category.
_MEETING_FIELDS = """m.id, m.title, m.description,
    m.requester_id, user_display_name(r) AS requester_name,
    m.expert_id, user_display_name(e) AS expert_name,
    m.status, m.category_id, c.name AS category_name,
    m.scheduled_start, m.scheduled_end, m.created_at"""
_MEETING_JOINS = """JOIN users r ON r.id = m.requester_id
    JOIN users e ON e.id = m.expert_id
    JOIN categories c ON c.id = m.category_id"""

# A cursor of "no cursor": every id is below it. Keeps `id < $n` an index condition.
_NO_CURSOR = 2**63 - 1


async def insert_meeting(conn, *, title: str, description: str, requester_id: int,
                         expert_id: int, category_id: int, scheduled_start: dt.datetime,
                         scheduled_end: dt.datetime) -> dict:
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO meetings (title, description, requester_id, expert_id, category_id,
                                      scheduled_start, scheduled_end)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING *)
            SELECT {_MEETING_FIELDS} FROM m {_MEETING_JOINS}""",
        title, description, requester_id, expert_id, category_id, scheduled_start, scheduled_end)
    return dict(row)


async def get_meeting_for_participant(conn, meeting_id: int, user_id: int) -> dict | None:
    """The meeting, if `user_id` is its requester or expert; None for everyone else."""
    row = await conn.fetchrow(
        f"""SELECT {_MEETING_FIELDS} FROM meetings m {_MEETING_JOINS}
            WHERE m.id = $1 AND $2 IN (m.requester_id, m.expert_id)""",
        meeting_id, user_id)
    return dict(row) if row else None


async def get_meeting_for_update(conn, meeting_id: int, user_id: int) -> dict | None:
    """Row-locks the meeting until commit, if `user_id` takes part in it; a concurrent change
    waits here and then reads the committed status."""
    row = await conn.fetchrow(
        """SELECT id, title, status, requester_id, expert_id FROM meetings
           WHERE id = $1 AND $2 IN (requester_id, expert_id)
           FOR UPDATE""",
        meeting_id, user_id)
    return dict(row) if row else None


async def update_status(conn, meeting_id: int, *, from_status: str, to_status: str) -> dict | None:
    """Move the meeting from `from_status` to `to_status`; None if it is no longer in
    `from_status` (somebody else changed it first)."""
    row = await conn.fetchrow(
        """UPDATE meetings SET status = $3, updated_at = now()
           WHERE id = $1 AND status = $2
           RETURNING id, status, updated_at""",
        meeting_id, from_status, to_status)
    return dict(row) if row else None


# The lists: newest first, below the cursor, optionally of one status. Each side is served by
# its (user, id DESC) index; "both roles" is the UNION ALL of the two sides (never a user is
# both: meetings_not_self_check), each already cut to the limit.

async def list_meetings_as_requester(conn, user_id: int, *, status: str | None,
                                     before_id: int | None, limit: int) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {_MEETING_FIELDS}
            FROM (SELECT * FROM meetings
                  WHERE requester_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC""",
        user_id, status, before_id or _NO_CURSOR, limit)
    return [dict(row) for row in rows]


async def list_meetings_as_expert(conn, user_id: int, *, status: str | None,
                                  before_id: int | None, limit: int) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {_MEETING_FIELDS}
            FROM (SELECT * FROM meetings
                  WHERE expert_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC""",
        user_id, status, before_id or _NO_CURSOR, limit)
    return [dict(row) for row in rows]


async def list_meetings_of_participant(conn, user_id: int, *, status: str | None,
                                       before_id: int | None, limit: int) -> list[dict]:
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
        user_id, status, before_id or _NO_CURSOR, limit)
    return [dict(row) for row in rows]
