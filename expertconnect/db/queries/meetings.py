"""Meetings: booking, the participant's view of one, their lists, and status changes."""

from __future__ import annotations

import datetime as dt

from expertconnect.db import Executor, Row, exactly_one
from expertconnect.db.queries import (
    NO_CURSOR,
    JsonPage,
    fetch_json_page,
    json_page,
    wire_columns,
)

# The spec's meeting fields and the price; `m` is meetings, `r` the requester, `e` the expert,
# `c` the category.
_MEETING_FIELDS = """m.id, m.title, m.description,
    m.requester_id, user_display_name(r) AS requester_name,
    m.expert_id, user_display_name(e) AS expert_name,
    m.status, m.category_id, c.name AS category_name,
    m.scheduled_start, m.scheduled_end, m.created_at, m.price_credits"""
_MEETING_JOINS = """JOIN users r ON r.id = m.requester_id
    JOIN users e ON e.id = m.expert_id
    JOIN categories c ON c.id = m.category_id"""
# The same fields as the lists write them in JSON.
_MEETING_WIRE_FIELDS = wire_columns(
    _MEETING_FIELDS, timestamps=("m.scheduled_start", "m.scheduled_end", "m.created_at")
)


async def insert_meeting(
    conn: Executor,
    *,
    title: str,
    description: str,
    requester_id: int,
    expert_id: int,
    category_id: int,
    scheduled_start: dt.datetime,
    scheduled_end: dt.datetime,
) -> Row:
    """The meeting, priced at the expert's credits_per_hour x its duration in hours, rounded up
    (NULL when the expert has no price); the price never changes afterwards."""
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO meetings (title, description, requester_id, expert_id, category_id,
                                      scheduled_start, scheduled_end, price_credits)
                VALUES ($1, $2, $3, $4, $5, $6, $7,
                        (SELECT ceil(u.credits_per_hour
                                     * extract(epoch FROM $7::timestamptz - $6::timestamptz)
                                     / 3600)::bigint
                         FROM users u WHERE u.id = $4 AND u.credits_per_hour > 0))
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
    return exactly_one(row)


async def fits_availability(
    conn: Executor, expert_id: int, start: dt.datetime, end: dt.datetime
) -> bool:
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


async def get_meeting_for_participant(conn: Executor, meeting_id: int, user_id: int) -> Row | None:
    """The meeting with what was paid for it, if `user_id` is its requester or expert; None for
    everyone else."""
    row = await conn.fetchrow(
        f"""SELECT {_MEETING_FIELDS}, m.paid_credits, m.payment_status
            FROM meetings m {_MEETING_JOINS}
            WHERE m.id = $1 AND $2 IN (m.requester_id, m.expert_id)""",
        meeting_id,
        user_id,
    )
    return dict(row) if row else None


async def get_meeting_for_update(conn: Executor, meeting_id: int, user_id: int) -> Row | None:
    """Row-locks the meeting until commit, if `user_id` takes part in it; a concurrent change
    waits here and then reads the committed status."""
    row = await conn.fetchrow(
        """SELECT id, title, status, requester_id, expert_id, scheduled_start, created_at,
                  paid_credits, payment_status
           FROM meetings
           WHERE id = $1 AND $2 IN (requester_id, expert_id)
           FOR UPDATE""",
        meeting_id,
        user_id,
    )
    return dict(row) if row else None


async def lock_participants(conn: Executor, user_ids: list[int]) -> None:
    """Row-lock the users about to be given a confirmed meeting, in ascending id order, until
    commit. Two confirmations that could overlap share a participant, so they take turns here:
    the second then meets the first's committed row in the exclusion constraint (a clean
    ExclusionViolationError) instead of both finding each other's uncommitted row and waiting
    on each other (a deadlock, see PostgreSQL's execIndexing.c). NO KEY UPDATE does not block
    the foreign-key checks of other writers. Booking locks the requester alone, so that one
    person's concurrent bookings count their open requests in turn."""
    await conn.execute(
        """SELECT id FROM users WHERE id = ANY($1::bigint[])
           ORDER BY id
           FOR NO KEY UPDATE""",
        user_ids,
    )


async def count_open_requests(conn: Executor, requester_id: int, *, up_to: int) -> int:
    """The requester's pending requests, counted no further than `up_to` (the cap: the work
    stays bounded whatever the count), through meetings_requester_pending_idx."""
    return await conn.fetchval(
        """SELECT count(*) FROM (
               SELECT 1 FROM meetings
               WHERE requester_id = $1 AND status = 'pending'
               LIMIT $2) open_requests""",
        requester_id,
        up_to,
    )


async def update_status(
    conn: Executor, meeting_id: int, *, from_status: str, to_status: str, payment_status: str
) -> Row | None:
    """Move the meeting from `from_status` to `to_status`, and its payment to `payment_status`
    in the same statement (meetings_payment_status_check); None if it is no longer in
    `from_status` (somebody else changed it first)."""
    row = await conn.fetchrow(
        """UPDATE meetings SET status = $3, payment_status = $4, updated_at = now()
           WHERE id = $1 AND status = $2
           RETURNING id, status, updated_at""",
        meeting_id,
        from_status,
        to_status,
        payment_status,
    )
    return dict(row) if row else None


