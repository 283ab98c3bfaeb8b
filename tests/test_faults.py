"""Faults against real processes: PostgreSQL restarted under load, statements that wait on locks,
the server killed with SIGKILL mid-storm, and a graceful SIGTERM. Nothing answered 2xx is lost."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import asyncpg
import pytest
import tornado.websocket
from helpers import PASSWORD, Db, api_request, closed

# Credits bought by every purchase in these tests: price 1.00 each (config.yaml).
CREDITS = 1


@dataclass
class Outcome:
    kind: str  # "purchase" or "transfer"
    status: int | None  # None: no HTTP answer (connection refused or reset)
    elapsed: float
    body: object
    meeting_id: int | None = None
    amount: int | None = None


def register(url: str) -> tuple[int, str]:
    tag = uuid.uuid4().hex[:10]
    r = api_request(
        url,
        "POST",
        "/api/users/register/",
        json={
            "username": f"fault_{tag}",
            "email": f"fault_{tag}@example.com",
            "password": PASSWORD,
            "first_name": "Fault",
            "last_name": "Test",
        },
    )
    assert r.status == 201, r.text
    return r.json["id"], r.json["token"]


def purchase(url: str, token: str, credits: int = CREDITS, timeout: float = 30.0):
    return api_request(
        url,
        "POST",
        "/api/payments/purchase_credits/",
        token=token,
        timeout=timeout,
        json={
            "payment_method": "credit_card",
            "amount": f"{credits}.00",
            "credits_to_purchase": credits,
        },
    )


def timed(call, *args, **kwargs) -> tuple[object, float]:
    started = time.monotonic()
    try:
        result = call(*args, **kwargs)
    except (OSError, http.client.HTTPException):  # refused, reset, cut mid-answer
        result = None
    return result, time.monotonic() - started


def assert_ledger_matches_balances(db: Db, user_ids: list[int]) -> None:
    """Each balance == its ledger summed with signs (initial/purchased/earned/refund add, spent
    takes)."""
    rows = db.fetch(
        """SELECT a.user_id, a.balance,
                  COALESCE(sum(CASE WHEN t.transaction_type = 'spent' THEN -t.amount
                                    ELSE t.amount END), 0) AS ledger
           FROM credit_accounts a LEFT JOIN credit_transactions t ON t.user_id = a.user_id
           WHERE a.user_id = ANY($1::bigint[])
           GROUP BY a.user_id, a.balance""",
        user_ids,
    )
    assert len(rows) == len(user_ids)
    for row in rows:
        assert row["balance"] == row["ledger"], dict(row)
    # Payments and purchase ledger rows are written in one transaction: never one without the other.
    counts = db.fetchrow(
        """SELECT (SELECT coalesce(sum(credits_purchased), 0) FROM payments
                   WHERE user_id = ANY($1::bigint[])) AS paid,
                  (SELECT coalesce(sum(amount), 0) FROM credit_transactions
                   WHERE user_id = ANY($1::bigint[])
                     AND transaction_type = 'purchased') AS bought""",
        user_ids,
    )
    assert counts["paid"] == counts["bought"]


def assert_purchases_recorded(db: Db, outcomes: list[Outcome]) -> None:
    """Every purchase answered 200 left its payment and its ledger row."""
    ok = [o.body for o in outcomes if o.kind == "purchase" and o.status == 200]
    payment_ids = [b["payment"]["id"] for b in ok]
    transaction_ids = [b["transaction"]["id"] for b in ok]
    found = db.fetchval("SELECT count(*) FROM payments WHERE id = ANY($1::bigint[])", payment_ids)
    assert found == len(payment_ids)
    found = db.fetchval(
        """SELECT count(*) FROM credit_transactions
           WHERE id = ANY($1::bigint[]) AND transaction_type = 'purchased'""",
        transaction_ids,
    )
    assert found == len(transaction_ids)


# ---------------------------------------------------------------- PostgreSQL restarted under load
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_under_load_answers_503_then_recovers(
    private_postgres, start_server, mode
):
    server = start_server(DATABASE_DSN=private_postgres.dsn)
    users = [register(server.url) for _ in range(4)]
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def fire(token: str) -> None:
        for _ in range(2000):  # bounded; `stop` ends it far sooner
            if stop.is_set():
                return
            r, elapsed = timed(purchase, server.url, token, timeout=20)
            outcomes.append(Outcome("purchase", r and r.status, elapsed, r and r.json))
            if r is not None and r.status == 503:
                time.sleep(0.02)  # a client backing off, not a busy loop

    threads = [threading.Thread(target=fire, args=(token,)) for _, token in users]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        before_outage = len(outcomes)
        private_postgres.stop(mode)
        down_since = time.monotonic()

        health_down = []
        while time.monotonic() - down_since < 1.5:
            r, elapsed = timed(api_request, server.url, "GET", "/api/health/", timeout=10)
            health_down.append((r and r.status, elapsed, r and r.json))
            time.sleep(0.1)

        private_postgres.start()
        back_at = time.monotonic()
        health_up = None
        while time.monotonic() - back_at < 10:
            r = api_request(server.url, "GET", "/api/health/", timeout=10)
            if r.status == 200:
                health_up = time.monotonic() - back_at
                break
            assert r.status == 503, r.text
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    after_recovery = [o for o in outcomes[before_outage:] if o.status == 200]

    assert before_outage > 0
    assert all(
        status == 503 and body == {"status": "unavailable"} and elapsed < 5
        for status, elapsed, body in health_down
    ), health_down
    assert health_up is not None and health_up < 5, server.log_text()[-3000:]
    assert server.proc.poll() is None  # the same process, never restarted

    statuses = {o.status for o in outcomes}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses
    assert after_recovery, "no purchase succeeded after PostgreSQL came back"
    slow = [o for o in outcomes if o.elapsed >= 5]
    assert not slow, slow[:3]
    for o in outcomes:
        if o.status == 503:
            assert isinstance(o.body, dict) and set(o.body) == {"error"}, o.body
            assert isinstance(o.body["error"], str)

    db = Db(private_postgres.dsn)
    assert_purchases_recorded(db, outcomes)
    assert_ledger_matches_balances(db, [user_id for user_id, _ in users])
    assert "Uncaught exception" not in server.log_text()


# ---------------------------------------------------------------- statements that cannot finish
async def lock_account(dsn: str, user_id: int) -> asyncpg.Connection:
    """A connection of the test's own holding `user_id`'s credit account row locked, so the
    server's UPDATE of that row waits until the test rolls back."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("BEGIN")
    await conn.execute("SELECT 1 FROM credit_accounts WHERE user_id = $1 FOR UPDATE", user_id)
    return conn


