"""Sending a message (the message, the receiver's notification and the events for both
parties, in one transaction) and marking a conversation read. The REST handlers and the
WebSocket chat both send through send_message."""

from __future__ import annotations

import asyncpg

from expertconnect.actions import outbox
from expertconnect.actions.errors import CallerGone, InvalidField
from expertconnect.db.queries import messages as messages_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.realtime import events

# Constraint -> the field error it means to the client.
_CONSTRAINT_ERRORS = {
    "messages_receiver_id_fkey": ("receiver_id", "User with this ID does not exist."),
    "messages_not_self_check": ("receiver_id", "You cannot send a message to yourself."),
    "messages_content_not_empty_check": ("content", "This field may not be blank."),
}


async def send_message(services, sender_id: int, receiver_id: int, content: str) -> dict:
    """Store the message and notify the receiver; returns the message with the spec's fields.
    `content` must already be validated (stripped, 1..realtime.max_message_length). Raises
    InvalidField for an unknown receiver or a message to oneself, CallerGone for a sender
    deleted meanwhile."""
    try:
        async with outbox.transaction(services) as box:
            message, notification = await messages_q.insert_message(
                box.conn,
                sender_id,
                receiver_id,
                content,
                notification_title="New Message",
            )
            box.add(events.message_received(receiver_id, message))
            # The sender's own sockets (other tabs, the chat it was typed in) get it too.
            box.add(events.message_received(sender_id, message))
            box.add(events.notification_received(notification))
    except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as exc:
        if exc.constraint_name == "messages_sender_id_fkey":
            raise CallerGone() from None
        if exc.constraint_name not in _CONSTRAINT_ERRORS:
            raise
        field, text = _CONSTRAINT_ERRORS[exc.constraint_name]
        raise InvalidField(field, text) from None
    return message


async def mark_read(services, reader_id: int, sender_id: int) -> int:
    """Mark the messages `sender_id` sent `reader_id` as read and tell the sender how far they
    have been read. The reader's new_message notifications about them are read with them, and
    each goes out again as notification.receive (now is_read), so the reader's badge and chat
    agree. Returns how many messages were marked."""
    async with outbox.transaction(services) as box:
        result = await messages_q.update_read_from(box.conn, reader_id, sender_id)
        for notification in await notifications_q.update_read_for_conversation(
            box.conn, reader_id, sender_id
        ):
            box.add(events.notification_received(notification))
        if result["marked"]:
            box.add(
                events.messages_read(
                    user_id=sender_id, reader_id=reader_id, up_to_id=result["up_to_id"]
                )
            )
    return result["marked"]
