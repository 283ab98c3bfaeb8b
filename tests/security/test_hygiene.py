"""Hygiene: no traceback, SQL or path in any answer; JSON with nosniff and no-store on every
answer, errors and refused WebSocket handshakes included; tokens and the JWT secret never in
the server's log."""

import json

import jwt
import pytest
from helpers import JWT_SECRET, recv

from .probes import (
    assert_json_error,
    assert_no_leak,
    at,
    book,
    handshake,
    meeting_in,
    raw,
    valid_claims,
)


def assert_headers(r) -> None:
    assert r.headers.get("X-Content-Type-Options") == "nosniff", (r.status, dict(r.headers))
    assert r.headers.get("Cache-Control") == "no-store", (r.status, dict(r.headers))


@pytest.fixture
def pair(api, make_user):
    return make_user(), make_user()


def _error_requests(api, pair, server):
    """Requests that reach every kind of refusal: validation, each constraint the database
    enforces, state rules, routing, authentication, size, and the WebSocket handshake."""
    a, b = pair
    pending = book(api, a, b)
    completed = meeting_in(api, a, b, "completed")
    cancelled = meeting_in(api, a, b, "cancelled")
    assert (
        api(
            "POST",
            "/api/user-skills/",
            token=a.token,
            json={"category": 1, "skill_name": "Dup", "proficiency_level": "expert"},
        ).status
        == 201
    )
    assert (
        api(
            "POST",
            "/api/user-availability/",
            token=a.token,
            json={"day_of_week": 4, "start_time": "09:00:00", "end_time": "10:00:00"},
        ).status
        == 201
    )
    assert (
        api(
            "POST",
            "/api/reviews/",
            token=a.token,
            json={"meeting_id": completed["id"], "reviewee_id": b.id, "rating": 5},
        ).status
        == 201
    )
    url = server.url
    j = json.dumps
    return [
        (
            "POST",
            "/api/users/register/",
            j({"username": a.username.upper(), "email": "x@y.zz", "password": "long-enough"}),
            None,
        ),
        (
            "POST",
            "/api/users/register/",
            j({"username": "fresh_u", "email": a.email.upper(), "password": "long-enough"}),
            None,
        ),
        ("POST", "/api/users/login/", j({"username": a.username, "password": "wrong-one"}), None),
        (
            "POST",
            "/api/user-skills/",
            j({"category": 2**62, "skill_name": "x", "proficiency_level": "expert"}),
            a,
        ),
        (
            "POST",
            "/api/user-skills/",
            j({"category": 1, "skill_name": "Dup", "proficiency_level": "expert"}),
            a,
        ),
        (
            "POST",
            "/api/user-availability/",
            j({"day_of_week": 4, "start_time": "09:30:00", "end_time": "10:30:00"}),
            a,
        ),
        (
            "POST",
            "/api/meetings/",
            j(
                {
                    "title": "t",
                    "expert_id": 2**62,
                    "category_id": 1,
                    "scheduled_start": at(5),
                    "scheduled_end": at(6),
                }
            ),
            a,
        ),
        (
            "POST",
            "/api/meetings/",
            j(
                {
                    "title": "t",
                    "expert_id": b.id,
                    "category_id": 2**62,
                    "scheduled_start": at(5),
                    "scheduled_end": at(6),
                }
            ),
            a,
        ),
        (
            "POST",
            "/api/meetings/",
            j(
                {
                    "title": "t",
                    "expert_id": a.id,
                    "category_id": 1,
                    "scheduled_start": at(5),
                    "scheduled_end": at(6),
                }
            ),
            a,
        ),
        ("PATCH", f"/api/meetings/{completed['id']}/update_status/", j({"status": "pending"}), a),
        ("PATCH", f"/api/meetings/{pending['id']}/update_status/", j({"status": "confirmed"}), a),
        (
            "POST",
            "/api/reviews/",
            j({"meeting_id": completed["id"], "reviewee_id": b.id, "rating": 5}),
            a,
        ),
        (
            "POST",
            "/api/reviews/",
            j({"meeting_id": pending["id"], "reviewee_id": b.id, "rating": 5}),
            a,
        ),
        (
            "POST",
            "/api/reviews/",
            j({"meeting_id": completed["id"], "reviewee_id": a.id, "rating": 5}),
            a,
        ),
        ("POST", "/api/credits/transfer/", j({"meeting_id": pending["id"], "amount": 999_999}), a),
        ("POST", "/api/credits/transfer/", j({"meeting_id": cancelled["id"], "amount": 1}), a),
        (
            "POST",
            "/api/payments/purchase_credits/",
            j({"payment_method": "paypal", "amount": "1.00", "credits_to_purchase": 2}),
            a,
        ),
        ("POST", "/api/messages/", j({"receiver_id": a.id, "content": "me"}), a),
        ("POST", "/api/messages/", j({"receiver_id": 2**62, "content": "nobody"}), a),
        ("POST", "/api/messages/mark_read/", j({"with_user": "1"}), a),
        ("GET", f"/api/meetings/{2**62}/", None, a),
        ("GET", "/api/notifications/99/", None, b),
        ("DELETE", "/api/user-skills/1/", None, b),
        ("GET", "/api/nothing/here/", None, a),
        ("POST", "/api/nothing/here/", "{}", None),
        ("DELETE", "/api/users/me/", None, a),
        ("GET", "/api/credits/transfer/", None, a),
        ("PUT", "/api/health/", None, None),
        ("OPTIONS", "/api/users/me/", None, None),
        ("GET", "/api/users/me/", None, None),
        ("GET", "/api/users/me/", None, "garbage-token"),
        ("PUT", "/api/users/me/", j({"bio": "x" * 70_000}), a),
        ("PUT", "/api/users/me/", b'{"bio": "\xff"}', a),
        ("PUT", "/api/users/me/", b"[" * 30_000, a),
        ("PUT", "/api/users/me/", b'{"bio": ' + b"9" * 5000 + b"}", a),
        ("GET", "/api/meetings/?status=%ff", None, a),
        ("GET", "/api/meetings/?limit=0", None, a),
        ("GET", "/api/meetings/%ff/", None, a),
    ], url


