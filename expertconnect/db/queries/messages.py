"""Direct messages between two users, with both parties' display names."""

from __future__ import annotations

from expertconnect.db.queries import (
    NO_CURSOR,
    JsonPage,
    fetch_json_page,
    json_array,
    json_page,
    wire_columns,
)
from expertconnect.db.queries.notifications import NOTIFICATION_COLUMNS

_NOTIFICATION_KEYS = [c.strip() for c in NOTIFICATION_COLUMNS.split(",")]


# The spec's message fields; m is a messages row, s its sender and r its receiver.
_MESSAGE_FIELDS = """m.id, m.sender_id, user_display_name(s) AS sender_name, m.receiver_id,
                     user_display_name(r) AS receiver_name, m.content, m.is_read, m.created_at"""
# The same fields as the lists write them in JSON.
_MESSAGE_WIRE_FIELDS = wire_columns(_MESSAGE_FIELDS, timestamps=("m.created_at",))
_MESSAGE_KEYS = (
    "id",
    "sender_id",
    "sender_name",
    "receiver_id",
    "receiver_name",
    "content",
    "is_read",
    "created_at",
)


async def insert_message(
    conn,
    sender_id: int,
    receiver_id: int,
    content: str,
    notification_title: str,
) -> tuple[dict, dict]:
    """The message and the receiver's new_message notification titled `notification_title`,
    in one statement (the hottest write: one round trip fewer); the notification's content
    names the sender, whose display name only SQL knows here. Returns (message,
    notification). Raises ForeignKeyViolationError for an unknown receiver,
    CheckViolationError for a message to oneself."""
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                RETURNING *),
            named AS (
                SELECT {_MESSAGE_FIELDS}
                FROM m JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id),
            n AS (
                INSERT INTO notifications (user_id, notification_type, title, content, related_id)
                SELECT receiver_id, 'new_message', $4,
                       'You have a new message from ' || sender_name || '.', id
                FROM named
                RETURNING {NOTIFICATION_COLUMNS})
            SELECT named.*, {", ".join(f"n.{c} AS n_{c}" for c in _NOTIFICATION_KEYS)}
            FROM named, n""",
        sender_id,
        receiver_id,
        content,
        notification_title,
    )
    message = {key: row[key] for key in _MESSAGE_KEYS}
    notification = {key: row[f"n_{key}"] for key in _NOTIFICATION_KEYS}
    return message, notification


async def list_messages_json(conn, user_id: int, *, limit: int, before_id: int | None) -> JsonPage:
    """Messages sent or received by the user, newest first. Each direction is read from its
    own (user, id DESC) index and limited before the two are merged."""
    return await fetch_json_page(
        conn,
        json_page(
            f"""SELECT {_MESSAGE_WIRE_FIELDS}
                FROM ((SELECT * FROM messages WHERE sender_id = $1 AND id < $2
                       ORDER BY id DESC LIMIT $3)
                      UNION ALL
                      (SELECT * FROM messages WHERE receiver_id = $1 AND id < $2
                       ORDER BY id DESC LIMIT $3)
                      ORDER BY id DESC LIMIT $3) m
                JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id"""
        ),
        user_id,
        before_id or NO_CURSOR,
        limit,
    )


async def list_conversation_json(
    conn, user_id: int, other_id: int, *, limit: int, before_id: int | None
) -> JsonPage:
    """Messages between the two users, newest first: both directions through the
    (sender_id, receiver_id, id DESC) index, never an OR that defeats it."""
    return await fetch_json_page(
        conn,
        json_page(
            f"""SELECT {_MESSAGE_WIRE_FIELDS}
                FROM ((SELECT * FROM messages
                       WHERE sender_id = $1 AND receiver_id = $2 AND id < $3
                       ORDER BY id DESC LIMIT $4)
                      UNION ALL
                      (SELECT * FROM messages
                       WHERE sender_id = $2 AND receiver_id = $1 AND id < $3
                       ORDER BY id DESC LIMIT $4)
                      ORDER BY id DESC LIMIT $4) m
                JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id"""
        ),
        user_id,
        other_id,
        before_id or NO_CURSOR,
        limit,
    )


async def update_read_from(conn, receiver_id: int, sender_id: int) -> dict:
    """Mark every unread message from sender to receiver as read.
    Returns {"marked": how many, "up_to_id": the largest id marked, or None}."""
    row = await conn.fetchrow(
        """WITH u AS (
               UPDATE messages SET is_read = true
               WHERE sender_id = $2 AND receiver_id = $1 AND NOT is_read
               RETURNING id)
           SELECT count(*) AS marked, max(id) AS up_to_id FROM u""",
        receiver_id,
        sender_id,
    )
    return dict(row)


async def list_conversations_json(conn, user_id: int, *, limit: int) -> str:
    """One item per person the user has exchanged messages with, most recent exchange first,
    as a JSON array: {"user_id", "user_name", "last_message", "unread_count"}.

    One pass over the user's messages finds each peer's newest message id and the number of
    messages that peer sent unread: the sent side is an index-only range of
    messages_sender_receiver_id_idx, the received side a range of messages_receiver_id_id_idx.
    Only the `limit` newest conversations are then joined to their last message (by primary
    key) and to the users. The cost grows with the user's message count, not the table's."""
    return await conn.fetchval(
        f"""WITH peers AS (
                SELECT peer_id, max(id) AS last_id,
                       count(*) FILTER (WHERE unread) AS unread_count
                FROM (SELECT receiver_id AS peer_id, id, false AS unread
                      FROM messages WHERE sender_id = $1
                      UNION ALL
                      SELECT sender_id, id, NOT is_read
                      FROM messages WHERE receiver_id = $1) mine
                GROUP BY peer_id
                ORDER BY last_id DESC
                LIMIT $2)
            SELECT {json_array(order_by="p.last_id DESC")}
            FROM peers p
            JOIN users o ON o.id = p.peer_id
            JOIN messages m ON m.id = p.last_id
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            CROSS JOIN LATERAL (SELECT {_MESSAGE_WIRE_FIELDS}) last_message
            CROSS JOIN LATERAL (
                SELECT p.peer_id AS user_id, user_display_name(o) AS user_name,
                       row_to_json(last_message) AS last_message, p.unread_count) w""",
        user_id,
        limit,
    )
