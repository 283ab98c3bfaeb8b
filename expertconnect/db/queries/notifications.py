"""Notifications."""

from __future__ import annotations

NOTIFICATION_COLUMNS = ("id, user_id, title, content, notification_type, related_id, is_read, "
                        "created_at")


async def insert_notification(conn, *, user_id: int, notification_type: str, title: str,
                              content: str, related_id: int | None) -> dict:
    row = await conn.fetchrow(
        f"""INSERT INTO notifications (user_id, notification_type, title, content, related_id)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING {NOTIFICATION_COLUMNS}""",
        user_id, notification_type, title, content, related_id)
    return dict(row)
