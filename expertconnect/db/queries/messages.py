"""Direct messages between two users, with both parties' display names."""

from __future__ import annotations

from expertconnect.db import Executor, Row, channels, exactly_one
from expertconnect.db.queries import (
    NO_CURSOR,
    JsonPage,
    fetch_json_page,
    json_array,
    json_page,
    wire_columns,
)
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries.notifications import NOTIFICATION_COLUMNS, NOTIFICATION_KEYS

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


# The payload objects of the events a send logs: `named` is the message (_MESSAGE_FIELDS), `n`
# its notification.
_MESSAGE_PAYLOAD = events_q.wire_object("named", _MESSAGE_KEYS)
_NOTIFICATION_PAYLOAD = events_q.wire_object("n", NOTIFICATION_KEYS)


async def insert_message(
    conn: Executor,
    sender_id: int,
    receiver_id: int,
    content: str,
    notification_title: str,
    client_msg_id: str | None,
    notify_origin: str | None,
) -> tuple[Row, Row, list[int]]:
    """The message, the receiver's new_message notification titled `notification_title` and
    the three events they cause, logged with their sequence numbers (events_q.log_events_ctes):
    message.receive for the receiver, message.receive for the sender's own sockets (with the
    client_msg_id, if any) and notification.receive for the receiver, spelled as
    realtime/events.py spells them (the data layer may not import it; tests/test_realtime.py
    checks that a replayed frame equals the live one). One statement: the hottest write, and
    in autocommit it needs no BEGIN and COMMIT round trips either. The notification's content
    names the sender, whose display name only SQL knows here. Returns (message, notification,
    the three events' seqs in that order). Raises ForeignKeyViolationError for an unknown
    receiver, CheckViolationError for a message to oneself, UniqueViolationError for a
    client_msg_id the sender has used before. Both parties' conversations rows follow by
    trigger (0011)."""
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
                RETURNING {NOTIFICATION_COLUMNS}),
            given AS (
                SELECT e.*
                FROM named, n,
                     LATERAL (SELECT {_MESSAGE_PAYLOAD} AS message,
                                     {_NOTIFICATION_PAYLOAD} AS notification) j,
                     LATERAL (VALUES
                        (named.receiver_id, 'message.receive', named.sender_id,
                         jsonb_build_object('type', 'message.receive',
                                            'message', j.message), 1),
                        (named.sender_id, 'message.receive', named.receiver_id,
                         jsonb_build_object('type', 'message.receive',
                                            'message', j.message)
                         || CASE WHEN $5::text IS NULL THEN '{{}}'::jsonb
                                 ELSE jsonb_build_object('client_msg_id', $5::text) END, 2),
                        (n.user_id, 'notification.receive', NULL::bigint,
                         jsonb_build_object('type', 'notification.receive',
                                            'notification', j.notification), 3)
                     ) AS e(u, t, p, d, ord)),
            {events_q.log_events_ctes("$6::text", "$7::text")}
            SELECT named.*, {", ".join(f"n.{c} AS n_{c}" for c in NOTIFICATION_KEYS)},
                   (SELECT array_agg(seq ORDER BY ord) FROM numbered) AS seqs,
                   (SELECT count(*) FROM notified) AS notified
            FROM named, n""",
        sender_id,
        receiver_id,
        content,
        notification_title,
        client_msg_id,
        notify_origin,
        channels.EVENTS,
    )
    both = exactly_one(row)
    message = {key: both[key] for key in _MESSAGE_KEYS}
    notification = {key: both[f"n_{key}"] for key in NOTIFICATION_KEYS}
    return message, notification, list(both["seqs"])


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


async def list_messages_json(
    conn: Executor, user_id: int, *, limit: int, before_id: int | None
) -> JsonPage:
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
    conn: Executor, user_id: int, other_id: int, *, limit: int, before_id: int | None
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


async def update_read_from(conn: Executor, receiver_id: int, sender_id: int) -> Row:
    """Mark every unread message from sender to receiver as read.
    Returns {"marked": how many, "up_to_id": the largest id marked, or None}. The receiver's
    unread count in conversations follows at commit (trigger messages_count_read, 0011)."""
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


async def list_conversations_json(conn: Executor, user_id: int, *, limit: int) -> str:
    """One item per person the user has exchanged messages with, most recent exchange first,
    as a JSON array: {"user_id", "user_name", "last_message", "unread_count"}.

    The conversations table (0011) holds each peer's newest message id and unread count,
    kept by triggers on messages; its (user_id, last_message_id DESC) index gives the `limit`
    newest, which alone are joined to their last message (by primary key) and to the users.
    The cost grows with the page, not with the user's history."""
    return await conn.fetchval(
        f"""SELECT {json_array(order_by="c.last_message_id DESC")}
            FROM (SELECT peer_id, last_message_id, unread_count FROM conversations
                  WHERE user_id = $1
                  ORDER BY last_message_id DESC
                  LIMIT $2) c
            JOIN users o ON o.id = c.peer_id
            JOIN messages m ON m.id = c.last_message_id
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            CROSS JOIN LATERAL (SELECT {_MESSAGE_WIRE_FIELDS}) last_message
            CROSS JOIN LATERAL (
                SELECT c.peer_id AS user_id, user_display_name(o) AS user_name,
                       row_to_json(last_message) AS last_message, c.unread_count) w""",
        user_id,
        limit,
    )
