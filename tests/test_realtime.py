"""WebSocket delivery against a running server: live chat, notifications, replay, bad clients."""

import asyncio
import datetime as dt
import json

import pytest
import tornado.httpclient
import tornado.websocket
from helpers import api_request, closed, no_frame, recv

MESSAGE_FIELDS = {
    "id",
    "sender_id",
    "sender_name",
    "receiver_id",
    "receiver_name",
    "content",
    "is_read",
    "created_at",
}
NOTIFICATION_FIELDS = {
    "id",
    "user_id",
    "title",
    "content",
    "notification_type",
    "related_id",
    "is_read",
    "created_at",
}


def _book(api, requester, expert, hours_ahead=24):
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours_ahead)
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "Python Debugging Session",
            "description": "help",
            "expert_id": expert.id,
            "category_id": 1,
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + dt.timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status == 201, r.text
    return r.json


async def test_two_users_chat_live_and_the_sender_learns_the_id(ws, api, make_user):
    alice, bob = make_user(), make_user()
    a_chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    b_chat = await ws(f"/ws/chat/{alice.id}/", bob.token)
    b_all = await ws("/ws/", bob.token)

    a_chat.write_message('{"type": "message.send", "content": "Hello, how are you?"}')
    echo = await recv(a_chat)
    assert echo["type"] == "message.receive" and set(echo["message"]) == MESSAGE_FIELDS
    assert echo["message"]["content"] == "Hello, how are you?"
    assert echo["message"]["sender_id"] == alice.id and echo["message"]["receiver_id"] == bob.id
    assert echo["message"]["sender_name"] == alice.name and not echo["message"]["is_read"]
    assert isinstance(echo["event_id"], int)

    got = await recv(b_chat)
    assert got["type"] == "message.receive" and got["message"] == echo["message"]
    # The stream socket gets the message and the new_message notification.
    frames = [await recv(b_all), await recv(b_all)]
    assert [f["type"] for f in frames] == ["message.receive", "notification.receive"]
    assert frames[0]["message"]["id"] == echo["message"]["id"]
    assert set(frames[1]["notification"]) == NOTIFICATION_FIELDS
    assert frames[1]["notification"]["notification_type"] == "new_message"
    assert frames[1]["event_id"] == frames[0]["event_id"] + 1

    stored = api("GET", f"/api/messages/?with_user={alice.id}", token=bob.token).json
    assert [m["id"] for m in stored] == [echo["message"]["id"]]


async def test_rest_message_reaches_every_socket_of_the_receiver_and_the_senders_others(
    ws, api, make_user
):
    alice, bob = make_user(), make_user()
    b1, b2 = await ws("/ws/", bob.token), await ws(f"/ws/chat/{alice.id}/", bob.token)
    a_tab = await ws(f"/ws/chat/{bob.id}/", alice.token)
    b_notes = await ws("/ws/notifications/", bob.token)
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "via REST"},
    )
    assert r.status == 201
    assert (await recv(b1))["message"]["id"] == r.json["id"]
    assert (await recv(b2))["message"]["id"] == r.json["id"]
    assert (await recv(a_tab))["message"]["id"] == r.json["id"]
    note = await recv(b_notes)
    assert note["type"] == "notification.receive"
    assert note["notification"]["related_id"] == r.json["id"]
    await no_frame(b_notes)  # the notifications socket carries no message frames


async def test_meeting_request_and_status_change_notify_live(ws, api, make_user):
    requester, expert = make_user(), make_user()
    expert_notes = await ws("/ws/notifications/", expert.token)
    requester_notes = await ws("/ws/notifications/", requester.token)
    meeting = _book(api, requester, expert)
    note = await recv(expert_notes)
    assert note["notification"]["notification_type"] == "meeting_request"
    assert note["notification"]["related_id"] == meeting["id"]
    r = api(
        "PATCH",
        f"/api/meetings/{meeting['id']}/update_status/",
        token=expert.token,
        json={"status": "confirmed"},
    )
    assert r.status == 200
    note = await recv(requester_notes)
    assert note["notification"]["notification_type"] == "meeting_confirmed"
    await no_frame(expert_notes)