def test_no_error_response_shows_internals_and_all_are_json(api, server, pair):
    requests, url = _error_requests(api, pair, server)
    for method, path, body, who in requests:
        token = who if isinstance(who, str) else who.token if who else None
        r = raw(url, method, path, body=body, token=token)
        assert 400 <= r.status < 500, (method, path, r.status, r.text)
        assert_json_error(r, r.status)
        assert_headers(r)


def test_refused_websocket_handshakes_are_json_too(server, pair):
    a, b = pair
    refusals = [
        (handshake(server.url, "/ws/", None), 401),
        (handshake(server.url, "/ws/", "junk"), 401),
        (handshake(server.url, "/ws/", a.token + "x"), 401),
        (handshake(server.url, "/ws/?token=%ff", None), 401),
        (handshake(server.url, "/ws/?last_event_id=abc", a.token), 400),
        (handshake(server.url, "/ws/?last_event_id=%C2%B2", a.token), 400),
        (handshake(server.url, "/ws/?last_event_id=-1", a.token), 400),
        (handshake(server.url, "/ws/?last_event_id=" + "9" * 5000, a.token), 400),
        (handshake(server.url, f"/ws/?last_event_id={2**63}", a.token), 400),
        (handshake(server.url, "/ws/?last_event_id=%ff", a.token), 400),
        (handshake(server.url, "/ws/", a.token, headers={"Origin": "https://evil.example"}), 403),
        (handshake(server.url, "/ws/", a.token, headers={"Sec-WebSocket-Version": "8"}), 426),
        (handshake(server.url, "/ws/", a.token, headers={"Upgrade": "h2c"}), 400),
        (handshake(server.url, "/ws/", a.token, headers={"Connection": "keep-alive"}), 400),
        (raw(server.url, "GET", f"/ws/?token={a.token}"), 400),
        (raw(server.url, "POST", f"/ws/?token={a.token}", body="{}"), 405),
        (handshake(server.url, "/ws/chat/abc/", a.token), 404),
        (handshake(server.url, f"/ws/chat/{'9' * 30}/", a.token), 404),
    ]
    for r, status in refusals:
        assert_json_error(r, status)
        assert_headers(r)
    # And the real thing still works.
    assert handshake(server.url, f"/ws/chat/{b.id}/?last_event_id=0", a.token).status == 101


