"""A socket never outlives the logout of its token: handshakes fired with one token while that
token is logged out either are refused (401) or open and are then closed with 4401, on every
socket path, with the user cached by the auth cache or not, and with the logout made in another
server process (realtime.backend: postgres). A socket the logout closed cannot send a message.
Bounded: a few rounds of HANDSHAKES handshakes each, every wait with a timeout."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient
import tornado.websocket
from helpers import ServerProcess, api_request, closed, register_user, server_env

HANDSHAKES = 30
ROUNDS = 8
PATHS = ["/ws/", "/ws/notifications/", "/ws/chat/{peer}/"]
# Room for every handshake of a round: the per-user cap (4429) is beside the point here. Small
# pools: five servers share the test database server with the rest of the suite.
ROOMY = {
    "REALTIME_MAX_SOCKETS_PER_USER": "200",
    "DATABASE_POOL_MIN": "1",
    "DATABASE_POOL_MAX": "4",
}


@pytest.fixture(scope="module")
def servers(database_dsn, tmp_path_factory):
    """name -> (the server handshakes go to, the server the logout goes to)."""
    logs = tmp_path_factory.mktemp("logout-race")

    def start(name: str, **overrides: str) -> ServerProcess:
        return ServerProcess(server_env(database_dsn, overrides), logs / f"{name}.log").start()

    relayed = {**ROOMY, "REALTIME_BACKEND": "postgres"}
    procs = {
        "cached": start("cached", **ROOMY),
        # user_cache_size 0: every handshake reads the user and revocations from the database.
        "uncached": start("uncached", **ROOMY, AUTH_USER_CACHE_SIZE="0"),
        "relayed": start("relayed", **relayed),
        "relayed-uncached": start("relayed-uncached", **relayed, AUTH_USER_CACHE_SIZE="0"),
        "logout-process": start("logout-process", **relayed),
    }
    yield {
        "cached": (procs["cached"], procs["cached"]),
        "uncached": (procs["uncached"], procs["uncached"]),
        "other process": (procs["relayed"], procs["logout-process"]),
        "other process, uncached": (procs["relayed-uncached"], procs["logout-process"]),
    }
    for proc in procs.values():
        proc.stop()


async def _handshake(url: str) -> tornado.websocket.WebSocketClientConnection | None:
    """An open socket, or None if the handshake was refused as unauthenticated."""
    try:
        return await asyncio.wait_for(tornado.websocket.websocket_connect(url), 10)
    except tornado.httpclient.HTTPClientError as exc:
        assert exc.code == 401, exc
        return None


async def _logout(base: str, token: str) -> None:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base + "/api/users/logout/",
        method="POST",
        body=b"",
        headers={"Authorization": f"Bearer {token}"},
        request_timeout=10,
    )
    assert response.code == 200


async def _round(ws_server: ServerProcess, logout_server: ServerProcess, user, path: str) -> int:
    """One token, HANDSHAKES handshakes fired around its logout; returns how many opened."""
    login = await asyncio.to_thread(
        api_request,
        ws_server.url,
        "POST",
        "/api/users/login/",
        json={"username": user.username, "password": user.password},
    )
    token = login.json["token"]
    # The user as the auth cache holds it (where it holds users).
    assert api_request(ws_server.url, "GET", "/api/users/me/", token=token).status == 200
    url = ws_server.url.replace("http://", "ws://") + path + f"?token={token}"
    half = HANDSHAKES // 2
    before = [asyncio.ensure_future(_handshake(url)) for _ in range(half)]
    logout = asyncio.ensure_future(_logout(logout_server.url, token))
    after = [asyncio.ensure_future(_handshake(url)) for _ in range(HANDSHAKES - half)]
    await logout
    # Whatever opened (before, during or after the logout) is closed with 4401, and a frame
    # sent on it after the logout returned is never acted on.
    opened = [s for s in await asyncio.gather(*before, *after) if s is not None]
    for socket in opened:
        try:
            socket.write_message(json.dumps({"type": "message.send", "content": "after logout"}))
        except tornado.websocket.WebSocketClosedError:
            pass
    codes = await asyncio.gather(*(_close_code(s) for s in opened))
    assert set(codes) <= {4401}, f"{path}: close codes after the logout (None: open): {codes}"
    return len(opened)


async def _close_code(socket) -> int | None:
    """The code the server closed the socket with, or None if it is still open after 5 s."""
    try:
        return await closed(socket, within=5)
    except TimeoutError:
        socket.close()
        return None


@pytest.mark.parametrize("path", PATHS)
async def test_no_socket_opened_around_a_logout_stays_open(servers, database_dsn, db, path):
    for name, (ws_server, logout_server) in servers.items():
        user, peer = register_user(ws_server.url), register_user(ws_server.url)
        opened = 0
        for _ in range(ROUNDS):
            try:
                opened += await _round(ws_server, logout_server, user, path.format(peer=peer.id))
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
        # Handshakes did open (the race was run, not just refused), and nothing was sent.
        assert opened > 0, name
        sent = db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", user.id)
        assert sent == 0, f"{name}: {sent} message(s) sent after the logout"