async def test_refused_action_pushes_nothing(ws, api, make_user):
    alice, bob = make_user(), make_user()
    b_all = await ws("/ws/", bob.token)
    r = api(
        "POST", "/api/messages/", token=alice.token, json={"receiver_id": bob.id, "content": ""}
    )
    assert r.status == 400
    await no_frame(b_all)


async def test_replay_after_a_disconnect_has_no_gap_and_no_duplicate(ws, api, make_user):
    alice, bob = make_user(), make_user()
    conn = await ws("/ws/", bob.token)
    api("POST", "/api/messages/", token=alice.token, json={"receiver_id": bob.id, "content": "1"})
    first = [await recv(conn), await recv(conn)]
    last_seen = first[-1]["event_id"]
    conn.close()

    sent = []
    for text in ["2", "3", "4"]:
        sent.append(
            api(
                "POST",
                "/api/messages/",
                token=alice.token,
                json={"receiver_id": bob.id, "content": text},
            ).json["id"]
        )
    again = await ws(f"/ws/?last_event_id={last_seen}", bob.token)
    replayed = [await recv(again) for _ in range(6)]
    assert [f["event_id"] for f in replayed] == list(range(last_seen + 1, last_seen + 7))
    assert [f["message"]["id"] for f in replayed if f["type"] == "message.receive"] == sent
    await no_frame(again)
    # ...and then live ones, continuing the sequence.
    api("POST", "/api/messages/", token=alice.token, json={"receiver_id": bob.id, "content": "5"})
    assert (await recv(again))["event_id"] == last_seen + 7


async def test_a_replayed_frame_is_the_live_frame_for_a_sent_message(ws, api, make_user):
    """A message's events are logged by the statement that stores it, their payloads spelled in
    SQL; the live frames are spelled by realtime/events.py. Both spellings must agree, with and
    without an Idempotency-Key (which sends through a transaction)."""
    alice, bob = make_user(), make_user()
    a_all, b_all = await ws("/ws/", alice.token), await ws("/ws/", bob.token)
    a_chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    content = 'café \\ "quoted" 😀'
    a_chat.write_message(
        json.dumps({"type": "message.send", "content": content, "client_msg_id": "c-1"})
    )
    await recv(a_chat)  # stored: the keyed message below comes second
    r = api(
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "keyed"},
        headers={"Idempotency-Key": "replay-check"},
    )
    assert r.status == 201, r.text
    live_a = [await recv(a_all) for _ in range(2)]
    live_b = [await recv(b_all) for _ in range(4)]
    assert live_a[0]["client_msg_id"] == "c-1" and "client_msg_id" not in live_a[1]
    assert live_a[0]["message"]["content"] == content
    assert [f["type"] for f in live_b] == ["message.receive", "notification.receive"] * 2

    replay_a = await ws(f"/ws/?last_event_id={live_a[0]['event_id'] - 1}", alice.token)
    replay_b = await ws(f"/ws/?last_event_id={live_b[0]['event_id'] - 1}", bob.token)
    assert [await recv(replay_a) for _ in range(2)] == live_a
    assert [await recv(replay_b) for _ in range(4)] == live_b


async def test_chat_socket_replays_only_its_conversation(ws, api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    api("POST", "/api/messages/", token=carol.token, json={"receiver_id": bob.id, "content": "c"})
    api("POST", "/api/messages/", token=alice.token, json={"receiver_id": bob.id, "content": "a"})
    chat = await ws(f"/ws/chat/{alice.id}/?last_event_id=0", bob.token)
    frame = await recv(chat)
    assert frame["message"]["content"] == "a"
    await no_frame(chat)


async def test_replay_survives_a_server_restart(start_server, ws, make_user):
    alice, bob = make_user(), make_user()
    own = start_server()
    conn = await ws("/ws/", bob.token, url=own.url)
    api_request(
        own.url,
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "before"},
    )
    seen = (await recv(conn))["event_id"]
    await recv(conn)
    own.stop()
    assert await closed(conn) in (1001, 1006, None)
    again = start_server()
    api_request(
        again.url,
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "while away"},
    )
    conn = await ws(f"/ws/?last_event_id={seen}", bob.token, url=again.url)
    frames = [await recv(conn) for _ in range(3)]
    assert [f["event_id"] for f in frames] == [seen + 1, seen + 2, seen + 3]
    assert frames[1]["message"]["content"] == "while away"


