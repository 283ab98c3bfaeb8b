"""Sending a message (the message, the receiver's notification and the events for both
parties, in one transaction) and marking a conversation read. The REST handlers and the
WebSocket chat both send through send_message."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from expertconnect.actions import outbox
from expertconnect.actions.errors import CallerGone, InvalidField
from expertconnect.actions.idempotency import Idempotency
from expertconnect.db import Executor
from expertconnect.db.queries import messages as messages_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.realtime import events
from expertconnect.services import Services

# Constraint -> the field error it means to the client.
_CONSTRAINT_ERRORS = {
    "messages_receiver_id_fkey": ("receiver_id", "User with this ID does not exist."),
    "messages_not_self_check": ("receiver_id", "You cannot send a message to yourself."),
    "messages_content_not_empty_check": ("content", "This field may not be blank."),
}
# The unique index (0010) that refuses a sender's second message with one client_msg_id.
_CLIENT_MSG_ID_INDEX = "messages_sender_client_msg_id_key"
# Long enough for a UUID or a ULID with a prefix; messages_client_msg_id_length_check agrees.
CLIENT_MSG_ID_MAX = 64
CLIENT_MSG_ID_REUSED = "This client_msg_id was already used for another message."


@dataclass
class Sent:
    """What send_message answers: the message with the spec's fields. `repeated`: the sender
    had sent it before with this client_msg_id, nothing was stored now, and `echo` is the
    frame the original produced for the sender (None once its event was purged)."""

    message: dict
    repeated: bool = False
    echo: dict | None = None


async def send_message(
    services: Services,
    sender_id: int,
    receiver_id: int,
    content: str,
    *,
    client_msg_id: str | None = None,
    idempotency: Idempotency | None = None,
) -> Sent:
    """Store the message and notify the receiver. `content` must already be validated
    (stripped, 1..realtime.max_message_length), `client_msg_id` too (1..64 characters). Raises
    InvalidField for an unknown receiver, a message to oneself, or a client_msg_id the
    sender already used for another message; CallerGone for a sender deleted meanwhile."""
    try:
        if idempotency is None:
            # One statement in autocommit: atomic on its own, and committed when it answers.
            sent, recorded = await _store(
                services, services.db, sender_id, receiver_id, content, client_msg_id
            )
            services.hub.publish(recorded)
            return sent
        async with outbox.transaction(services, idempotency) as box:
            box.result, recorded = await _store(
                services, box.conn, sender_id, receiver_id, content, client_msg_id
            )
            for event in recorded:
                box.add(event)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != _CLIENT_MSG_ID_INDEX or client_msg_id is None:
            raise
        return await _sent_before(services, sender_id, receiver_id, content, client_msg_id)
    except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as exc:
        if exc.constraint_name == "messages_sender_id_fkey":
            raise CallerGone() from None
        if exc.constraint_name not in _CONSTRAINT_ERRORS:
            raise
        field, text = _CONSTRAINT_ERRORS[exc.constraint_name]
        raise InvalidField(field, text) from None
    return box.result


async def _store(
    services: Services,
    conn: Executor,
    sender_id: int,
    receiver_id: int,
    content: str,
    client_msg_id: str | None,
) -> tuple[Sent, list[events.Event]]:
    """The message, its notification and their events, logged by the one statement that
    stores them (so the events already carry their seqs); they are to be published once it
    has committed."""
    message, notification, seqs = await messages_q.insert_message(
        conn,
        sender_id,
        receiver_id,
        content,
        notification_title="New Message",
        client_msg_id=client_msg_id,
        notify_origin=services.relay.origin if services.relay is not None else None,
    )
    recorded = [
        events.message_received(receiver_id, message),
        # The sender's own sockets (other tabs, the chat it was typed in) get it too.
        events.message_received(sender_id, message, client_msg_id),
        events.notification_received(notification),
    ]
    for event, seq in zip(recorded, seqs, strict=True):
        event.seq = seq
    return Sent(message), recorded


async def _sent_before(
    services: Services, sender_id: int, receiver_id: int, content: str, client_msg_id: str
) -> Sent:
    """A send refused by the client_msg_id index: the original, if it is the same message (a
    retry); else the id was reused for another one. Read after the refusing transaction
    ended, so the original (which the refusal waited for) has committed."""
    original = await messages_q.get_message_by_client_msg_id(services.db, sender_id, client_msg_id)
    if original is None:  # deleted since, with its sender or receiver
        raise InvalidField("client_msg_id", CLIENT_MSG_ID_REUSED)
    message = original["message"]
    if (message["receiver_id"], message["content"]) != (receiver_id, content):
        raise InvalidField("client_msg_id", CLIENT_MSG_ID_REUSED)
    echo = None
    if original["echo_seq"] is not None:
        echo = {**json.loads(original["echo_payload"]), "event_id": original["echo_seq"]}
    return Sent(message, repeated=True, echo=echo)


async def mark_read(services: Services, reader_id: int, sender_id: int) -> int:
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
