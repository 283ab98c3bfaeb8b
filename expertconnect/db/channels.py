"""The LISTEN/NOTIFY channels between server processes and what their payloads say: every
channel name and every payload format is spelled here, and decoded here.

- EVENTS: "<origin> <user>:<seq>;<user>:<seq>;..." after a transaction recorded events. Written
  by events_q.insert_events in the same statement as the events (the hottest write: no extra
  round trip), in the format decode_event_ids reads.
- CONTROL: commands for every process, e.g. "logout <user_id> <jti>".
- AUTH: "user <id>" (a user row changed) and "revoke <jti> <expiry epoch>", written by the
  triggers of 0005_auth_cache_notify.sql."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

EVENTS = "expertconnect_events"
CONTROL = "expertconnect_control"
# Also spelled by the triggers of the applied migration 0005_auth_cache_notify.sql, which is
# never edited: a new name here needs a new migration that replaces notify_auth_change().
AUTH = "expertconnect_auth"


def decode_event_ids(payload: str) -> tuple[str, dict[int, list[int]]]:
    """An EVENTS payload -> the origin process and the new seqs per user."""
    origin, _, body = payload.partition(" ")
    ids: dict[int, list[int]] = {}
    for part in filter(None, body.split(";")):
        user, _, seq = part.partition(":")
        ids.setdefault(int(user), []).append(int(seq))
    return origin, ids


@dataclass(frozen=True)
class Logout:
    """Close every socket of `user_id` that authenticated with token `jti`."""

    user_id: int
    jti: uuid.UUID


def encode_logout(user_id: int, jti: uuid.UUID) -> str:
    return f"logout {user_id} {jti}"


def decode_control(payload: str) -> Logout | None:
    """A CONTROL payload -> its command, or None for one this version does not know."""
    command, _, args = payload.partition(" ")
    if command == "logout":
        user_id, jti = args.split(" ", 1)
        return Logout(int(user_id), uuid.UUID(jti))
    return None


@dataclass(frozen=True)
class UserChanged:
    user_id: int


@dataclass(frozen=True)
class TokenRevoked:
    jti: uuid.UUID
    expires_at: float  # epoch seconds


def decode_auth(payload: str) -> UserChanged | TokenRevoked | None:
    """An AUTH payload -> what changed, or None for a kind this version does not know."""
    kind, _, value = payload.partition(" ")
    if kind == "user":
        return UserChanged(int(value))
    if kind == "revoke":
        jti, _, expires_at = value.partition(" ")
        return TokenRevoked(uuid.UUID(jti), float(expires_at))
    return None
