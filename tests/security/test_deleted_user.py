"""A user deleted from the database after authenticating (a socket opened before, a request
authenticated a moment before, from the auth cache or not): whatever they send next is refused
as unauthenticated, 401 on REST and close code 4401 on a socket, never a 500, a dropped socket
or a traceback in the log. (Deleting a users row cascades to their skills, availability, credit
account and ledger, messages, notifications, revoked tokens and event log; users with meetings,
reviews or payments cannot be deleted at all, so paying for or reviewing a meeting cannot meet
a deleted caller.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import asyncpg
import pytest
from helpers import api_request, closed

USER_GONE = {"error": "User no longer exists"}


def _hours_ahead(hours: int) -> str:
    at = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return (at + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def test_a_chat_frame_from_a_deleted_user_closes_the_socket_with_4401(
    server, ws, make_user, db
):
    alice, bob = make_user(), make_user()
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    log_before = len(server.log_text())
    assert db.execute("DELETE FROM users WHERE id = $1", alice.id) == "DELETE 1"
    chat.write_message(json.dumps({"type": "message.send", "content": "still here?"}))
    assert await closed(chat) == 4401
    assert chat.close_reason == USER_GONE["error"]
    assert "Traceback" not in server.log_text()[log_before:]
    assert db.fetchval("SELECT count(*) FROM messages WHERE receiver_id = $1", bob.id) == 0


# (method, path, body(peer), the table whose write the request is held at)
WRITES = {
    "send a message": (
        "POST",
        "/api/messages/",
        lambda peer: {"receiver_id": peer.id, "content": "hello"},
        "messages",
    ),
    "book a meeting": (
        "POST",
        "/api/meetings/",
        lambda peer: {
            "title": "Deleted meanwhile",
            "expert_id": peer.id,
            "category_id": 1,
            "scheduled_start": _hours_ahead(30),
            "scheduled_end": _hours_ahead(31),
        },
        # Booking first locks the requester's users row.
        "users",
    ),
    "buy credits": (
        "POST",
        "/api/payments/purchase_credits/",
        lambda peer: {"payment_method": "paypal", "amount": "5.00", "credits_to_purchase": 5},
        "payments",
    ),
    "add a skill": (
        "POST",
        "/api/user-skills/",
        lambda peer: {"category": 1, "skill_name": "Gone", "proficiency_level": "expert"},
        "user_skills",
    ),
    "add availability": (
        "POST",
        "/api/user-availability/",
        lambda peer: {"day_of_week": 1, "start_time": "09:00", "end_time": "10:00"},
        "user_availability",
    ),
    "update the profile": ("PUT", "/api/users/me/", lambda peer: {"bio": "gone"}, "users"),
    "log out": ("POST", "/api/users/logout/", lambda peer: {}, "revoked_tokens"),
}


@pytest.mark.parametrize("write", WRITES)
async def test_a_write_by_a_user_deleted_after_authentication_is_a_401(
    server, make_user, database_dsn, write
):
    method, path, body, table = WRITES[write]
    user, peer = make_user(), make_user()
    # The user as the auth cache holds it: the request below needs no query to authenticate.
    assert api_request(server.url, "GET", "/api/users/me/", token=user.token).status == 200
    log_before = len(server.log_text())
    conn = await asyncpg.connect(database_dsn)
    try:
        # Hold the request at its first write (reads, such as authentication, pass), delete
        # the user meanwhile, and let it go on.
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        request = asyncio.ensure_future(
            asyncio.to_thread(
                api_request, server.url, method, path, token=user.token, json=body(peer)
            )
        )
        await _until_a_request_waits_on(database_dsn, table, request)
        await conn.execute("DELETE FROM users WHERE id = $1", user.id)
        await transaction.commit()
        response = await asyncio.wait_for(request, 10)
    finally:
        await conn.close()
    assert response.status == 401, response.text
    assert response.json == USER_GONE
    assert "Traceback" not in server.log_text()[log_before:]


async def _until_a_request_waits_on(dsn: str, table: str, request: asyncio.Future) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(200):  # 10 s
            assert not request.done(), f"the request was not held: {request.result().text}"
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
                table,
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no request waited on {table}")
    finally:
        await conn.close()