async def test_a_future_last_event_id_asks_for_a_resync(ws, make_user):
    bob = make_user()
    conn = await ws("/ws/?last_event_id=999999", bob.token)
    assert await recv(conn) == {"type": "resync_required"}


@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c"])
async def test_handshake_without_a_valid_token_is_refused_with_401(ws, token):
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await ws("/ws/", token)
    assert err.value.code == 401


async def test_revoked_token_cannot_connect_and_logout_closes_its_sockets(ws, api, make_user):
    bob = make_user()
    other = api(
        "POST", "/api/users/login/", json={"username": bob.username, "password": bob.password}
    ).json["token"]
    doomed = await ws("/ws/", bob.token)
    survivor = await ws("/ws/", other)
    assert api("POST", "/api/users/logout/", token=bob.token).status == 200
    assert await closed(doomed) == 4401
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await ws("/ws/", bob.token)
    assert err.value.code == 401
    await no_frame(survivor)
    assert survivor.protocol is not None and survivor.close_code is None


async def test_unknown_receiver_closes_with_4404(ws, make_user):
    bob = make_user()
    conn = await ws("/ws/chat/999999999/", bob.token)
    assert await closed(conn) == 4404


def test_frames_sent_before_the_4404_close_are_dropped(server, make_user):
    """A client may send message.send before it has read the 4404 close, and Tornado still hands
    the server such frames: with no receiver there is nothing to send them to, and no failure."""
    import base64
    import os
    import socket as socketlib
    import time
    from urllib.parse import urlsplit

    bob = make_user()
    log_before = len(server.log_text())
    parts = urlsplit(server.url)
    frame = b'{"type": "message.send", "content": "too early"}'
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(frame))
    with socketlib.create_connection((parts.hostname, parts.port), timeout=5.0) as sock:
        # The handshake and a frame in one write: the frame is read after open() has closed.
        sock.sendall(
            (
                f"GET /ws/chat/999999998/?token={bob.token} HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            + bytes([0x81, 0x80 | len(frame)])
            + mask
            + masked
        )
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 4:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        head, close_frame = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert close_frame[0] == 0x88 and int.from_bytes(close_frame[2:4]) == 4404
        sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))  # the client's close, empty
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        logged = server.log_text()[log_before:]
        assert "Traceback" not in logged, logged
        time.sleep(0.1)


async def test_bad_frames_get_error_events_and_the_socket_stays_open(ws, make_user):
    alice, bob = make_user(), make_user()
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    for bad in [
        "not json",
        "[1]",
        '{"type": "dance"}',
        '{"type": "message.send", "content": ""}',
        '{"type": "message.send", "content": 42}',
        '{"type": "message.send", "content": "' + "x" * 5001 + '"}',
    ]:
        chat.write_message(bad)
        frame = await recv(chat)
        assert frame["type"] == "error" and frame["error"], bad
    chat.write_message('{"type": "message.send", "content": "still here"}')
    assert (await recv(chat))["message"]["content"] == "still here"


async def test_sending_to_yourself_is_an_error_event(ws, make_user):
    alice = make_user()
    chat = await ws(f"/ws/chat/{alice.id}/", alice.token)
    chat.write_message('{"type": "message.send", "content": "me"}')
    assert (await recv(chat))["type"] == "error"


async def test_foreign_origin_is_refused_but_same_host_and_no_origin_are_accepted(
    ws, server, make_user
):
    bob = make_user()
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await ws("/ws/", bob.token, headers={"Origin": "http://evil.example"})
    assert err.value.code == 403
    host = server.url.removeprefix("http://")
    assert await ws("/ws/", bob.token, headers={"Origin": f"http://{host}"})
    assert await ws("/ws/", bob.token)


async def test_oversized_frame_closes_the_socket_and_the_server_stays_well(ws, api, make_user):
    alice, bob = make_user(), make_user()
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    chat.write_message("x" * 70_000)
    assert await closed(chat) == 1009
    assert api("GET", "/api/health/").status == 200


async def test_opening_more_than_the_cap_closes_the_oldest(start_server, ws, make_user):
    own = start_server(REALTIME_MAX_SOCKETS_PER_USER="2")
    bob = make_user()
    first = await ws("/ws/", bob.token, url=own.url)
    await ws("/ws/", bob.token, url=own.url)
    await ws("/ws/", bob.token, url=own.url)
    assert await closed(first) == 4429


