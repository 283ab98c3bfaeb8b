"""Safe retries: each of the six writes retried with an Idempotency-Key does its work once and
answers the same bytes again (with Idempotent-Replayed), a changed request is a 422, concurrent
requests with one key do the work once, a retry after the server was SIGKILLed (or the
connection cut) learns the real outcome, keys are per user, bad keys are a 400, and refusals
(4xx, 429, 401) are not stored. WebSocket chat: client_msg_id makes a repeated send a no-op
that answers the original frame."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import itertools
import json
import signal
import threading
import time
import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest
from helpers import api_request, no_frame, recv, register_user

from expertconnect.config import ConfigError, load_config

REPLAYED = "Idempotent-Replayed"
KEY_REUSED = {"error": "This Idempotency-Key was already used for a different request"}
BAD_KEY = {"error": "Idempotency-Key must be 1 to 255 printable ASCII characters"}
PURCHASE = "/api/payments/purchase_credits/"
# Each inserted meeting gets hours of its own: confirmed meetings of one person never overlap.
_hours = itertools.count(1)


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def purchase_body(credits: int = 3) -> dict:
    return {"payment_method": "paypal", "amount": f"{credits}.00", "credits_to_purchase": credits}


def keyed(url, method, path, token, body, key, **kwargs):
    return api_request(
        url, method, path, token=token, json=body, headers={"Idempotency-Key": key}, **kwargs
    )


def insert_meeting(db, requester, expert, status) -> int:
    """A meeting inserted directly (a completed one cannot be made through the API before it
    starts), an hour long, at hours of its own in the future."""
    return db.fetchval(
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                 scheduled_start, scheduled_end)
           VALUES ('Retry', $1, $2, 1, $3, now() + make_interval(hours => 2 * $4::integer),
                   now() + make_interval(hours => 2 * $4::integer + 1))
           RETURNING id""",
        requester.id,
        expert.id,
        status,
        next(_hours),
    )


def starts_at(hours: int) -> str:
    moment = time.gmtime(time.time() + hours * 3600)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)


# Each case: (who sends, method, path, body, the count of its effect in the database).
def case_purchase(db, me, other):
    effect = ("SELECT count(*) FROM payments WHERE user_id = $1", me.id)
    return me, "POST", PURCHASE, purchase_body(), effect


def case_transfer(db, me, other):
    meeting = insert_meeting(db, me, other, "confirmed")
    effect = (
        "SELECT count(*) FROM credit_transactions WHERE related_meeting_id = $1 "
        "AND transaction_type = 'spent'",
        meeting,
    )
    return me, "POST", "/api/credits/transfer/", {"meeting_id": meeting, "amount": 1}, effect


def case_book(db, me, other):
    hours = 24 + 2 * next(_hours)
    body = {
        "title": "Retried booking",
        "expert_id": other.id,
        "category_id": 1,
        "scheduled_start": starts_at(hours),
        "scheduled_end": starts_at(hours + 1),
    }
    effect = ("SELECT count(*) FROM meetings WHERE requester_id = $1", me.id)
    return me, "POST", "/api/meetings/", body, effect


def case_update_status(db, me, other):
    meeting = insert_meeting(db, me, other, "pending")
    effect = (
        "SELECT count(*) FROM notifications WHERE related_id = $1 "
        "AND notification_type = 'meeting_confirmed'",
        meeting,
    )
    path = f"/api/meetings/{meeting}/update_status/"
    return other, "PATCH", path, {"status": "confirmed"}, effect


def case_review(db, me, other):
    meeting = insert_meeting(db, me, other, "completed")
    effect = ("SELECT count(*) FROM reviews WHERE meeting_id = $1", meeting)
    body = {"meeting_id": meeting, "reviewee_id": other.id, "rating": 5, "review_text": "Sharp"}
    return me, "POST", "/api/reviews/", body, effect


def case_message(db, me, other):
    effect = ("SELECT count(*) FROM messages WHERE sender_id = $1", me.id)
    body = {"receiver_id": other.id, "content": "Did this arrive?"}
    return me, "POST", "/api/messages/", body, effect


