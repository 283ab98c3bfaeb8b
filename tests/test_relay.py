"""realtime.backend: postgres. Two server processes share one database: events and logouts
made through one reach the sockets held by the other, through the one LISTEN connection each
process keeps (db/listener.py), which comes back by itself when it is cut."""

import asyncio

from helpers import api_request, closed, recv


def _send(url: str, sender, receiver, content: str) -> dict:
    r = api_request(
        url,
        "POST",
        "/api/messages/",
        token=sender.token,
        json={"receiver_id": receiver.id, "content": content},
    )
    assert r.status == 201, r.text
    return r.json


async def test_a_message_sent_through_one_process_reaches_a_socket_on_another(
    start_server, make_user, ws
):
    one, two = start_server(REALTIME_BACKEND="postgres"), start_server(REALTIME_BACKEND="postgres")
    alice, bob = make_user(), make_user()
    bob_socket = await ws("/ws/", bob.token, url=two.url)
    sent = await asyncio.to_thread(_send, one.url, alice, bob, "across processes")
    frames = [await recv(bob_socket), await recv(bob_socket)]
    assert {f["type"] for f in frames} == {"message.receive", "notification.receive"}
    message = next(f for f in frames if f["type"] == "message.receive")
    assert message["message"]["id"] == sent["id"]


async def test_logout_through_one_process_closes_the_sockets_on_another(
    start_server, make_user, ws
):
    one, two = start_server(REALTIME_BACKEND="postgres"), start_server(REALTIME_BACKEND="postgres")
    user = make_user()
    socket = await ws("/ws/", user.token, url=two.url)
    r = await asyncio.to_thread(
        api_request, one.url, "POST", "/api/users/logout/", token=user.token
    )
    assert r.status == 200
    assert await closed(socket) == 4401


async def test_a_cut_listen_connection_closes_sockets_with_1012_and_comes_back(
    start_server, make_user, ws, db
):
    one, two = start_server(REALTIME_BACKEND="postgres"), start_server(REALTIME_BACKEND="postgres")
    alice, bob = make_user(), make_user()
    socket = await ws("/ws/", bob.token, url=two.url)
    # Cut every process's LISTEN connection: the sockets may have missed events meanwhile.
    cut = db.fetchval("""SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE datname = current_database()
                           AND application_name = 'expertconnect-listener'""")
    assert cut >= 2
    # Closed once the connection is back (within the listener's reconnect delay).
    assert await closed(socket) == 1012
    # Once the connection is back, delivery across processes works again.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        socket = await ws("/ws/", bob.token, url=two.url)
        await asyncio.to_thread(_send, one.url, alice, bob, "after the cut")
        try:
            frame = await recv(socket, within=1.0)
            break
        except (TimeoutError, AssertionError):
            assert asyncio.get_running_loop().time() < deadline, "relay did not come back"
    assert frame["type"] in {"message.receive", "notification.receive"}
