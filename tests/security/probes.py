"""Shared by the security tests: raw requests that tolerate a non-JSON answer, a raw WebSocket
handshake, forged tokens, booking helpers, a database snapshot and the leak check. (What every
test shares is in tests/helpers.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from helpers import JWT_SECRET, PASSWORD

# Substrings that would mean an internal detail reached a client.
LEAK_MARKERS = (
    "Traceback",
    "traceback",
    "asyncpg",
    "SELECT",
    "INSERT",
    "UPDATE ",
    "psycopg",
    "/work/",
    ".py",
    'File "',
    "Exception",
    "Error:",
    "<html",
)


@dataclass
class Raw:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def json(self):
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def raw(
    url: str,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict | None = None,
    token: str | None = None,
) -> Raw:
    """One request; unlike the api fixture it does not insist the answer is JSON, so that a
    test can assert that it is."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Raw(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


WS_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
}


def handshake(
    url: str, path: str, token: str | None, *, headers: dict | None = None, quote_token: bool = True
) -> Raw:
    """A WebSocket opening handshake over a plain HTTP connection: 101 when accepted, else the
    refusal's status and body."""
    if token is not None:
        sep = "&" if "?" in path else "?"
        path += f"{sep}token={quote(token, safe='') if quote_token else token}"
    return raw(url, "GET", path, headers={**WS_UPGRADE, **(headers or {})})


def assert_json_error(r: Raw, status: int | tuple[int, ...]) -> dict:
    """A refusal in the API's shape: the status, a JSON body, the standard headers, and no
    internals."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status in statuses, (r.status, r.text[:500])
    assert r.content_type.startswith("application/json"), (r.content_type, r.text[:200])
    body = r.json
    assert isinstance(body, dict) and set(body) in ({"error"}, {"errors"}), body
    assert_no_leak(r.text)
    return body


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} in response: {text[:500]}"


# ---------------------------------------------------------------------- tokens
def b64url(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def valid_claims(user_id, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + 3600, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


def hand_signed(
    header: dict, claims: dict, *, key: bytes | None = JWT_SECRET.encode(), digest=hashlib.sha256
) -> str:
    """A JWT assembled by hand, for headers pyjwt refuses to produce (an RS256 header over an
    HMAC signature, 'None' spelled oddly). key=None: no signature at all."""
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}"
    signature = (
        "" if key is None else b64url(hmac.new(key, signing_input.encode(), digest).digest())
    )
    return f"{signing_input}.{signature}"


# ---------------------------------------------------------------------- users and meetings
def register(url: str, **fields) -> dict:
    """A user registered through the API of the server at `url`: its fields plus id/token."""
    tag = uuid.uuid4().hex[:10]
    body = {
        "username": f"sec_{tag}",
        "email": f"sec_{tag}@example.com",
        "password": PASSWORD,
        "first_name": "Sec",
        "last_name": tag,
    }
    body.update(fields)
    r = raw(url, "POST", "/api/users/register/", body=json.dumps(body))
    assert r.status == 201, r.text
    return {**body, "id": r.json["id"], "token": r.json["token"]}


def at(hours: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def meeting_body(expert_id: int, **overrides) -> dict:
    body = {
        "title": "Security review",
        "description": "",
        "expert_id": expert_id,
        "category_id": 1,
        "scheduled_start": at(24),
        "scheduled_end": at(25),
    }
    body.update(overrides)
    return body


def book(api, requester, expert, **overrides) -> dict:
    r = api(
        "POST", "/api/meetings/", token=requester.token, json=meeting_body(expert.id, **overrides)
    )
    assert r.status == 201, r.text
    return r.json


def meeting_in(api, requester, expert, state: str) -> dict:
    meeting = book(api, requester, expert)
    # The requester completes: the expert may not before the meeting has started.
    moves = {
        "pending": [],
        "confirmed": [(expert, "confirmed")],
        "completed": [(expert, "confirmed"), (requester, "completed")],
        "cancelled": [(expert, "cancelled")],
    }[state]
    for actor, status in moves:
        r = api(
            "PATCH",
            f"/api/meetings/{meeting['id']}/update_status/",
            token=actor.token,
            json={"status": status},
        )
        assert r.status == 200, r.text
    return meeting


# ---------------------------------------------------------------------- database snapshot
# Every row that belongs to or mentions the given users, as JSON: one round trip, compared
# before and after a refused request to prove that it changed nothing.
_SNAPSHOT = """
SELECT json_build_object(
  'users', (SELECT json_agg(t ORDER BY id) FROM users t WHERE id = ANY($1::bigint[])),
  'credit_accounts', (SELECT json_agg(t ORDER BY user_id) FROM credit_accounts t
                      WHERE user_id = ANY($1::bigint[])),
  'credit_transactions', (SELECT json_agg(t ORDER BY id) FROM credit_transactions t
                          WHERE user_id = ANY($1::bigint[])),
  'payments', (SELECT json_agg(t ORDER BY id) FROM payments t WHERE user_id = ANY($1::bigint[])),
  'meetings', (SELECT json_agg(t ORDER BY id) FROM meetings t
               WHERE requester_id = ANY($1::bigint[]) OR expert_id = ANY($1::bigint[])),
  'reviews', (SELECT json_agg(t ORDER BY id) FROM reviews t
              WHERE reviewer_id = ANY($1::bigint[]) OR reviewee_id = ANY($1::bigint[])),
  'notifications', (SELECT json_agg(t ORDER BY id) FROM notifications t
                    WHERE user_id = ANY($1::bigint[])),
  'messages', (SELECT json_agg(t ORDER BY id) FROM messages t
               WHERE sender_id = ANY($1::bigint[]) OR receiver_id = ANY($1::bigint[])),
  'user_skills', (SELECT json_agg(t ORDER BY id) FROM user_skills t
                  WHERE user_id = ANY($1::bigint[])),
  'user_availability', (SELECT json_agg(t ORDER BY id) FROM user_availability t
                        WHERE user_id = ANY($1::bigint[])),
  'user_events', (SELECT json_agg(t ORDER BY user_id, seq) FROM user_events t
                  WHERE user_id = ANY($1::bigint[])),
  'revoked_tokens', (SELECT json_agg(t ORDER BY jti) FROM revoked_tokens t
                     WHERE user_id = ANY($1::bigint[]))
)::text
"""


def snapshot(db, *users) -> dict:
    ids = [u if isinstance(u, int) else u.id for u in users]
    return json.loads(db.fetchval(_SNAPSHOT, ids))