CASES = [case_purchase, case_transfer, case_book, case_update_status, case_review, case_message]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.removeprefix("case_"))
def test_a_retry_answers_the_same_bytes_and_does_the_work_once(server, make_user, db, case):
    me, other = make_user(), make_user()
    sender, method, path, body, (effect, arg) = case(db, me, other)
    key = new_key()

    first = keyed(server.url, method, path, sender.token, body, key)
    assert first.status in (200, 201), first.text
    assert REPLAYED not in first.headers
    assert db.fetchval(effect, arg) == 1
    stored = db.fetchrow(
        "SELECT status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2", sender.id, key
    )
    assert (stored["status"], stored["body"]) == (first.status, first.text)

    # The same request, its keys in another order and spaced out: the same request.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = api_request(
        server.url,
        method,
        path,
        token=sender.token,
        body=reordered,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert (again.status, again.text) == (first.status, first.text)
    assert again.headers[REPLAYED] == "true"
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert db.fetchval(effect, arg) == 1

    # The key with another body, or on another endpoint: 422, and nothing is done.
    changed = {**body, "spare": "field"}
    r = keyed(server.url, method, path, sender.token, changed, key)
    assert (r.status, r.json) == (422, KEY_REUSED)
    assert REPLAYED not in r.headers
    elsewhere = (
        ("/api/messages/", {"receiver_id": me.id, "content": "x"})
        if path == PURCHASE
        else (PURCHASE, purchase_body())
    )
    r = keyed(server.url, "POST", *elsewhere[:1], sender.token, elsewhere[1], key)
    assert (r.status, r.json) == (422, KEY_REUSED)
    assert db.fetchval(effect, arg) == 1

    # Without a key the request is new work again (or the refusal a repeat deserves).
    r = api_request(server.url, method, path, token=sender.token, json=body)
    assert REPLAYED not in r.headers


def test_a_refusal_is_not_stored_so_the_retry_runs_anew(api, make_user, db):
    """A 4xx rolled its work back: nothing is stored and the key stays free. Once the cause is
    mended (credits bought), the same request with the same key does the work."""
    me, other = make_user(), make_user()
    meeting = insert_meeting(db, me, other, "confirmed")
    body, key = {"meeting_id": meeting, "amount": 50}, new_key()
    r = api(
        "POST",
        "/api/credits/transfer/",
        token=me.token,
        json=body,
        headers={"Idempotency-Key": key},
    )
    assert (r.status, r.json) == (400, {"error": "Insufficient credits"})
    assert db.fetchval("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", me.id) == 0

    assert api("POST", PURCHASE, token=me.token, json=purchase_body(60)).status == 200
    r = api(
        "POST",
        "/api/credits/transfer/",
        token=me.token,
        json=body,
        headers={"Idempotency-Key": key},
    )
    assert r.status == 200 and REPLAYED not in r.headers, r.text
    again = api(
        "POST",
        "/api/credits/transfer/",
        token=me.token,
        json=body,
        headers={"Idempotency-Key": key},
    )
    assert (again.status, again.text, again.headers[REPLAYED]) == (200, r.text, "true")
    assert db.fetchval("SELECT paid_credits FROM meetings WHERE id = $1", meeting) == 50


def test_twenty_concurrent_requests_with_one_key_do_the_work_once(server, make_user, db):
    me = make_user()
    key, body = new_key(), purchase_body(7)
    start = threading.Barrier(20)

    def send(_):
        start.wait(timeout=10)
        return keyed(server.url, "POST", PURCHASE, me.token, body, key)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))

    done = [r for r in answers if r.status == 200]
    busy = [r for r in answers if r.status == 409]
    assert len(done) + len(busy) == 20, [(r.status, r.text) for r in answers]
    assert done and len({r.text for r in done}) == 1
    assert sum(REPLAYED not in r.headers for r in done) == 1  # the one that did the work
    for r in busy:
        assert r.headers["Retry-After"] == "1"
        assert r.json == {
            "error": "A request with this Idempotency-Key is still being processed; retry shortly"
        }
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1
    # Initial free credit + 7, once.
    assert db.fetchval("SELECT balance FROM credit_accounts WHERE user_id = $1", me.id) == 8
    late = keyed(server.url, "POST", PURCHASE, me.token, body, key)
    assert (late.status, late.text, late.headers[REPLAYED]) == (200, done[0].text, "true")