def test_successful_answers_are_private_json(api, server, pair):
    a, b = pair
    meeting = book(api, a, b)
    note = api("GET", "/api/notifications/", token=b.token).json[0]
    skill = api(
        "POST",
        "/api/user-skills/",
        token=a.token,
        json={"category": 1, "skill_name": "Private", "proficiency_level": "expert"},
    ).json
    paths = [
        "/api/users/me/",
        "/api/credits/balance/",
        "/api/credit-transactions/",
        "/api/meetings/",
        f"/api/meetings/{meeting['id']}/",
        "/api/messages/",
        f"/api/messages/?with_user={b.id}",
        "/api/notifications/",
        "/api/notifications/unread_count/",
        "/api/categories/",
        "/api/user-skills/",
        f"/api/user-skills/?user_id={b.id}",
        "/api/user-availability/",
        "/api/health/",
    ]
    for path in paths:
        r = raw(server.url, "GET", path, token=a.token)
        assert r.status == 200, (path, r.text)
        assert r.content_type.startswith("application/json"), path
        assert_headers(r)
        assert_no_leak(r.text)
    r = raw(server.url, "GET", f"/api/notifications/{note['id']}/", token=b.token)
    assert r.status == 200 and r.content_type.startswith("application/json")
    assert_headers(r)
    r = raw(
        server.url,
        "POST",
        "/api/messages/",
        token=a.token,
        body=json.dumps({"receiver_id": b.id, "content": "hi"}),
    )
    assert r.status == 201 and r.content_type.startswith("application/json")
    assert_headers(r)
    r = raw(server.url, "DELETE", f"/api/user-skills/{skill['id']}/", token=a.token)
    assert r.status == 204 and r.text == ""
    assert_headers(r)


async def test_tokens_and_the_secret_never_reach_the_log(server, ws, api, make_user):
    user, peer = make_user(), make_user()
    forged = jwt.encode(valid_claims(user.id), "wrong-secret-" + "y" * 32)
    revoked = api(
        "POST", "/api/users/login/", json={"username": user.username, "password": user.password}
    ).json["token"]
    assert api("POST", "/api/users/logout/", token=revoked).status == 200

    live = await ws(f"/ws/chat/{peer.id}/?last_event_id=0", user.token)
    live.write_message(json.dumps({"type": "message.send", "content": "logged?"}))
    assert (await recv(live))["type"] == "message.receive"
    for path, token in [
        ("/ws/", forged),
        ("/ws/", revoked),
        ("/ws/notifications/", forged),
        ("/ws/?last_event_id=abc", user.token),
        ("/ws/?last_event_id=%ff", user.token),
        (f"/ws/chat/{2**62}/", user.token),
        ("/ws/?token=%ff%fe&x=1", None),
    ]:
        assert handshake(server.url, path, token).status in (101, 400, 401)
    assert (
        handshake(server.url, "/ws/", user.token, headers={"Origin": "https://evil.example"}).status
        == 403
    )
    raw(server.url, "GET", f"/ws/?token={user.token}")  # no Upgrade
    raw(server.url, "GET", f"/api/meetings/?status=%ff&token={user.token}", token=forged)
    raw(server.url, "GET", f"/api/users/me/?token={user.token}")
    raw(
        server.url,
        "PUT",
        f"/api/users/me/?token={user.token}",
        token=user.token,
        body=b'{"bio": ' + b"9" * 5000 + b"}",
    )
    live.close()

    log = server.log_text()
    assert "GET /ws/chat/" in log and "GET /api/meetings/" in log  # the requests were logged
    for secret in (
        user.token,
        forged,
        revoked,
        JWT_SECRET,
        "token=",
        user.token.split(".")[2],
        forged.split(".")[2],
    ):
        assert secret not in log, secret