async def wait_for_lock_waiters(conn: asyncpg.Connection, count: int) -> None:
    for _ in range(100):  # at most 5 s
        # `conn` is inside a transaction, which would otherwise see one cached snapshot.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'"""
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} statements are waiting on the lock")


def in_thread(call, *args, **kwargs):
    return asyncio.get_running_loop().run_in_executor(None, lambda: timed(call, *args, **kwargs))


async def test_statement_past_command_timeout_answers_503_and_others_are_served(
    start_server, database_dsn, db
):
    server = start_server(DATABASE_COMMAND_TIMEOUT="1", DATABASE_ACQUIRE_TIMEOUT="1")
    (stuck_id, stuck_token), (other_id, other_token) = register(server.url), register(server.url)
    lock = await lock_account(database_dsn, stuck_id)
    try:
        blocked = in_thread(purchase, server.url, stuck_token)
        await wait_for_lock_waiters(lock, 1)
        served = []
        for _ in range(100):  # bounded; ends when `blocked` does
            if blocked.done():
                break
            r, elapsed = await in_thread(
                api_request, server.url, "GET", "/api/credits/balance/", token=other_token
            )
            served.append((r.status, elapsed))
        r, elapsed = await blocked
    finally:
        await lock.execute("ROLLBACK")
        await lock.close()

    assert r.status == 503, r.text
    assert r.json == {"error": "Database is busy, try again"}
    assert r.headers["Retry-After"] == "5"
    assert 0.9 <= elapsed < 3, elapsed
    # The event loop was never held: another user's requests were answered meanwhile.
    assert len(served) >= 3 and all(s == 200 and t < 0.5 for s, t in served), served
    # The cancelled purchase left nothing behind; the connection it used still works.
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", stuck_id) == 0
    r = purchase(server.url, stuck_token)
    assert r.status == 200, r.text
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", stuck_id) == 1
    assert_ledger_matches_balances(db, [stuck_id, other_id])


