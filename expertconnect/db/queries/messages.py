"""Direct messages between two users, with both parties' display names."""

from __future__ import annotations

# The cursor when the client gives none: every id is below it.
_NO_CURSOR = 2**63 - 1

# The spec's message fields; m is a messages row, s its sender and r its receiver.
_MESSAGE_FIELDS = """m.id, m.sender_id, user_display_name(s) AS sender_name, m.receiver_id,
                     user_display_name(r) AS receiver_name, m.content, m.is_read, m.created_at"""


async def insert_message(conn, sender_id: int, receiver_id: int, content: str) -> dict:
    """Raises ForeignKeyViolationError for an unknown receiver, CheckViolationError for a
    message to oneself."""
    row = await conn.fetchrow(
        f"""WITH m AS (
                INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                RETURNING *)
            SELECT {_MESSAGE_FIELDS}
            FROM m JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id""",
        sender_id, receiver_id, content)
    return dict(row)


async def list_messages(conn, user_id: int, *, limit: int, before_id: int | None) -> list[dict]:
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
        user_id, before_id or _NO_CURSOR, limit)
    return [dict(row) for row in rows]


async def list_conversation(conn, user_id: int, other_id: int, *, limit: int,
                            before_id: int | None) -> list[dict]:
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
        user_id, other_id, before_id or _NO_CURSOR, limit)
    return [dict(row) for row in rows]


async def update_read_from(conn, receiver_id: int, sender_id: int) -> dict:
    """Mark every unread message from sender to receiver as read.
    Returns {"marked": how many, "up_to_id": the largest id marked, or None}."""
    row = await conn.fetchrow(
        """WITH u AS (
               UPDATE messages SET is_read = true
               WHERE sender_id = $2 AND receiver_id = $1 AND NOT is_read
               RETURNING id)
           SELECT count(*) AS marked, max(id) AS up_to_id FROM u""",
        receiver_id, sender_id)
    return dict(row)
