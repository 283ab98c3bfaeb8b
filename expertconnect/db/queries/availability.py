"""Users' weekly availability windows (user_availability rows: a day of the week and a
wall-clock time range). Not to be confused with free slots (slots.py), which are computed from
them."""

from __future__ import annotations

import datetime as dt

from expertconnect.db import Executor, Row, exactly_one
from expertconnect.db.queries import json_array
from expertconnect.wire import sql_time_of_day

_WINDOW_COLUMNS = "id, user_id AS user, day_of_week, start_time, end_time"


async def list_windows_json(conn: Executor, user_id: int) -> str:
    """A user's week, Sunday first, as a JSON array; served by the gist index of
    user_availability_no_overlap_excl."""
    return await conn.fetchval(
        f"""SELECT {json_array(order_by="w.day_of_week, w.start_time")}
            FROM (SELECT id, user_id AS user, day_of_week,
                         {sql_time_of_day("start_time")} AS start_time,
                         {sql_time_of_day("end_time")} AS end_time
                  FROM user_availability
                  WHERE user_id = $1) w""",
        user_id,
    )


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
