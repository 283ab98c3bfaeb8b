"""The one place event frames are spelled. A frame is what a socket receives; the event log
stores it without `event_id`, which is added when it is pushed or replayed."""

from __future__ import annotations

import json
from dataclasses import dataclass

MESSAGE_RECEIVE = "message.receive"
NOTIFICATION_RECEIVE = "notification.receive"
MESSAGE_READ = "message.read"


@dataclass
class Event:
    """A frame for one user. seq is given when the event is recorded in the log."""

    user_id: int
    event_type: str
    payload: dict
    peer_id: int | None = None
    seq: int | None = None

    def frame(self) -> dict:
        return {**self.payload, "event_id": self.seq}

    @classmethod
    def from_row(cls, row: dict) -> Event:
        """From a user_events row (payload as JSON text)."""
        return cls(
            row["user_id"],
            row["event_type"],
            json.loads(row["payload"]),
            row["peer_id"],
            row["seq"],
        )


def message_received(user_id: int, message: dict, client_msg_id: str | None = None) -> Event:
    """`message` with the spec's fields; `user_id` is the receiver or the sender (own echo).
    The sender's echo carries the client_msg_id the message was sent with, if any."""
    peer = message["receiver_id"] if user_id == message["sender_id"] else message["sender_id"]
    payload = {"type": MESSAGE_RECEIVE, "message": message}
    if client_msg_id is not None:
        payload["client_msg_id"] = client_msg_id
    return Event(user_id, MESSAGE_RECEIVE, payload, peer)


def notification_received(notification: dict) -> Event:
    return Event(
        notification["user_id"],
        NOTIFICATION_RECEIVE,
        {"type": NOTIFICATION_RECEIVE, "notification": notification},
    )


def messages_read(user_id: int, reader_id: int, up_to_id: int) -> Event:
    """Tells a sender that `reader_id` has read their messages up to `up_to_id`."""
    return Event(
        user_id,
        MESSAGE_READ,
        {"type": MESSAGE_READ, "reader_id": reader_id, "up_to_id": up_to_id},
        reader_id,
    )


def error_frame(message: str) -> dict:
    return {"type": "error", "error": message}


def resync_required_frame() -> dict:
    return {"type": "resync_required"}
