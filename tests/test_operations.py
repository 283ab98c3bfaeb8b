"""Operating the server: GET /metrics (its series, and who may read it), request ids on every
answer and in every log line of a request, text and JSON logs, liveness and readiness, and the
paper cuts a client developer hits on day one (a missing trailing slash, a wrong auth scheme,
a CORS preflight)."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import time
import uuid

from helpers import Db, api_request, recv
from prometheus_client.parser import text_string_to_metric_families

from expertconnect.errors import BEARER_EXPECTED, NO_CREDENTIALS

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
WS_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
}


def fetch(url: str, method: str, path: str, headers: dict | None = None, token: str | None = None):
    """One request, whatever the answer's type: (status, headers, text)."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Scrape:
    """One GET /metrics, parsed with prometheus_client's own parser."""

    def __init__(self, url: str):
        status, headers, self.text = fetch(url, "GET", "/metrics")
        assert status == 200, self.text
        assert headers["Content-Type"].startswith("text/plain; version=")
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(condition, within: float = 5.0, step: float = 0.05):
    """Poll `condition` until it returns something true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(step)


def log_lines_with(server, text: str) -> list[str]:
    return wait_for(lambda: [line for line in server.log_text().splitlines() if text in line])


# ---------------------------------------------------------------------- metrics
def test_requests_are_counted_by_route_pattern_method_and_status(server, api, make_user):
    user = make_user()
    before = Scrape(server.url)
    for _ in range(3):
        assert api("GET", "/api/users/me/", token=user.token).status == 200
    assert api("GET", f"/api/users/{user.id}/", token=user.token).status == 200
    assert api("GET", "/api/users/me/").status == 401
    assert api("GET", "/api/no/such/thing/", token=user.token).status == 404
    after = Scrape(server.url)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    requests = "expertconnect_http_requests_total"
    assert delta(requests, route="/api/users/me/", method="GET", status="200") == 3
    assert delta(requests, route="/api/users/me/", method="GET", status="401") == 1
    assert delta(requests, route="/api/users/{id}/", method="GET", status="200") == 1
    assert delta(requests, route="unmatched", method="GET", status="404") == 1
    # Never the raw path: ids and unknown URLs would make a series per value.
    assert f"/api/users/{user.id}/" not in after.text and "/no/such/" not in after.text
    latency = "expertconnect_http_request_duration_seconds"
    assert delta(f"{latency}_count", route="/api/users/me/") == 4
    assert delta(f"{latency}_bucket", route="/api/users/me/", le="+Inf") == 4
    assert 0 < delta(f"{latency}_sum", route="/api/users/me/") < 4 * 5.0
    # The pool, read when scraped.
    assert after.value("expertconnect_db_pool_max") == 10
    assert 1 <= after.value("expertconnect_db_pool_size") <= 10
    assert (
        0
        <= after.value("expertconnect_db_pool_in_use")
        <= after.value("expertconnect_db_pool_size")
    )
    assert ("expertconnect_db_unavailable_total", frozenset()) in after.samples


async def test_sockets_and_their_events_are_counted(server, api, ws, make_user):
    alice, bob = make_user(), make_user()
    start = Scrape(server.url)
    sockets_before = start.value("expertconnect_ws_open")
    conn = await ws("/ws/", token=alice.token)
    opened = await asyncio.to_thread(Scrape, server.url)
    assert opened.value("expertconnect_ws_open") == sockets_before + 1

    message = {"receiver_id": alice.id, "content": "hi"}
    assert api("POST", "/api/messages/", token=bob.token, json=message).status == 201
    live = [await recv(conn), await recv(conn)]  # the message and its notification
    # A reconnect from event 0 replays what the user has so far; one from the future must resync.
    replay = await ws("/ws/?last_event_id=0", token=alice.token)
    replayed = [await recv(replay), await recv(replay)]
    assert [frame["event_id"] for frame in replayed] == [frame["event_id"] for frame in live]
    ahead = await ws("/ws/?last_event_id=999999", token=alice.token)
    assert (await recv(ahead))["type"] == "resync_required"
    after = await asyncio.to_thread(Scrape, server.url)

    def delta(name):
        return after.value(name) - start.value(name)

    # No other test runs meanwhile, so the counts are exact.
    assert delta("expertconnect_ws_events_pushed_total") == len(live)
    assert delta("expertconnect_ws_events_replayed_total") == len(replayed)
    assert delta("expertconnect_ws_resync_required_total") == 1
    assert after.value("expertconnect_ws_open") == sockets_before + 3

    for socket in (conn, replay, ahead):
        socket.close()
    await asyncio.to_thread(
        wait_for, lambda: Scrape(server.url).value("expertconnect_ws_open") == sockets_before
    )


def test_rate_limit_refusals_and_sweeps_are_counted(start_server):
    own = start_server(RATE_LIMITS_DEFAULT_PER_MINUTE="2", MEETINGS_EXPIRY_INTERVAL_SECONDS="1")
    tag = uuid.uuid4().hex[:8]
    user = api_request(
        own.url,
        "POST",
        "/api/users/register/",
        json={"username": f"m_{tag}", "email": f"m_{tag}@example.com", "password": "x" * 12},
    ).json
    statuses = [
        api_request(own.url, "GET", "/api/users/me/", token=user["token"]).status for _ in range(4)
    ]
    assert statuses == [200, 200, 429, 429]
    scrape = Scrape(own.url)
    assert scrape.value("expertconnect_rate_limited_total", scope="default") == 2
    assert scrape.value("expertconnect_rate_limited_total", scope="auth") == 0
    assert (
        scrape.value(
            "expertconnect_http_requests_total", route="/api/users/me/", method="GET", status="429"
        )
        == 2
    )
    # meetings.expiry_interval_seconds = 1: the expiry sweep runs every second.
    wait_for(
        lambda: (
            Scrape(own.url).value("expertconnect_sweep_runs_total", sweep="expire_pending_requests")
            >= 2
        )
    )


def test_metrics_are_a_404_outside_metrics_allow(start_server):
    # A proxy on this host is trusted: the client behind it is who counts, not the proxy.
    own = start_server(SERVER_METRICS_ALLOW="10.0.0.0/8", SERVER_TRUSTED_PROXIES="127.0.0.1")
    unknown = fetch(own.url, "GET", "/no/such/page")
    assert unknown[0] == 404
    for method in ("GET", "POST", "OPTIONS"):
        for forwarded in (None, "203.0.113.9", "127.0.0.1"):
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            status, _, text = fetch(own.url, method, "/metrics", headers=headers)
            assert (status, text) == (404, unknown[2]), (method, forwarded)
    status, _, text = fetch(own.url, "GET", "/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert status == 200 and "expertconnect_http_requests_total" in text


def test_an_empty_metrics_allow_turns_metrics_off(start_server):
    own = start_server(SERVER_METRICS_ALLOW="")
    assert fetch(own.url, "GET", "/api/health/live/")[0] == 200
    status, _, text = fetch(own.url, "GET", "/metrics")
    assert (status, text) == (404, fetch(own.url, "GET", "/no/such/page")[2])


def test_the_session_server_serves_metrics_to_loopback_by_default(server):
    # server.metrics_allow defaults to loopback; the tests reach the server over 127.0.0.1.
    assert "expertconnect_db_pool_size" in Scrape(server.url).text


# ---------------------------------------------------------------------- request ids
def test_every_answer_carries_a_request_id(server, make_user):
    user = make_user()
    answers = [
        fetch(server.url, "GET", "/api/health/"),
        fetch(server.url, "GET", "/api/users/me/", token=user.token),
        fetch(server.url, "GET", "/api/users/me/"),  # 401
        fetch(server.url, "GET", "/api/nowhere/"),  # 404
        fetch(server.url, "DELETE", "/api/health/"),  # 405
        fetch(server.url, "GET", "/ws/", headers=WS_UPGRADE),  # a refused handshake: 401
        fetch(server.url, "GET", f"/ws/?token={user.token}", headers=WS_UPGRADE),  # 101
        fetch(server.url, "GET", "/metrics"),
        fetch(server.url, "GET", "/"),  # the web client
        fetch(server.url, "GET", "/api/docs/"),
        fetch(server.url, "GET", "/static/nothing.js"),  # 404 of the static files
    ]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 401, 404, 405, 401, 101, 200, 200, 200, 404]
    ids = [headers["X-Request-ID"] for _, headers, _ in answers]
    assert all(GENERATED_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_sane_incoming_request_id_is_kept_and_any_other_replaced(server):
    for sane in ("abc", "req-1.2_3", "A" * 128, str(uuid.uuid4())):
        for path, headers in (("/api/users/me/", {}), ("/ws/", WS_UPGRADE)):
            _, answer, _ = fetch(server.url, "GET", path, headers={**headers, "X-Request-ID": sane})
            assert answer["X-Request-ID"] == sane
    for insane in ("A" * 129, "has space", "semi;colon", "<script>", "ünïcode", "a,b"):
        _, answer, _ = fetch(server.url, "GET", "/api/health/", headers={"X-Request-ID": insane})
        assert GENERATED_ID.fullmatch(answer["X-Request-ID"]), insane


def test_a_request_id_is_on_its_log_lines_and_4xx_are_logged_at_info(server):
    rid = f"trace-{uuid.uuid4().hex}"
    assert fetch(server.url, "GET", "/api/nowhere/", headers={"X-Request-ID": rid})[0] == 404
    [line] = log_lines_with(server, rid)
    assert f" INFO tornado.access [{rid}]: 404 GET /api/nowhere/ " in line
    rid = f"trace-{uuid.uuid4().hex}"
    assert fetch(server.url, "GET", "/ws/", headers={**WS_UPGRADE, "X-Request-ID": rid})[0] == 401
    [line] = log_lines_with(server, rid)
    assert f" INFO tornado.access [{rid}]: 401 GET /ws/ " in line
    # The web client's pages are requests like the others (their log line once raised).
    rid = f"trace-{uuid.uuid4().hex}"
    assert fetch(server.url, "GET", "/", headers={"X-Request-ID": rid})[0] == 200
    [line] = log_lines_with(server, rid)
    assert f" INFO tornado.access [{rid}]: 200 GET / " in line


def test_json_logs_are_one_object_a_line_with_the_request_fields(start_server):
    own = start_server(LOGGING_FORMAT="json")
    tag = uuid.uuid4().hex[:8]
    token = api_request(
        own.url,
        "POST",
        "/api/users/register/",
        json={"username": f"j_{tag}", "email": f"j_{tag}@example.com", "password": "x" * 12},
    ).json["token"]
    rid = f"json-{tag}"
    api_request(own.url, "GET", "/api/users/me/", token=token, headers={"X-Request-ID": rid})
    api_request(own.url, "GET", "/api/missing/", headers={"X-Request-ID": rid + "-404"})
    wait_for(lambda: rid + "-404" in own.log_text())

    lines = [json.loads(line) for line in own.log_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("listening" in line["message"] for line in lines)
    [me] = [line for line in lines if line.get("request_id") == rid]
    assert me["level"] == "INFO" and me["logger"] == "tornado.access"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", me["time"])
    assert (me["method"], me["route"], me["status"]) == ("GET", "/api/users/me/", 200)
    assert isinstance(me["duration_ms"], float) and me["user_id"] > 0
    [missing] = [line for line in lines if line.get("request_id") == rid + "-404"]
    assert (missing["level"], missing["route"], missing["status"]) == ("INFO", "unmatched", 404)
    assert "user_id" not in missing


# ---------------------------------------------------------------------- health
def test_liveness_and_readiness(server, api):
    assert api("GET", "/api/health/live/").json == {"status": "ok"}
    assert api("GET", "/api/health/").json == {"status": "ok"}


def test_readiness_follows_migrations_and_the_database_and_outages_are_counted(
    private_postgres, start_server
):
    own = start_server(DATABASE_DSN=private_postgres.dsn)
    db = Db(private_postgres.dsn)
    user = api_request(
        own.url,
        "POST",
        "/api/users/register/",
        json={"username": "outage", "email": "outage@example.com", "password": "x" * 12},
    ).json
    last = db.fetchval("SELECT max(name) FROM schema_migrations")
    checksum = db.fetchval("SELECT checksum FROM schema_migrations WHERE name = $1", last)
    db.execute("DELETE FROM schema_migrations WHERE name = $1", last)
    assert api_request(own.url, "GET", "/api/health/").json == {"status": "migrations_pending"}
    assert api_request(own.url, "GET", "/api/health/").status == 503
    db.execute("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", last, checksum)
    assert api_request(own.url, "GET", "/api/health/").status == 200

    private_postgres.stop("fast")
    down = api_request(own.url, "GET", "/api/health/")
    assert (down.status, down.json) == (503, {"status": "unavailable"})
    assert api_request(own.url, "GET", "/api/health/live/").status == 200
    rid = f"outage-{uuid.uuid4().hex}"
    r = api_request(
        own.url, "GET", "/api/credits/balance/", token=user["token"], headers={"X-Request-ID": rid}
    )
    assert r.status == 503 and r.headers["X-Request-ID"] == rid
    # A 5xx is logged at ERROR with the request's id, and so is the cause found while serving it.
    wait_for(lambda: "503 GET /api/credits/balance/" in own.log_text())
    lines = log_lines_with(own, rid)
    assert any(f" ERROR tornado.access [{rid}]: 503 GET /api/credits/balance/" in x for x in lines)
    assert any("database unavailable" in x for x in lines)
    scrape = Scrape(own.url)
    assert scrape.value("expertconnect_db_unavailable_total") >= 2  # health and the balance
    assert (
        scrape.value(
            "expertconnect_http_requests_total",
            route="/api/credits/balance/",
            method="GET",
            status="503",
        )
        == 1
    )


# ---------------------------------------------------------------------- paper cuts
def test_a_missing_trailing_slash_is_a_404_that_names_the_route(server, api):
    for path, hint in (
        ("/api/users/me", "/api/users/me/"),
        ("/api/users/me?x=1", "/api/users/me/"),
        ("/api/meetings/12", "/api/meetings/12/"),
        ("/api/health/live", "/api/health/live/"),
        ("/ws", "/ws/"),
        ("/ws/chat/5", "/ws/chat/5/"),
        # Only plain paths are echoed; anything else is named by its pattern.
        ("/api/meetings/%3Cscript%3E", "/api/meetings/{id}/"),
        ('/api/meetings/a"b', "/api/meetings/{id}/"),
    ):
        r = api("GET", path)
        assert (r.status, r.json) == (404, {"error": f"Not found. Did you mean {hint}?"}), path
    assert api("POST", "/api/users/login").json == {
        "error": "Not found. Did you mean /api/users/login/?"
    }
    # ("/" is the web client's page.)
    for path in ("/api/nothing", "/api/users/me/x", "/api/openapi.json/", "/api/"):
        assert api("GET", path).json == {"error": "Not found"}, path


async def test_a_wrong_auth_scheme_says_bearer_and_a_socket_without_token_says_what_rest_does(
    server, api, ws, make_user
):
    user = make_user()
    for header in (f"Token {user.token}", user.token, f"Basic {user.token}", f"JWT {user.token}"):
        r = api("GET", "/api/users/me/", headers={"Authorization": header})
        assert (r.status, r.json) == (401, {"error": BEARER_EXPECTED}), header
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "  "}):
        assert api("GET", "/api/users/me/", headers=headers).json == {"error": NO_CREDENTIALS}
    for path in ("/ws/", "/ws/?token=", "/ws/notifications/?token=%20"):
        status, _, text = fetch(server.url, "GET", path, headers=WS_UPGRADE)
        assert (status, json.loads(text)) == (401, {"error": NO_CREDENTIALS}), path
    conn = await ws("/ws/", token=user.token)  # the right way still works
    conn.close()


def test_a_preflight_with_cors_off_is_a_clear_403(api):
    for path in ("/api/users/me/", "/api/openapi.json"):
        r = api(
            "OPTIONS",
            path,
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert (r.status, r.json) == (403, {"error": "CORS is not enabled on this server"})
        assert "Access-Control-Allow-Origin" not in r.headers
