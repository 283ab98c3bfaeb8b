"""Slow clients: a connection that sends its headers or its body a byte at a time, or sits idle
after a response, is closed by the server within server.idle_timeout / server.body_timeout,
while other clients are served meanwhile. Loopback only; every loop is bounded in count and
time."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from expertconnect.config import ConfigError, load_config

from .probes import register

TIMEOUT = 2.0  # the server's idle and body timeouts in these tests
SLACK = 1.5  # timers, scheduling on a loaded machine
SLOW_HEADERS = 20
# One byte a second, for longer than the timeout: the headers never complete in time.
HEADERS = b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: " + b"x" * 40 + b"\r\n\r\n"


async def trickle(port: int, head: bytes, trickled: bytes, give_up: float) -> float | None:
    """Send `head` at once, then `trickled` one byte a second; the seconds from the start of the
    trickle until the server closed the connection without an answer, or None if it was still
    open after `give_up` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        writer.write(head)
        await writer.drain()
        started = loop.time()
        for byte in trickled[: int(give_up)]:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                data = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                continue
            except ConnectionError:
                return loop.time() - started
            assert data == b"", f"the server answered a request it never got: {data[:200]!r}"
            return loop.time() - started
        return None
    finally:
        writer.close()


async def idle_after_a_response(port: int, give_up: float) -> float | None:
    """One keep-alive request, then silence: the seconds until the server closes, or None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        writer.write(b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await asyncio.wait_for(reader.readexactly(length), 5)
        started = loop.time()
        try:
            if await asyncio.wait_for(reader.read(4096), give_up) == b"":
                return loop.time() - started
        except TimeoutError:
            return None
        except ConnectionError:
            return loop.time() - started
        raise AssertionError("unexpected bytes on an idle connection")
    finally:
        writer.close()


async def served_meanwhile(port: int, until: float) -> list[float]:
    """Whole requests on fresh connections every 0.2 s until `until`: their latencies."""
    loop = asyncio.get_running_loop()
    latencies = []
    for _ in range(100):  # a bound on the count besides the one on time
        if loop.time() >= until:
            break
        started = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        latencies.append(loop.time() - started)
        await asyncio.sleep(0.2)
    return latencies


async def test_slow_and_idle_connections_are_closed_while_others_are_served(start_server, db):
    own = start_server(SERVER_IDLE_TIMEOUT=str(TIMEOUT), SERVER_BODY_TIMEOUT=str(TIMEOUT))
    user = register(own.url)
    body = json.dumps({"receiver_id": user["id"], "content": "x" * 40}).encode()
    body_head = (
        f"POST /api/messages/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user['token']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    give_up = TIMEOUT + SLACK + 3  # after this a connection counts as never closed
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    slow_headers = [trickle(own.port, b"", HEADERS, give_up) for _ in range(SLOW_HEADERS)]
    results = await asyncio.gather(
        *slow_headers,
        trickle(own.port, body_head, body, give_up),
        idle_after_a_response(own.port, give_up),
        served_meanwhile(own.port, loop.time() + TIMEOUT + SLACK),
    )
    assert time.monotonic() - started < give_up + 10
    *closed_after, latencies = results
    assert None not in closed_after, f"still open after {give_up} s: {closed_after}"
    # Closed by the timeout (not at once, not much later): headers and idle time share
    # server.idle_timeout, a body has server.body_timeout from the end of its headers.
    assert all(TIMEOUT - 0.5 <= s <= TIMEOUT + SLACK for s in closed_after), closed_after
    assert len(latencies) >= 5 and max(latencies) < 2.0, latencies
    # The message whose body came too slowly was never stored.
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", user["id"]) == 0


def test_timeout_config_defaults_and_rules():
    server = load_config(None, environ={}).server
    assert (server.idle_timeout, server.body_timeout) == (30.0, 30.0)
    for key in ("IDLE_TIMEOUT", "BODY_TIMEOUT"):
        for bad in ("0", "-1", "3601", "soon", "nan"):
            with pytest.raises(ConfigError, match=f"server\\.{key.lower()}"):
                load_config(None, environ={f"EXPERTCONNECT_SERVER_{key}": bad})