async def hold_credit_account(database_dsn, user_id):
    """A connection holding the user's credit account row locked (until it is closed), so a
    purchase by that user stops mid-transaction, its key claimed."""
    conn = await asyncpg.connect(database_dsn)
    await conn.execute("BEGIN")
    await conn.execute("SELECT 1 FROM credit_accounts WHERE user_id = $1 FOR UPDATE", user_id)
    return conn


async def wait_for_waiting_purchase(database_dsn):
    """Until a backend of this database waits for a row lock with an advisory lock granted:
    the purchase has claimed its key and is stuck on the held account."""
    conn = await asyncpg.connect(database_dsn)
    try:
        for _ in range(200):
            waiting = await conn.fetchval(
                """SELECT count(*) FROM pg_locks a JOIN pg_stat_activity s ON s.pid = a.pid
                   WHERE a.locktype = 'advisory' AND a.granted AND s.datname = current_database()
                     AND s.wait_event_type = 'Lock'"""
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the purchase never claimed its key")
    finally:
        await conn.close()


async def test_while_the_first_runs_its_key_answers_409_then_the_stored_answer(
    server, make_user, db, database_dsn
):
    me = make_user()
    key, body = new_key(), purchase_body(2)
    lock = await hold_credit_account(database_dsn, me.id)
    loop = asyncio.get_running_loop()
    try:
        first = loop.run_in_executor(
            None, lambda: keyed(server.url, "POST", PURCHASE, me.token, body, key)
        )
        await wait_for_waiting_purchase(database_dsn)
        for attempt in (body, purchase_body(5)):  # the same request, or another: the key is busy
            r = await loop.run_in_executor(
                None, lambda b=attempt: keyed(server.url, "POST", PURCHASE, me.token, b, key)
            )
            assert r.status == 409 and r.headers["Retry-After"] == "1", r.text
    finally:
        await lock.close()
    first = await first
    assert first.status == 200 and REPLAYED not in first.headers
    again = await loop.run_in_executor(
        None, lambda: keyed(server.url, "POST", PURCHASE, me.token, body, key)
    )
    assert (again.status, again.text, again.headers[REPLAYED]) == (200, first.text, "true")
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1


def send_without_reading(url, token, body, key) -> http.client.HTTPConnection:
    """Send a keyed purchase and return the connection without reading its answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(
        "POST",
        PURCHASE,
        body=json.dumps(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    return conn


def wait_for_stored_answer(db, user_id, key) -> dict:
    for _ in range(200):
        row = db.fetchrow(
            "SELECT status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            user_id,
            key,
        )
        if row is not None:
            return dict(row)
        time.sleep(0.05)
    raise AssertionError("the request never committed")


def test_a_retry_after_sigkill_between_commit_and_reply_gets_the_stored_answer(start_server, db):
    server = start_server()
    me = register_user(server.url)
    key, body = new_key(), purchase_body(4)
    conn = send_without_reading(server.url, me.token, body, key)
    stored = wait_for_stored_answer(db, me.id, key)  # committed: the client has no answer yet
    server.proc.send_signal(signal.SIGKILL)
    assert server.proc.wait(timeout=10) == -signal.SIGKILL
    conn.close()

    restarted = start_server()
    r = keyed(restarted.url, "POST", PURCHASE, me.token, body, key)
    assert (r.status, r.text, r.headers[REPLAYED]) == (200, stored["body"], "true")
    assert r.json["new_balance"] == 5
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1
    assert db.fetchval("SELECT balance FROM credit_accounts WHERE user_id = $1", me.id) == 5


async def test_a_sigkill_before_the_commit_leaves_the_key_free_for_the_retry(
    start_server, db, database_dsn
):
    """Killed mid-transaction: PostgreSQL rolls the work back and drops the key's lock with
    it. No key stays stuck "in progress": the retry does the work, once."""
    server = start_server()
    me = register_user(server.url)
    key, body = new_key(), purchase_body(4)
    lock = await hold_credit_account(database_dsn, me.id)
    try:
        conn = send_without_reading(server.url, me.token, body, key)
        await wait_for_waiting_purchase(database_dsn)
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(timeout=10) == -signal.SIGKILL
        conn.close()
    finally:
        await lock.close()  # the orphaned transaction runs on, finds its client gone, rolls back

    restarted = start_server()
    loop = asyncio.get_running_loop()
    for _ in range(50):  # 409 until PostgreSQL has noticed the dead client
        r = await loop.run_in_executor(
            None, lambda: keyed(restarted.url, "POST", PURCHASE, me.token, body, key)
        )
        if r.status != 409:
            break
        await asyncio.sleep(0.1)
    assert r.status == 200 and REPLAYED not in r.headers, r.text
    assert r.json["new_balance"] == 5
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1


def test_a_cut_connection_then_a_retry_learns_the_outcome(server, make_user, db):
    me = make_user()
    key, body = new_key(), purchase_body(6)
    send_without_reading(server.url, me.token, body, key).close()
    stored = wait_for_stored_answer(db, me.id, key)
    r = keyed(server.url, "POST", PURCHASE, me.token, body, key)
    assert (r.status, r.text, r.headers[REPLAYED]) == (200, stored["body"], "true")
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1


def test_two_users_with_one_key_each_do_their_own_work(server, make_user, db):
    alice, bob = make_user(), make_user()
    key = "order-1"
    for user in (alice, bob):
        r = keyed(server.url, "POST", PURCHASE, user.token, purchase_body(2), key)
        assert r.status == 200 and REPLAYED not in r.headers, r.text
        assert r.json["payment"]["user"] == user.id
        assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user.id) == 1


# (Other control characters never reach the application: Tornado refuses them in any header
# with a bare 400 of its own.)
@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "caf\xe9", "tab\there"],
    ids=["empty", "256 characters", "latin-1", "tab"],
)
def test_a_bad_key_is_a_400_naming_the_header_and_does_nothing(server, make_user, db, key):
    me = make_user()
    r = keyed(server.url, "POST", PURCHASE, me.token, purchase_body(), key)
    assert (r.status, r.json) == (400, BAD_KEY)
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 0


def test_the_longest_key_and_every_printable_character_are_accepted(server, make_user):
    me = make_user()
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    for key in ("x" * 255, printable, "a b"):
        r = keyed(server.url, "POST", PURCHASE, me.token, purchase_body(), key)
        assert r.status == 200 and REPLAYED not in r.headers, (key, r.text)


def test_a_401_or_429_is_not_stored(start_server, db):
    server = start_server(RATE_LIMITS_DEFAULT_PER_MINUTE="30")
    me = register_user(server.url)
    key, body = new_key(), purchase_body()
    r = keyed(server.url, "POST", PURCHASE, "not-a-token", body, key)
    assert r.status == 401
    while (r := keyed(server.url, "POST", PURCHASE, me.token, body, key)).status != 429:
        assert r.status in (200, 409), r.text  # the first does the work, the rest replay it
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 1

    other = new_key()
    r = keyed(server.url, "POST", PURCHASE, me.token, body, other)
    assert r.status == 429 and REPLAYED not in r.headers
    time.sleep(int(r.headers["Retry-After"]))
    r = keyed(server.url, "POST", PURCHASE, me.token, body, other)
    assert r.status == 200 and REPLAYED not in r.headers, r.text  # ran anew
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", me.id) == 2


def test_the_retention_is_a_validated_config_key():
    assert load_config(None, environ={}).idempotency.retention_hours == 24
    with pytest.raises(ConfigError, match=r"idempotency\.retention_hours: must be 1\.\.8760"):
        load_config(None, environ={"EXPERTCONNECT_IDEMPOTENCY_RETENTION_HOURS": "0"})


def test_the_sweep_prunes_answers_past_the_retention(start_server, db):
    server = start_server(IDEMPOTENCY_RETENTION_HOURS="1", MEETINGS_EXPIRY_INTERVAL_SECONDS="0.2")
    me = register_user(server.url)
    old, fresh = new_key(), new_key()
    for key in (old, fresh):
        assert keyed(server.url, "POST", PURCHASE, me.token, purchase_body(), key).status == 200
    db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '61 minutes' "
        "WHERE user_id = $1 AND key = $2",
        me.id,
        old,
    )
    for _ in range(100):
        kept = db.fetch("SELECT key FROM idempotency_keys WHERE user_id = $1", me.id)
        if len(kept) == 1:
            break
        time.sleep(0.1)
    assert [row["key"] for row in kept] == [fresh]


# ---------------------------------------------------------------- WebSocket client_msg_id
def send_frame(conn, content, client_msg_id=None):
    frame = {"type": "message.send", "content": content}
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    conn.write_message(json.dumps(frame))


async def test_a_repeated_client_msg_id_stores_nothing_and_answers_the_original_frame(
    ws, make_user, db
):
    alice, bob = make_user(), make_user()
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    alice_all = await ws("/ws/", alice.token)
    bob_all = await ws("/ws/", bob.token)

    send_frame(chat, "Hello once", "c-1")
    echo = await recv(chat)
    assert echo["type"] == "message.receive" and echo["client_msg_id"] == "c-1"
    assert await recv(alice_all) == echo  # every socket of the sender, with the id
    got = [await recv(bob_all) for _ in range(2)]
    assert {f["type"] for f in got} == {"message.receive", "notification.receive"}
    assert all("client_msg_id" not in f for f in got)  # the sender's own token only

    send_frame(chat, "Hello once", "c-1")
    assert await recv(chat) == echo  # the original frame, its event_id included
    await no_frame(alice_all)
    await no_frame(bob_all)
    rows = db.fetch("SELECT id, client_msg_id FROM messages WHERE sender_id = $1", alice.id)
    assert [(r["id"], r["client_msg_id"]) for r in rows] == [(echo["message"]["id"], "c-1")]

    # The same id for another message is refused; the socket stays open.
    send_frame(chat, "Something else", "c-1")
    assert await recv(chat) == {
        "type": "error",
        "error": "client_msg_id: This client_msg_id was already used for another message.",
    }
    # Replayed from the log after a reconnect, the frame still carries the id.
    again = await ws(f"/ws/?last_event_id={echo['event_id'] - 1}", alice.token)
    assert await recv(again) == echo
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", alice.id) == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", "client_msg_id: This field may not be blank."),
        ("x" * 65, "client_msg_id: Ensure this field has no more than 64 characters."),
        (17, "client_msg_id: Must be a string."),
    ],
)
async def test_a_bad_client_msg_id_gets_an_error_frame(ws, make_user, db, value, error):
    alice, bob = make_user(), make_user()
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    send_frame(chat, "Hi", value)
    assert await recv(chat) == {"type": "error", "error": error}
    send_frame(chat, "Hi", "x" * 64)  # the longest id is fine
    assert (await recv(chat))["client_msg_id"] == "x" * 64


async def test_concurrent_sends_with_one_client_msg_id_store_one_message(ws, make_user, db):
    alice, bob = make_user(), make_user()
    chats = [await ws(f"/ws/chat/{bob.id}/", alice.token) for _ in range(4)]
    for chat in chats:
        send_frame(chat, "Race", "same")
    # Each socket gets the frame once: live (the one stored) or as the original's answer.
    frames = [[await recv(chat)] for chat in chats]
    for chat, got in zip(chats, frames, strict=True):
        try:
            got.append(await recv(chat, within=0.5))
        except TimeoutError:
            pass
    ids = {f["message"]["id"] for got in frames for f in got}
    assert len(ids) == 1
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", alice.id) == 1


async def test_rest_takes_client_msg_id_too_and_the_socket_knows_it(ws, api, make_user, db):
    alice, bob = make_user(), make_user()
    body = {"receiver_id": bob.id, "content": "Sent over REST", "client_msg_id": "r-1"}
    chat = await ws(f"/ws/chat/{bob.id}/", alice.token)
    first = api("POST", "/api/messages/", token=alice.token, json=body)
    assert first.status == 201 and "client_msg_id" not in first.json  # the spec's fields
    live = await recv(chat)
    assert live["client_msg_id"] == "r-1" and live["message"] == first.json
    again = api("POST", "/api/messages/", token=alice.token, json=body)
    assert (again.status, again.json) == (201, first.json)
    await no_frame(chat)
    send_frame(chat, "Sent over REST", "r-1")  # a client retrying over the socket
    assert await recv(chat) == live
    r = api("POST", "/api/messages/", token=alice.token, json={**body, "content": "Other"})
    assert r.status == 400 and "client_msg_id" in r.json["errors"]
    assert db.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", alice.id) == 1
