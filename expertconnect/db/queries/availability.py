"""Users' weekly availability windows (user_availability rows: a day of the week and a
wall-clock time range). Not to be confused with free slots (slots.py), which are computed from
them."""

from __future__ import annotations

import datetime as dt

from expertconnect.db import Executor, Row, exactly_one

_WINDOW_COLUMNS = "id, user_id AS user, day_of_week, start_time, end_time"


async def list_windows(conn: Executor, user_id: int) -> list[Row]:
    """A user's week, Sunday first; served by the gist index of
    user_availability_no_overlap_excl."""
    rows = await conn.fetch(
        f"""SELECT {_WINDOW_COLUMNS} FROM user_availability
            WHERE user_id = $1
            ORDER BY day_of_week, start_time""",
        user_id,
    )
    return [dict(r) for r in rows]


async def insert_window(
    conn: Executor, user_id: int, *, day_of_week: int, start_time: dt.time, end_time: dt.time
) -> Row:
    """Raises ExclusionViolationError (user_availability_no_overlap_excl) on an overlap."""
    row = await conn.fetchrow(
        f"""INSERT INTO user_availability (user_id, day_of_week, start_time, end_time)
            VALUES ($1, $2, $3, $4)
            RETURNING {_WINDOW_COLUMNS}""",
        user_id,
        day_of_week,
        start_time,
        end_time,
    )
    return exactly_one(row)


async def get_overlapping_window(
    conn: Executor, user_id: int, *, day_of_week: int, start_time: dt.time, end_time: dt.time
) -> Row | None:
    """The earliest window of the user that overlaps the given one (to name it in an error)."""
    row = await conn.fetchrow(
        f"""SELECT {_WINDOW_COLUMNS} FROM user_availability
            WHERE user_id = $1 AND day_of_week = $2
              AND timerange(start_time, end_time) && timerange($3, $4)
            ORDER BY start_time
            LIMIT 1""",
        user_id,
        day_of_week,
        start_time,
        end_time,
    )
    return dict(row) if row else None


async def delete_window(conn: Executor, window_id: int, user_id: int) -> bool:
    """Delete the window if `user_id` owns it; False if there is no such window of theirs."""
    deleted = await conn.fetchval(
        "DELETE FROM user_availability WHERE id = $1 AND user_id = $2 RETURNING id",
        window_id,
        user_id,
    )
    return deleted is not None