async def test_exhausted_pool_answers_503_within_acquire_timeout(start_server, database_dsn, db):
    server = start_server(
        DATABASE_POOL_MIN="1",
        DATABASE_POOL_MAX="2",
        DATABASE_ACQUIRE_TIMEOUT="0.5",
        DATABASE_COMMAND_TIMEOUT="5",
    )
    (stuck_id, stuck_token), (other_id, other_token) = register(server.url), register(server.url)
    lock = await lock_account(database_dsn, stuck_id)
    try:
        # Both pooled connections wait on the lock.
        holders = [in_thread(purchase, server.url, stuck_token) for _ in range(2)]
        await wait_for_lock_waiters(lock, 2)
        busy, busy_elapsed = await in_thread(
            api_request, server.url, "GET", "/api/credits/balance/", token=other_token
        )
        health, health_elapsed = await in_thread(api_request, server.url, "GET", "/api/health/")
    finally:
        await lock.execute("ROLLBACK")
        await lock.close()
    held = [await h for h in holders]

    assert busy.status == 503 and busy.json == {"error": "Database is busy, try again"}
    assert busy_elapsed < 1.5, busy_elapsed
    assert health.status == 503 and health.json == {"status": "unavailable"}
    assert health_elapsed < 1.5, health_elapsed
    # Once the lock is gone the waiting purchases complete, and the pool serves everyone again.
    assert [r.status for r, _ in held] == [200, 200], [r.text for r, _ in held]
    r = api_request(server.url, "GET", "/api/credits/balance/", token=other_token)
    assert r.status == 200, r.text
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", stuck_id) == 2
    assert_ledger_matches_balances(db, [stuck_id, other_id])


