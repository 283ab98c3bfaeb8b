"""The conversations summary (0011_conversation_summaries.sql) that GET /api/conversations/
reads: each user's row per peer holds the newest message between the two and the peer's
messages the user has not read, and stays equal to a recount from messages under concurrent
sends and reads, message and user deletions, and after the backfill of existing messages."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid

import asyncpg
from helpers import admin_dsn, migrations_around, with_database

from expertconnect import migrate
from expertconnect.localdb import ensure_database

MIGRATION = "0011_conversation_summaries.sql"

# What the summary must equal, counted from scratch: both directions of each pair, the newest
# message id and the messages the peer sent unread.
RECOUNT = """
    SELECT user_id, peer_id, max(id) AS last_message_id,
           count(*) FILTER (WHERE unread) AS unread_count
    FROM (SELECT sender_id AS user_id, receiver_id AS peer_id, id, false AS unread
          FROM messages
          UNION ALL
          SELECT receiver_id, sender_id, id, NOT is_read FROM messages) sides
    WHERE user_id = ANY($1::bigint[])
    GROUP BY user_id, peer_id
    ORDER BY user_id, peer_id"""
SUMMARY = """
    SELECT user_id, peer_id, last_message_id, unread_count FROM conversations
    WHERE user_id = ANY($1::bigint[]) OR peer_id = ANY($1::bigint[])
    ORDER BY user_id, peer_id"""


def rows(records) -> list[tuple]:
    return [tuple(r) for r in records]


def recount(db, *user_ids: int) -> list[tuple]:
    return rows(db.fetch(RECOUNT, list(user_ids)))


def summary(db, *user_ids: int) -> list[tuple]:
    return rows(db.fetch(SUMMARY, list(user_ids)))


def send(api, sender, receiver, content: str):
    return api(
        "POST",
        "/api/messages/",
        token=sender.token,
        json={"receiver_id": receiver.id, "content": content},
    )


def mark_read(api, reader, sender):
    return api(
        "POST", "/api/messages/mark_read/", token=reader.token, json={"with_user": sender.id}
    )


def test_concurrent_sends_and_reads_in_one_pair_leave_the_exact_count(api, make_user, db):
    alice, bob = make_user(), make_user()
    # 60 sends, both ways, with each side marking the other's messages read between them; all
    # started at once on 8 threads (the session server's pool serves them concurrently).
    calls = []
    for i in range(60):
        sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
        calls.append(("send", sender, receiver, f"m{i}"))
        if i % 6 == 5:
            calls.append(("read", receiver, sender, None))
            calls.append(("read", sender, receiver, None))
    start = threading.Barrier(8)

    def call(step):
        kind, a, b, content = step
        if kind == "send":
            return kind, send(api, a, b, content)
        return kind, mark_read(api, a, b)

    def first(step):
        start.wait(timeout=30)
        return call(step)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(first, calls[:8])) + list(pool.map(call, calls[8:]))
    assert [r.status for kind, r in answers if kind == "send"] == [201] * 60
    assert {r.status for kind, r in answers if kind == "read"} == {200}

    expected = recount(db, alice.id, bob.id)
    newest = db.fetchval(
        "SELECT max(id) FROM messages WHERE sender_id = ANY($1::bigint[])", [alice.id, bob.id]
    )
    assert [r[2] for r in expected] == [newest, newest]
    assert summary(db, alice.id, bob.id) == expected
    # Some are still unread (the last sends came after the last reads) and the list says so.
    unread = {r[0]: r[3] for r in expected}
    listed = api("GET", "/api/conversations/", token=alice.token).json
    assert [(c["user_id"], c["last_message"]["id"], c["unread_count"]) for c in listed] == [
        (bob.id, newest, unread[alice.id])
    ]
    # Reading everything brings both counts to zero.
    assert mark_read(api, alice, bob).status == 200
    assert mark_read(api, bob, alice).status == 200
    assert [r[3] for r in summary(db, alice.id, bob.id)] == [0, 0]
    assert summary(db, alice.id, bob.id) == recount(db, alice.id, bob.id)


def test_deleting_messages_and_a_user_recounts_or_removes_their_rows(api, make_user, db):
    alice, bob, carol = make_user(), make_user(), make_user()
    for sender, receiver, content in [
        (alice, bob, "a1"),
        (bob, alice, "b1"),
        (carol, alice, "c1"),
        (carol, alice, "c2"),
        (alice, carol, "a2"),
        (bob, carol, "b2"),
    ]:
        assert send(api, sender, receiver, content).status == 201
    users = (alice.id, bob.id, carol.id)
    assert len(summary(db, *users)) == 6
    assert summary(db, *users) == recount(db, *users)

    # The newest message of a pair goes: the one before it is the last again, and an unread
    # one that goes is no longer counted.
    delete = "DELETE FROM messages WHERE content = $1 AND sender_id = $2"
    assert db.execute(delete, "a2", alice.id) == "DELETE 1"
    assert db.execute(delete, "c2", carol.id) == "DELETE 1"
    assert summary(db, *users) == recount(db, *users)
    listed = api("GET", "/api/conversations/", token=alice.token).json
    assert [(c["user_id"], c["last_message"]["content"], c["unread_count"]) for c in listed] == [
        (carol.id, "c1", 1),
        (bob.id, "b1", 1),
    ]
    # A message can not be moved to other people: four rows would have to move with it.
    try:
        db.execute(
            "UPDATE messages SET receiver_id = $1 WHERE content = 'c1' AND sender_id = $2",
            bob.id,
            carol.id,
        )
    except asyncpg.CheckViolationError as exc:
        assert exc.constraint_name == "messages_parties_fixed"
    else:
        raise AssertionError("a message was moved to another receiver")

    # Bob's deletion takes his messages and both sides of each of his conversations with it.
    assert db.execute("DELETE FROM users WHERE id = $1", bob.id) == "DELETE 1"
    assert summary(db, bob.id) == []
    assert summary(db, *users) == recount(db, *users)
    assert [row[:2] for row in summary(db, *users)] == [
        (alice.id, carol.id),
        (carol.id, alice.id),
    ]
    listed = api("GET", "/api/conversations/", token=alice.token).json
    assert [c["user_id"] for c in listed] == [carol.id]
    # The pair's last message gone: its rows go too.
    assert db.execute(delete, "c1", carol.id) == "DELETE 1"
    assert summary(db, *users) == []
    assert api("GET", "/api/conversations/", token=alice.token).json == []


def test_existing_messages_are_backfilled_and_counted_from_then_on(tmp_path):
    before, through = migrations_around(tmp_path, MIGRATION)
    admin = admin_dsn()
    name = f"expertconnect_migration_{uuid.uuid4().hex[:8]}"

    async def go():
        await ensure_database(admin, name)
        conn = await asyncpg.connect(with_database(admin, name))
        try:
            await migrate.apply_pending(conn, before)
            users = [
                await conn.fetchval(
                    """INSERT INTO users (username, email, password_hash,
                                          username_normalized, email_normalized)
                       VALUES ($1, $1 || '@example.com', 'x', $1, $1 || '@example.com')
                       RETURNING id""",
                    f"backfill{i}",
                )
                for i in range(5)
            ]
            # 200 messages over the pairs of 5 users, a third of them read.
            await conn.execute(
                """INSERT INTO messages (sender_id, receiver_id, content, is_read)
                   SELECT u[1 + g % 5], u[1 + (g + 1 + g / 5 % 4) % 5], 'old ' || g, g % 3 = 0
                   FROM generate_series(1, 200) g, (SELECT $1::bigint[] AS u) ids""",
                users,
            )
            expected = rows(await conn.fetch(RECOUNT, users))
            assert len(expected) == 20  # every ordered pair of 5 users
            assert await migrate.apply_pending(conn, through) == [MIGRATION]
            assert rows(await conn.fetch(SUMMARY, users)) == expected

            # From then on the triggers keep it: a set-based insert, a read, a deletion.
            await conn.execute(
                """INSERT INTO messages (sender_id, receiver_id, content)
                   SELECT $1::bigint, $2::bigint, 'new ' || g FROM generate_series(1, 3) g""",
                users[0],
                users[1],
            )
            await conn.execute(
                "UPDATE messages SET is_read = true WHERE receiver_id = $1 AND sender_id = $2",
                users[2],
                users[3],
            )
            await conn.execute(
                "DELETE FROM messages WHERE id = (SELECT max(id) FROM messages WHERE "
                "sender_id = $1 AND receiver_id = $2)",
                users[4],
                users[0],
            )
            assert rows(await conn.fetch(SUMMARY, users)) == rows(await conn.fetch(RECOUNT, users))
        finally:
            await conn.close()
            cleanup = await asyncpg.connect(admin)
            try:
                await cleanup.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await cleanup.close()

    asyncio.run(go())
