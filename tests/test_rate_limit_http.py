"""Rate limits and quotas over real HTTP: the spec's headers, 429s that do no work, client
addresses that cannot be forged, and the body size limit."""

import json
import uuid

import pytest
import tornado.httpclient
from helpers import PASSWORD, api_request

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _login(url, username, password=PASSWORD, **headers):
    return api_request(
        url,
        "POST",
        "/api/users/login/",
        headers=headers,
        json={"username": username, "password": password},
    )


def test_auth_endpoints_allow_a_burst_then_429_with_the_spec_headers(start_server, make_user):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="3")
    user = make_user()
    answers = [_login(own.url, user.username) for _ in range(4)]
    assert [r.status for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.json == {"error": "Rate limit exceeded"}
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert int(refused.headers["X-RateLimit-Reset"]) > 1_600_000_000
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # 60 s / 3 tokens


def test_default_limit_is_per_user_and_a_refused_request_does_no_work(start_server, make_user, db):
    own = start_server(RATE_LIMITS_DEFAULT_PER_MINUTE="3")
    alice, bob, carol = make_user(), make_user(), make_user()
    for _ in range(3):
        assert api_request(own.url, "GET", "/api/users/me/", token=alice.token).status == 200
    r = api_request(
        own.url,
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "over the limit"},
    )
    assert r.status == 429 and r.headers["Retry-After"]
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", alice.id) == 0
    assert api_request(own.url, "GET", "/api/users/me/", token=carol.token).status == 200


def test_rate_headers_survive_the_error_path(api, make_user):
    user = make_user()
    r = api("GET", "/api/notifications/999999999/", token=user.token)
    assert r.status == 404
    assert all(h in r.headers for h in RATE_HEADERS)


def test_health_is_never_limited(start_server):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="1", RATE_LIMITS_DEFAULT_PER_MINUTE="1")
    assert all(api_request(own.url, "GET", "/api/health/").status == 200 for _ in range(5))


def test_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(start_server, make_user):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="2")
    user = make_user()
    statuses = [
        _login(
            own.url,
            user.username,
            **{"X-Forwarded-For": f"198.51.100.{i}", "X-Real-Ip": f"198.51.100.{i}"},
        ).status
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(start_server, make_user):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="2", SERVER_TRUSTED_PROXIES="127.0.0.1")
    user = make_user()
    first = [
        _login(own.url, user.username, **{"X-Forwarded-For": "198.51.100.1"}).status
        for _ in range(3)
    ]
    other = _login(own.url, user.username, **{"X-Forwarded-For": "198.51.100.2"}).status
    assert first == [200, 200, 429] and other == 200


def test_failed_logins_count_per_username_across_addresses(start_server, make_user):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="3", SERVER_TRUSTED_PROXIES="127.0.0.1")
    victim = make_user()
    for i in range(3):
        r = _login(
            own.url, victim.username, "wrong-password", **{"X-Forwarded-For": f"203.0.113.{i}"}
        )
        assert r.status == 401
    # A fresh address, even with the right password: the account is cooling down.
    r = _login(own.url, victim.username.upper(), **{"X-Forwarded-For": "203.0.113.99"})
    assert r.status == 429 and r.headers["Retry-After"]


def test_registrations_per_address_are_capped_and_failures_do_not_count(start_server):
    own = start_server(RATE_LIMITS_REGISTRATIONS_PER_HOUR="2")

    def register(**overrides):
        tag = uuid.uuid4().hex[:8]
        body = {
            "username": f"farm_{tag}",
            "email": f"farm_{tag}@example.com",
            "password": PASSWORD,
            **overrides,
        }
        return api_request(own.url, "POST", "/api/users/register/", json=body).status

    assert register(password="short") == 400
    assert [register(), register(), register()] == [201, 201, 429]


def test_purchases_per_user_per_day_are_capped(start_server, make_user):
    own = start_server(RATE_LIMITS_PURCHASES_PER_DAY="2")
    user = make_user()
    body = {"payment_method": "credit_card", "amount": "1.00", "credits_to_purchase": 1}
    statuses = [
        api_request(
            own.url, "POST", "/api/payments/purchase_credits/", token=user.token, json=body
        ).status
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    balance = api_request(own.url, "GET", "/api/credits/balance/", token=user.token).json
    assert balance["balance"] == 3


def test_a_body_over_the_limit_is_refused_with_413_before_anything_else(api, make_user):
    user = make_user()
    r = api("PUT", "/api/users/me/", token=user.token, body='{"bio": "' + "x" * 70_000 + '"}')
    assert r.status == 413 and r.json == {"error": "Request body too large"}
    r = api("POST", "/api/users/login/", body="x" * 70_000)
    assert r.status == 413


def test_cors_is_off_unless_the_origin_is_configured(api, start_server, make_user):
    user = make_user()
    r = api("GET", "/api/users/me/", token=user.token, headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    assert api("OPTIONS", "/api/users/me/", headers={"Origin": "https://app.example"}).status == 403
    own = start_server(SERVER_CORS_ORIGINS="https://app.example")
    pre = api_request(
        own.url,
        "OPTIONS",
        "/api/users/me/",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"},
    )
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert pre.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in pre.headers["Access-Control-Allow-Headers"]
    assert "Origin" in pre.headers["Vary"]
    # The document too, so that a browser-based viewer on that origin can load it.
    pre = api_request(
        own.url,
        "OPTIONS",
        "/api/openapi.json",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert (pre.status, pre.headers["Access-Control-Allow-Methods"]) == (204, "GET")
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
    doc = api_request(
        own.url, "GET", "/api/openapi.json", headers={"Origin": "https://app.example"}
    )
    assert doc.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-ID" in doc.headers["Access-Control-Expose-Headers"]
    assert "Idempotent-Replayed" in doc.headers["Access-Control-Expose-Headers"]
    pre = api_request(
        own.url,
        "OPTIONS",
        "/api/users/me/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
    )
    assert (pre.status, pre.json) == (403, {"error": "CORS is not enabled for this origin"})
    assert "Access-Control-Allow-Origin" not in pre.headers
    r = api_request(
        own.url,
        "GET",
        "/api/users/me/",
        token=user.token,
        headers={"Origin": "https://app.example"},
    )
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    r = api_request(
        own.url,
        "GET",
        "/api/users/me/",
        token=user.token,
        headers={"Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_websocket_handshakes_draw_from_the_users_bucket_and_429_before_the_upgrade(
    start_server, make_user, ws
):
    own = start_server(RATE_LIMITS_DEFAULT_PER_MINUTE="3")
    alice, bob = make_user(), make_user()
    paths = ["/ws/", "/ws/notifications/", f"/ws/chat/{bob.id}/"]
    for path in paths:
        await ws(path, alice.token, url=own.url)
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws("/ws/", alice.token, url=own.url)
    response = refused.value.response
    assert refused.value.code == 429
    assert json.loads(response.body) == {"error": "Rate limit exceeded"}
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(response.headers["Retry-After"]) <= 20  # 60 s / 3 tokens
    # The same bucket as REST: the sockets used it up for Alice, and only for her.
    assert api_request(own.url, "GET", "/api/users/me/", token=alice.token).status == 429
    assert api_request(own.url, "GET", "/api/users/me/", token=bob.token).status == 200