# ---------------------------------------------------------------- SIGKILL in a storm of writes
def test_sigkill_mid_storm_keeps_ledger_and_every_acknowledged_write(start_server, db):
    server = start_server()
    pairs = [(register(server.url), register(server.url)) for _ in range(4)]
    for (_, token), _expert in pairs:
        assert purchase(server.url, token, credits=5000).status == 200
    meetings = {
        payer_id: [
            row["id"]
            for row in db.fetch(
                """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                     scheduled_start, scheduled_end)
               SELECT 'Storm ' || n, $1, $2, 1, 'confirmed',
                      now() + n * interval '1 day', now() + n * interval '1 day' + interval '1 hour'
               FROM generate_series(1, 300) AS n
               RETURNING id""",
                payer_id,
                expert_id,
            )
        ]
        for (payer_id, _), (expert_id, _) in pairs
    }
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def storm(payer_id: int, token: str) -> None:
        # Each transfer pays a meeting of its own, so the ledger shows exactly which landed.
        for n, meeting_id in enumerate(meetings[payer_id]):
            if stop.is_set():
                return
            amount = 1 + n % 3
            r, elapsed = timed(
                api_request,
                server.url,
                "POST",
                "/api/credits/transfer/",
                token=token,
                json={"meeting_id": meeting_id, "amount": amount},
                timeout=10,
            )
            outcomes.append(
                Outcome("transfer", r and r.status, elapsed, r and r.json, meeting_id, amount)
            )
            r, elapsed = timed(purchase, server.url, token, timeout=10)
            outcomes.append(Outcome("purchase", r and r.status, elapsed, r and r.json))
            if r is None:
                return  # the server is gone

    threads = [
        threading.Thread(target=storm, args=(payer_id, token)) for (payer_id, token), _ in pairs
    ]
    for t in threads:
        t.start()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 5:
            if sum(o.status == 200 for o in outcomes) >= 60:
                break
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    kinds = {(o.kind, o.status) for o in outcomes}
    assert ("transfer", 200) in kinds and ("purchase", 200) in kinds
    assert {o.status for o in outcomes} <= {200, None}, kinds

    restarted = start_server()
    user_ids = [user_id for pair in pairs for user_id, _ in pair]
    assert_ledger_matches_balances(db, user_ids)
    assert_purchases_recorded(db, outcomes)
    transfers = [o for o in outcomes if o.kind == "transfer"]
    landed_by_meeting: dict[int, list] = {o.meeting_id: [] for o in transfers}
    for row in db.fetch(
        """SELECT related_meeting_id, transaction_type, amount FROM credit_transactions
               WHERE related_meeting_id = ANY($1::bigint[])
               ORDER BY related_meeting_id, transaction_type""",
        list(landed_by_meeting),
    ):
        landed_by_meeting[row["related_meeting_id"]].append(
            (row["transaction_type"], row["amount"])
        )
    # The meetings are confirmed: a payment is a spent row and the credits held on the meeting.
    held = dict(
        db.fetch(
            "SELECT id, paid_credits FROM meetings WHERE id = ANY($1::bigint[])",
            list(landed_by_meeting),
        )
    )
    for o in transfers:
        landed = landed_by_meeting[o.meeting_id], held[o.meeting_id]
        if o.status == 200:
            assert landed == ([("spent", o.amount)], o.amount), (o, landed)
        else:  # no answer: all of it or none of it
            assert landed in (([], 0), ([("spent", o.amount)], o.amount)), (o, landed)
    # The restarted server answers with the balances the ledger explains.
    for (payer_id, token), _ in pairs:
        r = api_request(restarted.url, "GET", "/api/credits/balance/", token=token)
        assert r.status == 200, r.text
        assert r.json["balance"] == db.fetchval(
            "SELECT balance FROM credit_accounts WHERE user_id = $1", payer_id
        )


# ---------------------------------------------------------------- SIGTERM
async def test_sigterm_drains_requests_closes_sockets_and_exits_zero(
    start_server, database_dsn, db
):
    server = start_server()
    user_id, token = register(server.url)
    stream = await asyncio.wait_for(
        tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/ws/?token={token}"), 10
    )
    lock = await lock_account(database_dsn, user_id)
    try:
        # A purchase that cannot finish until the test lets go of the account row.
        in_flight = in_thread(purchase, server.url, token)
        await wait_for_lock_waiters(lock, 1)
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        assert await closed(stream, within=5) == 1001
        refused = False
        for _ in range(40):  # at most about 2 s
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                refused = True
                break
            await asyncio.sleep(0.05)
        assert refused, "the server still accepts connections after SIGTERM"
        await asyncio.sleep(0.5)
        assert server.proc.poll() is None, "exited with a request still in flight"
    finally:
        await lock.execute("ROLLBACK")
        await lock.close()

    r, _ = await in_flight
    assert r is not None and r.status == 200, r and r.text
    assert db.fetchval("SELECT count(*) FROM payments WHERE id = $1", r.json["payment"]["id"]) == 1
    remaining = 10 - (time.monotonic() - signalled)
    code = await asyncio.get_running_loop().run_in_executor(None, server.proc.wait, remaining)
    assert code == 0, server.log_text()[-2000:]
    assert time.monotonic() - signalled < 10
    log = server.log_text()
    assert "Uncaught exception" not in log and "Task was destroyed" not in log, log[-2000:]
