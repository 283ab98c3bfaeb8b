"""Direct messages between two users, with both parties' display names."""

from __future__ import annotations

from expertconnect.db import Executor, Row, exactly_one
from expertconnect.db.queries import NO_CURSOR
from expertconnect.db.queries.notifications import NOTIFICATION_COLUMNS

_NOTIFICATION_KEYS = [c.strip() for c in NOTIFICATION_COLUMNS.split(",")]


# The spec's message fields; m is a messages row, s its sender and r its receiver.
_MESSAGE_FIELDS = """m.id, m.sender_id, user_display_name(s) AS sender_name, m.receiver_id,
                     user_display_name(r) AS receiver_name, m.content, m.is_read, m.created_at"""
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
    conn: Executor,
    sender_id: int,
    receiver_id: int,
    content: str,
    notification_title: str,
    client_msg_id: str | None = None,
) -> tuple[Row, Row]:
    """The message and the receiver's new_message notification titled `notification_title`,
    in one statement (the hottest write: one round trip fewer); the notification's content
    names the sender, whose display name only SQL knows here. Returns (message,
    notification). Raises ForeignKeyViolationError for an unknown receiver,
    CheckViolationError for a message to oneself, UniqueViolationError for a client_msg_id the
    sender has used before."""
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO messages (sender_id, receiver_id, content, client_msg_id)
                VALUES ($1, $2, $3, $5)
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
        client_msg_id,
    )
    both = exactly_one(row)
    message = {key: both[key] for key in _MESSAGE_KEYS}
    notification = {key: both[f"n_{key}"] for key in _NOTIFICATION_KEYS}
    return message, notification


async def get_message_by_client_msg_id(
    conn: Executor, sender_id: int, client_msg_id: str
) -> Row | None:
    """The sender's message with this client_msg_id and the message.receive event it produced
    for the sender: {"message": the spec's fields, "echo_seq", "echo_payload" (JSON text)}, the
    last two None once the event is purged by retention. The event is found by the message's
    created_at, which it shares: both rows take it from now(), the start of the one
    transaction that wrote them (user_events_created_at_idx finds the few events of that
    instant)."""
    row = await conn.fetchrow(
        f"""SELECT {_MESSAGE_FIELDS}, e.seq AS echo_seq, e.payload::text AS echo_payload
            FROM messages m
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            LEFT JOIN LATERAL (
                SELECT seq, payload FROM user_events
                WHERE created_at = m.created_at AND user_id = m.sender_id
                  AND event_type = 'message.receive' AND peer_id = m.receiver_id
                  AND (payload->'message'->>'id')::bigint = m.id
                LIMIT 1) e ON true
            WHERE m.sender_id = $1 AND m.client_msg_id = $2""",
        sender_id,
        client_msg_id,
    )
    if row is None:
        return None
    return {
        "message": {key: row[key] for key in _MESSAGE_KEYS},
        "echo_seq": row["echo_seq"],
        "echo_payload": row["echo_payload"],
    }


async def list_messages(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None
) -> list[Row]:
    """Messages sent or received by the user, newest first. Each direction is read from its
    own (user, id DESC) index and limited before the two are merged."""
    rows = await conn.fetch(
        f"""SELECT {_MESSAGE_FIELDS}
            FROM ((SELECT * FROM messages WHERE sender_id = $1 AND id < $2
                   ORDER BY id DESC LIMIT $3)
                  UNION ALL
                  (SELECT * FROM messages WHERE receiver_id = $1 AND id < $2
                   ORDER BY id DESC LIMIT $3)
                  ORDER BY id DESC LIMIT $3) m
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            ORDER BY m.id DESC""",
        user_id,
        before_id or NO_CURSOR,
        limit,
    )
    return [dict(row) for row in rows]


async def list_conversation(
    conn: Executor, user_id: int, other_id: int, *, limit: int, before_id: int | None
) -> list[Row]:
    """Messages between the two users, newest first: both directions through the
    (sender_id, receiver_id, id DESC) index, never an OR that defeats it."""
    rows = await conn.fetch(
        f"""SELECT {_MESSAGE_FIELDS}
            FROM ((SELECT * FROM messages WHERE sender_id = $1 AND receiver_id = $2 AND id < $3
                   ORDER BY id DESC LIMIT $4)
                  UNION ALL
                  (SELECT * FROM messages WHERE sender_id = $2 AND receiver_id = $1 AND id < $3
                   ORDER BY id DESC LIMIT $4)
                  ORDER BY id DESC LIMIT $4) m
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            ORDER BY m.id DESC""",
        user_id,
        other_id,
        before_id or NO_CURSOR,
        limit,
    )
    return [dict(row) for row in rows]


async def update_read_from(conn: Executor, receiver_id: int, sender_id: int) -> Row:
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
    return exactly_one(row)


async def list_conversations(conn: Executor, user_id: int, *, limit: int) -> list[Row]:
    """One row per person the user has exchanged messages with, most recent exchange first:
    {"user_id", "user_name", "last_message", "unread_count"}.

    One pass over the user's messages finds each peer's newest message id and the number of
    messages that peer sent unread: the sent side is an index-only range of
    messages_sender_receiver_id_idx, the received side a range of messages_receiver_id_id_idx.
    Only the `limit` newest conversations are then joined to their last message (by primary
    key) and to the users. The cost grows with the user's message count, not the table's."""
    rows = await conn.fetch(
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
            SELECT p.peer_id AS user_id, user_display_name(o) AS user_name, p.unread_count,
                   {_MESSAGE_FIELDS}
            FROM peers p
            JOIN users o ON o.id = p.peer_id
            JOIN messages m ON m.id = p.last_id
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            ORDER BY p.last_id DESC""",
        user_id,
        limit,
    )
    return [
        {
            "user_id": row["user_id"],
            "user_name": row["user_name"],
            "last_message": {key: row[key] for key in _MESSAGE_KEYS},
            "unread_count": row["unread_count"],
        }
        for row in rows
    ]