async def test_chat_messages_draw_from_the_rate_limit(start_server, ws, make_user):
    own = start_server(RATE_LIMITS_DEFAULT_PER_MINUTE="4")
    alice, bob = make_user(), make_user()
    # The handshake takes the first of the four.
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token, url=own.url)
    types = []
    for i in range(4):
        chat.write_message(f'{{"type": "message.send", "content": "m{i}"}}')
        types.append((await recv(chat))["type"])
    assert types == ["message.receive"] * 3 + ["error"]


async def test_replay_past_the_retention_window_asks_for_a_resync(
    start_server, ws, api, make_user, db
):
    alice, bob = make_user(), make_user()
    api("POST", "/api/messages/", token=alice.token, json={"receiver_id": bob.id, "content": "old"})
    await asyncio.sleep(0)
    db.execute(
        "UPDATE user_events SET created_at = now() - interval '40 days' WHERE user_id = $1", bob.id
    )
    own = start_server()  # purges at start-up (retention 30 days)
    assert db.fetchval("SELECT count(*) FROM user_events WHERE user_id = $1", bob.id) == 0
    conn = await ws("/ws/?last_event_id=0", bob.token, url=own.url)
    assert await recv(conn) == {"type": "resync_required"}
    # A client resuming from the purged head is complete again.
    conn = await ws("/ws/?last_event_id=2", bob.token, url=own.url)
    await no_frame(conn)


async def test_two_processes_deliver_each_others_events(start_server, ws, make_user):
    one = start_server(REALTIME_BACKEND="postgres")
    two = start_server(REALTIME_BACKEND="postgres")
    alice, bob = make_user(), make_user()
    on_two = await ws("/ws/", bob.token, url=two.url)
    started = asyncio.get_running_loop().time()
    r = api_request(
        one.url,
        "POST",
        "/api/messages/",
        token=alice.token,
        json={"receiver_id": bob.id, "content": "across processes"},
    )
    assert r.status == 201
    frame = await recv(on_two, within=1.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert frame["message"]["id"] == r.json["id"]
    assert (await recv(on_two, within=1.0))["type"] == "notification.receive"
    # Logout through one process closes the token's sockets on the other.
    assert api_request(one.url, "POST", "/api/users/logout/", token=bob.token).status == 200
    assert await closed(on_two) == 4401


def _raw_socket_that_never_reads(url: str, path: str):
    """A WebSocket handshake on a plain socket with a tiny receive buffer, after which the
    client reads nothing: a consumer as slow as can be."""
    import base64
    import os
    import socket as socketlib
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socketlib.socket()
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_slow_consumer_is_disconnected_and_does_not_slow_the_others(
    start_server, ws, make_user
):
    own = start_server(REALTIME_MAX_BUFFERED_BYTES="65536")
    alice, bob = make_user(), make_user()
    slow = _raw_socket_that_never_reads(own.url, f"/ws/?token={bob.token}")
    fast = await ws("/ws/", bob.token, url=own.url)
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token, url=own.url)
    big = "x" * 5000
    # Loopback kernel buffers absorb up to ~4 MB (tcp_wmem) before the server's own buffer
    # grows; 1,200 frames of 5 kB are well past that plus the 64 kB the server may hold.
    for _ in range(1200):
        chat.write_message(f'{{"type": "message.send", "content": "{big}"}}')
        await recv(chat)  # the echo: the message is stored
        frame = await recv(fast, within=2.0)
        assert frame["type"] == "message.receive"  # the fast socket keeps up throughout
        await recv(fast, within=2.0)  # ...and its notification
    received, hung_up = _read_until_closed(slow)
    slow.close()
    # The server gave up on it long before it had sent everything: a close frame with code
    # 4408 ends what it sent (the TCP connection follows once the client answers the close or
    # Tornado's close timeout passes), or, if it had to abort, the connection just ends.
    closed_4408 = b"\x11\x38Too slow" in received[-100:]
    assert closed_4408 or hung_up
    assert len(received) < 1200 * 5000


def _read_until_closed(sock) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection: a read that waits 2 s for
    more data means it is still open."""
    sock.settimeout(2.0)
    data = b""
    try:
        while len(data) < 64 * 1024 * 1024:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return data, True
            data += chunk
    except ConnectionResetError:
        return data, True
    except OSError:
        return data, False
    return data, False