async def update_expired_to_cancelled(conn: Executor, *, ttl_hours: int, batch: int) -> list[Row]:
    """Cancel up to `batch` pending requests that reached their start, or were made more than
    `ttl_hours` ago, and return them with `held`, the credits held for each (now refunded: the
    caller must pay them back in the same transaction). Rows locked by anyone else (a user
    confirming it right now, another process expiring it) are skipped, never waited for: each
    row is expired by one transaction only, and a concurrent confirmation either wins or finds
    it cancelled. Found through the partial indexes meetings_pending_scheduled_start_idx and
    _created_at_idx."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM meetings
               WHERE status = 'pending'
                 AND (scheduled_start <= now()
                      OR created_at <= now() - make_interval(hours => $1))
               LIMIT $2
               FOR UPDATE SKIP LOCKED)
           UPDATE meetings m SET status = 'cancelled', updated_at = now(),
                  payment_status = CASE m.payment_status WHEN 'held' THEN 'refunded'
                                                         ELSE m.payment_status END
           FROM due WHERE m.id = due.id
           RETURNING m.id, m.title, m.requester_id, m.expert_id,
                     CASE m.payment_status WHEN 'refunded' THEN m.paid_credits ELSE 0 END
                         AS held""",
        ttl_hours,
        batch,
    )
    return [dict(row) for row in rows]


async def update_due_to_completed(conn: Executor, *, after_hours: int, batch: int) -> list[Row]:
    """Complete up to `batch` confirmed meetings that ended at least `after_hours` ago and return
    them with `held`, the credits held for each (now released: the caller must pay them to the
    expert in the same transaction). Claimed with SKIP LOCKED, as the expiry: a participant
    changing the meeting right now, or another process's sweep, is skipped, never waited for,
    and whoever holds the row decides. Found through meetings_confirmed_scheduled_end_idx."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM meetings
               WHERE status = 'confirmed'
                 AND scheduled_end <= now() - make_interval(hours => $1)
               ORDER BY scheduled_end
               LIMIT $2
               FOR UPDATE SKIP LOCKED)
           UPDATE meetings m SET status = 'completed', updated_at = now(),
                  payment_status = CASE m.payment_status WHEN 'held' THEN 'released'
                                                         ELSE m.payment_status END
           FROM due WHERE m.id = due.id
           RETURNING m.id, m.title, m.requester_id, m.expert_id,
                     CASE m.payment_status WHEN 'released' THEN m.paid_credits ELSE 0 END
                         AS held""",
        after_hours,
        batch,
    )
    return [dict(row) for row in rows]


async def update_due_reminders(conn: Executor, *, minutes: int, batch: int) -> list[Row]:
    """Claim up to `batch` confirmed meetings that start within `minutes` and were never
    reminded of: reminded_at is set once, in the transaction that writes the reminders, so each
    meeting is reminded of once whatever the number of processes or restarts. A meeting
    confirmed inside the window is found by the next sweep; one that has started is not
    reminded of any more. Found through meetings_confirmed_unreminded_start_idx."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM meetings
               WHERE status = 'confirmed' AND reminded_at IS NULL
                 AND scheduled_start > now()
                 AND scheduled_start <= now() + make_interval(mins => $1)
               ORDER BY scheduled_start
               LIMIT $2
               FOR UPDATE SKIP LOCKED)
           UPDATE meetings m SET reminded_at = now()
           FROM due WHERE m.id = due.id
           RETURNING m.id, m.title, m.requester_id, m.expert_id, m.scheduled_start""",
        minutes,
        batch,
    )
    return [dict(row) for row in rows]


# The lists: newest first, below the cursor, optionally of one status, as JSON pages. Each side
# is served by its (user, id DESC) index; "both roles" is the UNION ALL of the two sides (never
# a user is both: meetings_not_self_check), each already cut to the limit. The statements are
# built once; all take ($1 user, $2 status or NULL, $3 cursor, $4 limit).


def _side(column: str) -> str:
    """The meetings of one role below the cursor; `column` is requester_id or expert_id."""
    return f"""(SELECT * FROM meetings
                WHERE {column} = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                ORDER BY id DESC LIMIT $4)"""


def _meetings_page(rows_from: str) -> str:
    return json_page(f"SELECT {_MEETING_WIRE_FIELDS} FROM {rows_from} m {_MEETING_JOINS}")


_AS_REQUESTER = _meetings_page(_side("requester_id"))
_AS_EXPERT = _meetings_page(_side("expert_id"))
_OF_PARTICIPANT = _meetings_page(
    f"({_side('requester_id')} UNION ALL {_side('expert_id')} ORDER BY id DESC LIMIT $4)"
)


async def _list_page(
    conn: Executor,
    statement: str,
    user_id: int,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> JsonPage:
    return await fetch_json_page(conn, statement, user_id, status, before_id or NO_CURSOR, limit)


async def list_meetings_as_requester_json(
    conn: Executor, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> JsonPage:
    return await _list_page(conn, _AS_REQUESTER, user_id, status, before_id, limit)


async def list_meetings_as_expert_json(
    conn: Executor, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> JsonPage:
    return await _list_page(conn, _AS_EXPERT, user_id, status, before_id, limit)


async def list_meetings_of_participant_json(
    conn: Executor, user_id: int, *, status: str | None, before_id: int | None, limit: int
) -> JsonPage:
    return await _list_page(conn, _OF_PARTICIPANT, user_id, status, before_id, limit)
