"""Notifications."""

from __future__ import annotations

from expertconnect.db import Executor, Row, exactly_one
from expertconnect.db.queries import (
    NO_CURSOR,
    JsonPage,
    fetch_json_page,
    json_page,
    wire_columns,
)

NOTIFICATION_COLUMNS = (
    "id, user_id, title, content, notification_type, related_id, is_read, created_at"
)
NOTIFICATION_KEYS = [c.strip() for c in NOTIFICATION_COLUMNS.split(",")]

# The same columns as the lists write them in JSON.
_NOTIFICATION_WIRE_COLUMNS = wire_columns(NOTIFICATION_COLUMNS, timestamps=("created_at",))


async def insert_notification(
    conn: Executor,
    *,
    user_id: int,
    notification_type: str,
    title: str,
    content: str,
    related_id: int | None,
) -> Row:
    row = await conn.fetchrow(
        f"""INSERT INTO notifications (user_id, notification_type, title, content, related_id)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING {NOTIFICATION_COLUMNS}""",
        user_id,
        notification_type,
        title,
        content,
        related_id,
    )
    return exactly_one(row)


# Three list functions rather than one with an optional filter: "unread" must be spelled
# `NOT is_read` for the planner to use the partial index notifications_user_id_unread_idx.
# The statements are built once; all take ($1 user, $2 cursor, $3 limit).


def _notifications_page(condition: str) -> str:
    return json_page(
        f"""SELECT {_NOTIFICATION_WIRE_COLUMNS} FROM notifications
            WHERE user_id = $1 {condition} AND id < $2 ORDER BY id DESC LIMIT $3"""
    )


_ALL = _notifications_page("")
_UNREAD = _notifications_page("AND NOT is_read")
_READ = _notifications_page("AND is_read")


async def list_notifications_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None
) -> JsonPage:
    return await fetch_json_page(conn, _ALL, user_id, before_id or NO_CURSOR, limit)


async def list_unread_notifications_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None
) -> JsonPage:
    return await fetch_json_page(conn, _UNREAD, user_id, before_id or NO_CURSOR, limit)


async def list_read_notifications_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None
) -> JsonPage:
    return await fetch_json_page(conn, _READ, user_id, before_id or NO_CURSOR, limit)


async def get_notification(conn: Executor, user_id: int, notification_id: int) -> Row | None:
    """The notification, if it belongs to the user."""
    row = await conn.fetchrow(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2",
        notification_id,
        user_id,
    )
    return dict(row) if row else None


async def update_read(
    conn: Executor, user_id: int, notification_id: int, is_read: bool
) -> Row | None:
    """Set is_read on the user's own notification; None if it is missing or someone else's."""
    row = await conn.fetchrow(
        """UPDATE notifications SET is_read = $3, updated_at = now()
           WHERE id = $1 AND user_id = $2
           RETURNING id, is_read, updated_at""",
        notification_id,
        user_id,
        is_read,
    )
    return dict(row) if row else None


async def update_all_read(conn: Executor, user_id: int) -> int:
    """Mark every unread notification of the user as read; returns how many."""
    return await conn.fetchval(
        """WITH u AS (
               UPDATE notifications SET is_read = true, updated_at = now()
               WHERE user_id = $1 AND NOT is_read
               RETURNING 1)
           SELECT count(*) FROM u""",
        user_id,
    )


async def count_unread(conn: Executor, user_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND NOT is_read", user_id
    )


async def update_read_for_conversation(conn: Executor, reader_id: int, sender_id: int) -> list[Row]:
    """Mark read the reader's unread new_message notifications about messages `sender_id` sent
    them (reading a conversation reads its notifications too); returns them, oldest first.
    The reader's unread notifications come from notifications_user_id_unread_idx, each
    message by its primary key."""
    rows = await conn.fetch(
        f"""UPDATE notifications n SET is_read = true, updated_at = now()
            FROM messages m
            WHERE n.user_id = $1 AND NOT n.is_read AND n.notification_type = 'new_message'
              AND m.id = n.related_id AND m.sender_id = $2 AND m.receiver_id = $1
            RETURNING {", ".join(f"n.{c}" for c in NOTIFICATION_COLUMNS.split(", "))}""",
        reader_id,
        sender_id,
    )
    return sorted((dict(row) for row in rows), key=lambda n: n["id"])
