"""Safe retries with an Idempotency-Key: the key a handler hands to an action. The action's
transaction (outbox.transaction) claims the key as its first statement and stores the answer
rendered from its result just before it commits, so the answer exists exactly when the effect
does; a request whose key already has an answer does nothing and raises Replayed with it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from expertconnect import wire
from expertconnect.actions.errors import KeyInUse, KeyReused, Refused
from expertconnect.db import Executor
from expertconnect.db.queries import idempotency as idempotency_q

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1..255 printable ASCII characters (Tornado has already stripped surrounding white space).
_KEY = re.compile(r"[\x20-\x7e]{1,255}")
BAD_KEY = f"{KEY_HEADER} must be 1 to 255 printable ASCII characters"
KEY_IN_USE = f"A request with this {KEY_HEADER} is still being processed; retry shortly"
KEY_REUSED = f"This {KEY_HEADER} was already used for a different request"
# What a request that finds its key in use is told to wait: the request holding the key is one
# transaction, a few milliseconds; a second is long enough and short enough.
RETRY_AFTER_SECONDS = "1"


def parse_key(raw: str | None) -> str | None:
    """The header's key, None without one; Refused (a 400) naming the header otherwise."""
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise Refused(BAD_KEY)
    return raw


def request_hash(method: str, path: str, body: Any) -> bytes:
    """sha256 of what makes two requests the same: method, path and the JSON body in canonical
    form (keys sorted, no white space), so a client that re-serializes its body in another key
    order is still sending the same request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = f"{method} {path}\n{canonical}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Answer:
    status: int
    body: str  # the JSON text, exactly as sent


class Replayed(Exception):
    """The key already has an answer: nothing was done, send this one again."""

    def __init__(self, answer: Answer):
        super().__init__(answer.status)
        self.answer = answer


@dataclass
class Idempotency:
    user_id: int
    key: str
    request_hash: bytes
    status: int
    # The action's result -> the JSON payload the handler answers.
    payload: Callable[[Any], Any]
    # Set by store(): the answer this request's transaction stored (and is to be sent).
    answer: Answer | None = None

    async def claim(self, conn: Executor) -> None:
        """The transaction's first statement: take the key (or 409 if another request holds
        it), then raise Replayed with its stored answer, or 422 if that answer was given to a
        different request. Returns when the work is to be done."""
        row = await idempotency_q.get_claimed_key(conn, self.user_id, self.key)
        if not row["locked"]:
            raise KeyInUse(KEY_IN_USE, retry_after=RETRY_AFTER_SECONDS)
        if row["request_hash"] is None:
            return
        if bytes(row["request_hash"]) != self.request_hash:
            raise KeyReused(KEY_REUSED)
        raise Replayed(Answer(row["status"], row["body"]))

    async def store(self, conn: Executor, result: Any) -> None:
        """Render the answer from the action's result and store it in the transaction."""
        self.answer = Answer(self.status, wire.dumps(self.payload(result)))
        await idempotency_q.insert_answer(
            conn, self.user_id, self.key, self.request_hash, self.answer.status, self.answer.body
        )
