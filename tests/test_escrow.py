"""Credits that follow the meeting: payments held on open meetings, released on completion (by a
participant or the auto-completion sweep), refunded on cancellation (by either party or by
expiry), prices, fair completion, what the balance and the detail show, and the ledger
invariants under racing settlements and a mixed concurrent workload."""

import asyncio
import concurrent.futures
import itertools
import random
import threading
import time

import asyncpg
import pytest
from helpers import no_frame, recv

from expertconnect.config import ConfigError, load_config
from expertconnect.db.queries import credits as credits_q
from expertconnect.db.queries import meetings as meetings_q

REFUND = "Refund for cancelled meeting"
EARNED = "Credit earned for meeting with requester"
TOO_EARLY = {"error": "The expert can mark a meeting completed only once it has started"}

# Every inserted meeting gets hours of its own: confirmed meetings of one person never overlap.
_slot = itertools.count(1)


def insert_meeting(db, requester, expert, status="confirmed", *, started=False) -> int:
    """A meeting inserted directly, an hour long, at hours of its own in the future; or
    (started=True) one that began ten minutes ago."""
    if started:
        return db.fetchval(
            """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                     scheduled_start, scheduled_end)
               VALUES ('Escrow', $1, $2, 1, $3,
                       now() - interval '10 minutes', now() + interval '50 minutes')
               RETURNING id""",
            requester.id,
            expert.id,
            status,
        )
    return db.fetchval(
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                 scheduled_start, scheduled_end)
           VALUES ('Escrow ' || $4::integer, $1, $2, 1, $3,
                   now() + make_interval(hours => 3 * $4::integer + 2),
                   now() + make_interval(hours => 3 * $4::integer + 3))
           RETURNING id""",
        requester.id,
        expert.id,
        status,
        next(_slot),
    )


def end_in_past(db, meeting_id, hours_ago=1.0):
    """Make the meeting one second long, ended `hours_ago` (the API refuses past times). Each
    call takes seconds of its own, so moved meetings of one person never overlap."""
    db.execute(
        """UPDATE meetings
           SET scheduled_start = now() - make_interval(secs => $2 * 3600 + 2 * $3 + 1),
               scheduled_end = now() - make_interval(secs => $2 * 3600 + 2 * $3)
           WHERE id = $1""",
        meeting_id,
        hours_ago,
        next(_slot),
    )


def balance_of(api, user) -> dict:
    r = api("GET", "/api/credits/balance/", token=user.token)
    assert r.status == 200, r.text
    return r.json


def purchase(api, user, credits):
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=user.token,
        json={
            "payment_method": "paypal",
            "amount": f"{credits}.00",
            "credits_to_purchase": credits,
        },
    )
    assert r.status == 200, r.text


def transfer(api, user, meeting_id, amount):
    return api(
        "POST",
        "/api/credits/transfer/",
        token=user.token,
        json={"meeting_id": meeting_id, "amount": amount},
    )


def set_status(api, user, meeting_id, status):
    return api(
        "PATCH",
        f"/api/meetings/{meeting_id}/update_status/",
        token=user.token,
        json={"status": status},
    )


def detail(api, user, meeting_id) -> dict:
    r = api("GET", f"/api/meetings/{meeting_id}/", token=user.token)
    assert r.status == 200, r.text
    return r.json


def settlements(db, meeting_id) -> list[tuple]:
    """(user_id, type, amount, description) of the meeting's earned and refund rows."""
    return [
        tuple(r)
        for r in db.fetch(
            """SELECT user_id, transaction_type, amount, description FROM credit_transactions
               WHERE related_meeting_id = $1 AND transaction_type IN ('earned', 'refund')
               ORDER BY id""",
            meeting_id,
        )
    ]


def payment_notices(db, meeting_id) -> list[tuple]:
    return [
        tuple(r)
        for r in db.fetch(
            """SELECT user_id, notification_type FROM notifications
               WHERE related_id = $1 AND notification_type IN ('payment_released',
                                                               'payment_refunded')
               ORDER BY user_id""",
            meeting_id,
        )
    ]


def snapshot(db, *users):
    ids = [u.id for u in users]
    return (
        db.fetch("SELECT * FROM credit_accounts WHERE user_id = ANY($1) ORDER BY user_id", ids),
        db.fetch("SELECT * FROM credit_transactions WHERE user_id = ANY($1) ORDER BY id", ids),
        db.fetch(
            "SELECT * FROM meetings WHERE requester_id = ANY($1) OR expert_id = ANY($1) "
            "ORDER BY id",
            ids,
        ),
        db.fetch("SELECT * FROM notifications WHERE user_id = ANY($1) ORDER BY id", ids),
    )


def assert_invariants(db, users) -> None:
    """The ledger explains every balance (initial + purchased + earned + refund - spent); the
    balances plus the credits held on their meetings are all the credits ever minted for them;
    each meeting's payments are held, released or refunded as a whole, and only once."""
    ids = [u.id for u in users]
    rows = db.fetch(
        """SELECT a.user_id, a.balance,
                  COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type IN
                               ('initial', 'purchased', 'earned', 'refund')), 0)
                - COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type = 'spent'), 0)
                      AS ledger
           FROM credit_accounts a LEFT JOIN credit_transactions t ON t.user_id = a.user_id
           WHERE a.user_id = ANY($1)
           GROUP BY a.user_id, a.balance""",
        ids,
    )
    assert len(rows) == len(ids)
    for row in rows:
        assert row["balance"] == row["ledger"] and row["balance"] >= 0, dict(row)
    held = db.fetchval(
        """SELECT COALESCE(sum(paid_credits), 0) FROM meetings
           WHERE requester_id = ANY($1) AND payment_status = 'held'""",
        ids,
    )
    minted = db.fetchval(
        """SELECT COALESCE(sum(amount), 0) FROM credit_transactions
           WHERE user_id = ANY($1) AND transaction_type IN ('initial', 'purchased')""",
        ids,
    )
    assert sum(r["balance"] for r in rows) + held == minted
    for m in db.fetch(
        """SELECT m.id, m.status, m.payment_status, m.paid_credits,
                  COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type = 'spent'), 0) AS spent,
                  COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type = 'earned'), 0)
                      AS earned,
                  COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type = 'refund'), 0)
                      AS refund,
                  count(t.id) FILTER (WHERE t.transaction_type = 'refund') AS refunds
           FROM meetings m LEFT JOIN credit_transactions t ON t.related_meeting_id = m.id
           WHERE m.requester_id = ANY($1)
           GROUP BY m.id""",
        ids,
    ):
        assert m["spent"] == m["paid_credits"], dict(m)
        expected = {
            "none": (0, 0),
            "held": (0, 0),
            "released": (m["paid_credits"], 0),
            "refunded": (0, m["paid_credits"]),
        }[m["payment_status"]]
        assert (m["earned"], m["refund"]) == expected, dict(m)
        assert m["refunds"] <= 1, dict(m)


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# ---------------------------------------------------------------- held, then released


def test_payments_for_an_open_meeting_are_held_then_released_together(api, make_user, db):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 9)
    meeting_id = insert_meeting(db, requester, expert, "confirmed")
    first = transfer(api, requester, meeting_id, 2)
    assert first.status == 200
    assert first.json == {
        "success": True,
        "message": "2 credit(s) transferred successfully",
        "new_balance": 8,
    }
    assert transfer(api, requester, meeting_id, 3).json["new_balance"] == 5

    # The payer's spent rows are written at once; the expert has nothing yet.
    spent = [
        (t["transaction_type"], t["amount"], t["related_meeting_id"])
        for t in api("GET", "/api/credit-transactions/", token=requester.token).json[:2]
    ]
    assert spent == [("spent", 3, meeting_id), ("spent", 2, meeting_id)]
    assert balance_of(api, requester) | {"id": 0, "updated_at": 0} == {
        "id": 0,
        "user": requester.id,
        "balance": 5,
        "updated_at": 0,
        "held": 5,
        "incoming": 0,
    }
    assert (balance_of(api, expert)["balance"], balance_of(api, expert)["incoming"]) == (1, 5)
    assert settlements(db, meeting_id) == []
    for viewer in (requester, expert):
        shown = detail(api, viewer, meeting_id)
        assert (shown["paid_credits"], shown["payment_status"]) == (5, "held")
        assert shown["price_credits"] is None

    assert set_status(api, requester, meeting_id, "completed").status == 200
    # Released together: one earned row of the whole amount, related to the meeting.
    assert settlements(db, meeting_id) == [(expert.id, "earned", 5, EARNED)]
    assert (balance_of(api, expert)["balance"], balance_of(api, expert)["incoming"]) == (6, 0)
    assert (balance_of(api, requester)["balance"], balance_of(api, requester)["held"]) == (5, 0)
    assert detail(api, expert, meeting_id)["payment_status"] == "released"
    assert payment_notices(db, meeting_id) == sorted(
        [(requester.id, "payment_released"), (expert.id, "payment_released")]
    )

    # Paying a completed meeting pays the expert at once.
    assert transfer(api, requester, meeting_id, 1).status == 200
    assert balance_of(api, expert)["balance"] == 7
    assert settlements(db, meeting_id)[-1] == (expert.id, "earned", 1, EARNED)
    shown = detail(api, requester, meeting_id)
    assert (shown["paid_credits"], shown["payment_status"]) == (6, "released")
    assert_invariants(db, [requester, expert])


def test_a_meeting_nobody_paid_for_shows_none(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = insert_meeting(db, requester, expert, "confirmed")
    assert set_status(api, requester, meeting_id, "completed").status == 200
    shown = detail(api, requester, meeting_id)
    assert (shown["paid_credits"], shown["payment_status"]) == (0, "none")
    assert settlements(db, meeting_id) == [] and payment_notices(db, meeting_id) == []


async def test_release_and_refund_are_pushed_live_to_both_parties(ws, api, make_user, db):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 4)
    released = insert_meeting(db, requester, expert, "confirmed")
    refunded = insert_meeting(db, requester, expert, "pending")
    assert transfer(api, requester, released, 2).status == 200
    assert transfer(api, requester, refunded, 3).status == 200
    sockets = {u.id: await ws("/ws/notifications/", u.token) for u in (requester, expert)}

    assert set_status(api, requester, released, "completed").status == 200
    assert (await recv(sockets[expert.id]))["notification"]["notification_type"] == (
        "meeting_completed"
    )
    for user_id, conn in sockets.items():
        note = (await recv(conn))["notification"]
        assert (note["notification_type"], note["related_id"], note["user_id"]) == (
            "payment_released",
            released,
            user_id,
        )
        assert "2 credit(s)" in note["content"]

    assert set_status(api, expert, refunded, "cancelled").status == 200
    assert (await recv(sockets[requester.id]))["notification"]["notification_type"] == (
        "meeting_cancelled"
    )
    for user_id, conn in sockets.items():
        note = (await recv(conn))["notification"]
        assert (note["notification_type"], note["related_id"], note["user_id"]) == (
            "payment_refunded",
            refunded,
            user_id,
        )
        await no_frame(conn)
    # Stored, with the cause: the status change and its notices in one transaction.
    assert len(payment_notices(db, released)) == len(payment_notices(db, refunded)) == 2


# ---------------------------------------------------------------- refunds


@pytest.mark.parametrize("state", ["pending", "confirmed"])
@pytest.mark.parametrize("who", ["requester", "expert"])
def test_cancellation_by_either_party_refunds_what_was_held(api, make_user, db, state, who):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 5)
    meeting_id = insert_meeting(db, requester, expert, state)
    assert transfer(api, requester, meeting_id, 4).status == 200
    assert transfer(api, requester, meeting_id, 1).status == 200
    assert balance_of(api, requester)["balance"] == 1

    actor = requester if who == "requester" else expert
    assert set_status(api, actor, meeting_id, "cancelled").status == 200
    assert settlements(db, meeting_id) == [(requester.id, "refund", 5, REFUND)]
    rows = api("GET", "/api/credit-transactions/", token=requester.token).json
    assert (rows[0]["transaction_type"], rows[0]["related_meeting_id"]) == ("refund", meeting_id)
    assert balance_of(api, requester) | {"id": 0, "updated_at": 0} == {
        "id": 0,
        "user": requester.id,
        "balance": 6,
        "updated_at": 0,
        "held": 0,
        "incoming": 0,
    }
    assert balance_of(api, expert)["balance"] == 1
    assert detail(api, expert, meeting_id)["payment_status"] == "refunded"
    assert payment_notices(db, meeting_id) == sorted(
        [(requester.id, "payment_refunded"), (expert.id, "payment_refunded")]
    )

    # A cancelled meeting stays unpayable, and nothing changes.
    before = snapshot(db, requester, expert)
    r = transfer(api, requester, meeting_id, 1)
    assert (r.status, r.json) == (400, {"error": "Cannot pay for a cancelled meeting"})
    assert snapshot(db, requester, expert) == before
    assert_invariants(db, [requester, expert])


def test_expiry_refunds_the_request_and_tells_both(start_server, api, make_user, db):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 2)
    meeting_id = insert_meeting(db, requester, expert, "pending")
    assert transfer(api, requester, meeting_id, 3).status == 200
    db.execute(
        "UPDATE meetings SET created_at = now() - interval '3 days' WHERE id = $1", meeting_id
    )
    start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.2")
    wait_for(lambda: len(payment_notices(db, meeting_id)) == 2)
    assert db.fetchval("SELECT status FROM meetings WHERE id = $1", meeting_id) == "cancelled"
    assert settlements(db, meeting_id) == [(requester.id, "refund", 3, REFUND)]
    assert balance_of(api, requester)["balance"] == 3
    assert_invariants(db, [requester, expert])


# ---------------------------------------------------------------- fair completion


def test_the_expert_may_complete_only_a_meeting_that_has_started(api, make_user, db):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 2)
    future = insert_meeting(db, requester, expert, "confirmed")
    assert transfer(api, requester, future, 2).status == 200
    before = snapshot(db, requester, expert)
    r = set_status(api, expert, future, "completed")
    assert (r.status, r.json) == (400, TOO_EARLY)
    assert snapshot(db, requester, expert) == before

    started = insert_meeting(db, requester, expert, "confirmed", started=True)
    assert transfer(api, requester, started, 1).status == 200
    r = set_status(api, expert, started, "completed")
    assert r.status == 200 and r.json["status"] == "completed"
    assert settlements(db, started) == [(expert.id, "earned", 1, EARNED)]
    # The requester may complete at any time, before the start too.
    assert set_status(api, requester, future, "completed").status == 200
    assert settlements(db, future) == [(expert.id, "earned", 2, EARNED)]
    assert_invariants(db, [requester, expert])


# ---------------------------------------------------------------- auto-completion


async def test_the_sweep_completes_meetings_past_their_end_and_releases(
    start_server, ws, api, make_user, db
):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 6)
    due, recent, pending = (
        insert_meeting(db, requester, expert, "confirmed"),
        insert_meeting(db, requester, expert, "confirmed"),
        insert_meeting(db, requester, expert, "pending"),
    )
    for meeting_id in (due, recent):
        assert transfer(api, requester, meeting_id, 3).status == 200
    server = start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.2", MEETINGS_AUTO_COMPLETE_HOURS="1")
    expert_notes = await ws("/ws/notifications/", expert.token, url=server.url)
    end_in_past(db, due, hours_ago=2)
    end_in_past(db, recent, hours_ago=0.5)
    await asyncio.to_thread(wait_for, lambda: len(payment_notices(db, due)) == 2)
    assert db.fetchval("SELECT status FROM meetings WHERE id = $1", due) == "completed"
    assert settlements(db, due) == [(expert.id, "earned", 3, EARNED)]
    kinds = {(await recv(expert_notes))["notification"]["notification_type"] for _ in range(2)}
    assert kinds == {"meeting_completed", "payment_released"}
    # Ended half an hour ago: not yet due with auto_complete_hours = 1; pending is not touched.
    assert db.fetchval("SELECT status FROM meetings WHERE id = $1", recent) == "confirmed"
    assert db.fetchval("SELECT status FROM meetings WHERE id = $1", pending) == "pending"
    assert (balance_of(api, expert)["balance"], balance_of(api, expert)["incoming"]) == (4, 3)
    assert_invariants(db, [requester, expert])


def test_auto_complete_hours_zero_completes_at_the_scheduled_end(start_server, api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = insert_meeting(db, requester, expert, "confirmed")
    assert transfer(api, requester, meeting_id, 1).status == 200
    start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.2", MEETINGS_AUTO_COMPLETE_HOURS="0")
    end_in_past(db, meeting_id, hours_ago=0)
    wait_for(lambda: settlements(db, meeting_id) == [(expert.id, "earned", 1, EARNED)])
    assert detail(api, requester, meeting_id)["payment_status"] == "released"
    assert_invariants(db, [requester, expert])


# ---------------------------------------------------------------- prices


def set_price(api, user, value):
    return api("PUT", "/api/users/me/", token=user.token, json={"credits_per_hour": value})


def test_an_expert_sets_a_price_shown_on_the_profile_and_in_search(api, make_user):
    expert = make_user()
    assert api("GET", "/api/users/me/", token=expert.token).json["credits_per_hour"] == 0
    for bad in (-1, 1.5, "10", True, 100_001, [1]):
        r = set_price(api, expert, bad)
        assert r.status == 400 and set(r.json["errors"]) == {"credits_per_hour"}, bad
    r = set_price(api, expert, 30)
    assert r.status == 200 and r.json["credits_per_hour"] == 30
    # Another field alone leaves the price as it is.
    r = api("PUT", "/api/users/me/", token=expert.token, json={"bio": "Rates apply"})
    assert r.json["credits_per_hour"] == 30
    assert api("GET", "/api/users/me/", token=expert.token).json["credits_per_hour"] == 30
    assert api("GET", f"/api/users/{expert.id}/").status == 401
    viewer = make_user()
    profile = api("GET", f"/api/users/{expert.id}/", token=viewer.token).json
    assert profile["credits_per_hour"] == 30
    skill = api(
        "POST",
        "/api/user-skills/",
        token=expert.token,
        json={"category": 1, "skill_name": expert.username, "proficiency_level": "expert"},
    )
    assert skill.status == 201
    found = api("GET", f"/api/experts/?q={expert.username}", token=viewer.token).json
    assert [(c["id"], c["credits_per_hour"]) for c in found] == [(expert.id, 30)]
    assert set_price(api, expert, 0).json["credits_per_hour"] == 0


def _book(api, requester, expert, minutes, day):
    start = f"2099-01-{day:02d}T10:00:00Z"
    hours, mins = divmod(minutes, 60)
    end = f"2099-01-{day:02d}T{10 + hours:02d}:{mins:02d}:00Z"
    r = api(
        "POST",
        "/api/meetings/",
        token=requester.token,
        json={
            "title": "Priced",
            "expert_id": expert.id,
            "category_id": 1,
            "scheduled_start": start,
            "scheduled_end": end,
        },
    )
    assert r.status == 201, r.text
    return r.json


def test_a_booking_carries_the_price_fixed_and_payments_stop_at_it(api, make_user, db):
    requester, expert, free = make_user(), make_user(), make_user()
    purchase(api, requester, 60)
    assert set_price(api, expert, 30).status == 200
    ninety = _book(api, requester, expert, 90, 1)
    assert ninety["price_credits"] == 45
    assert set_price(api, expert, 7).status == 200
    fifty = _book(api, requester, expert, 50, 2)
    assert fifty["price_credits"] == 6  # 7 x 50/60 = 5.83, rounded up
    unpriced = _book(api, requester, free, 60, 3)
    assert unpriced["price_credits"] is None
    # Fixed at booking: the expert's new rate does not change the first meeting.
    assert detail(api, requester, ninety["id"])["price_credits"] == 45
    listed = {
        m["id"]: m["price_credits"]
        for m in api("GET", "/api/meetings/", token=requester.token).json
    }
    assert listed == {ninety["id"]: 45, fifty["id"]: 6, unpriced["id"]: None}

    assert transfer(api, requester, ninety["id"], 40).status == 200
    before = snapshot(db, requester, expert)
    r = transfer(api, requester, ninety["id"], 6)
    assert r.status == 400
    assert r.json == {
        "error": "Payments for this meeting may not exceed its price of 45 credit(s); "
        "40 already paid"
    }
    assert snapshot(db, requester, expert) == before
    assert transfer(api, requester, ninety["id"], 5).status == 200
    assert transfer(api, requester, ninety["id"], 1).status == 400
    assert detail(api, requester, ninety["id"])["paid_credits"] == 45
    # No price: any amount, as before prices existed.
    assert transfer(api, requester, unpriced["id"], 15).status == 200
    assert_invariants(db, [requester, expert, free])


def test_concurrent_payments_never_exceed_the_price(api, make_user, db):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 20)
    assert set_price(api, expert, 5).status == 200
    meeting = _book(api, requester, expert, 60, 4)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(
            pool.map(lambda _: transfer(api, requester, meeting["id"], 1).status, range(10))
        )
    assert sorted(statuses) == [200] * 5 + [400] * 5
    assert detail(api, requester, meeting["id"])["paid_credits"] == 5
    assert_invariants(db, [requester, expert])


# ---------------------------------------------------------------- races and invariants


def test_cancel_complete_and_sweep_racing_settle_each_meeting_exactly_once(
    start_server, api, make_user, db
):
    requester, expert = make_user(), make_user()
    purchase(api, requester, 50)
    rounds = 10
    meetings = [insert_meeting(db, requester, expert, "confirmed") for _ in range(rounds)]
    for meeting_id in meetings:
        assert transfer(api, requester, meeting_id, 2).status == 200
        assert transfer(api, requester, meeting_id, 3).status == 200
    # Two processes sweeping all the time: auto-completion is due as soon as a meeting has ended.
    sweepers = [
        start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.05", MEETINGS_AUTO_COMPLETE_HOURS="0")
        for _ in range(2)
    ]

    rng = random.Random(7)
    for meeting_id in meetings:
        barrier = threading.Barrier(3)
        results = {}
        # The participants come a little late, by up to two sweep intervals, so that each of
        # the three wins some rounds.
        delay = rng.uniform(0, 0.1)

        def run(name, call, barrier=barrier, results=results, delay=delay):
            barrier.wait()
            if name != "make_due":
                time.sleep(delay)
            results[name] = call()

        jobs = {
            "cancel": lambda m=meeting_id: set_status(api, expert, m, "cancelled").status,
            "complete": lambda m=meeting_id: set_status(api, requester, m, "completed").status,
            "make_due": lambda m=meeting_id: end_in_past(db, m, hours_ago=0),
        }
        threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted([results["cancel"], results["complete"]]) in ([200, 400], [400, 400])
        wait_for(
            lambda m=meeting_id: (
                db.fetchval("SELECT status FROM meetings WHERE id = $1", m) != "confirmed"
            )
        )
        status = db.fetchval("SELECT status FROM meetings WHERE id = $1", meeting_id)
        if results["cancel"] == 200:
            assert status == "cancelled"
            assert settlements(db, meeting_id) == [(requester.id, "refund", 5, REFUND)]
            kind = "payment_refunded"
        else:
            assert status == "completed"
            assert settlements(db, meeting_id) == [(expert.id, "earned", 5, EARNED)]
            kind = "payment_released"
        assert payment_notices(db, meeting_id) == sorted([(requester.id, kind), (expert.id, kind)])
    time.sleep(0.3)  # a few more sweeps: nothing settles twice
    for meeting_id in meetings:
        assert len(settlements(db, meeting_id)) == 1
        assert len(payment_notices(db, meeting_id)) == 2
    assert_invariants(db, [requester, expert])
    for sweeper in sweepers:  # no sweep step failed (a deadlock, a constraint) on the way
        assert "sweep step" not in sweeper.log_text()


def test_the_ledger_invariants_hold_after_a_mixed_concurrent_workload(
    start_server, api, make_user, db
):
    users = [make_user() for _ in range(4)]
    for user in users:
        purchase(api, user, 20)
    # Every ordered pair has two confirmed and one pending meeting, each with hours of its own.
    meetings = [
        (a, b, insert_meeting(db, a, b, status))
        for a in users
        for b in users
        if a is not b
        for status in ("confirmed", "confirmed", "pending")
    ]
    sweeper = start_server(MEETINGS_EXPIRY_INTERVAL_SECONDS="0.1", MEETINGS_AUTO_COMPLETE_HOURS="0")
    rng = random.Random(20250612)
    jobs = []
    for _ in range(160):
        requester, expert, meeting_id = rng.choice(meetings)
        roll, buyer, amount = rng.random(), rng.choice(users), rng.randint(1, 4)
        if roll < 0.15:
            jobs.append(lambda u=buyer, n=amount: purchase(api, u, n))
        elif roll < 0.65:
            jobs.append(lambda r=requester, m=meeting_id, n=amount: transfer(api, r, m, n))
        elif roll < 0.75:
            jobs.append(lambda r=requester, m=meeting_id: set_status(api, r, m, "completed"))
        elif roll < 0.9:
            who = rng.choice([requester, expert])
            jobs.append(lambda u=who, m=meeting_id: set_status(api, u, m, "cancelled"))
        else:  # the sweep completes it (confirmed) or expires it (pending)
            jobs.append(lambda m=meeting_id: end_in_past(db, m, hours_ago=0))

    def run(job):
        result = job()
        return getattr(result, "status", 200)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(run, jobs))
    assert set(statuses) <= {200, 400}, statuses
    ids = [m for _, _, m in meetings]
    # Let the sweep finish what was made due; then nothing is left half done.
    wait_for(
        lambda: (
            not db.fetchval(
                """SELECT count(*) FROM meetings WHERE id = ANY($1)
               AND status IN ('pending', 'confirmed') AND scheduled_start < now()""",
                ids,
            )
        )
    )
    states = db.fetch(
        "SELECT payment_status, count(*) FROM meetings WHERE id = ANY($1) GROUP BY 1", ids
    )
    assert {r["payment_status"] for r in states} >= {"released", "refunded"}, states
    assert_invariants(db, users)
    assert "sweep step" not in sweeper.log_text()


# ---------------------------------------------------------------- plans and configuration


def test_the_sweeps_and_the_balance_are_served_by_partial_indexes(database_dsn):
    class Explain:
        def __init__(self, conn):
            self.conn = conn
            self.plans = []

        async def fetch(self, query, *args):
            rows = await self.conn.fetch("EXPLAIN " + query, *args)
            self.plans.append("\n".join(r[0] for r in rows))
            return []

        async def fetchrow(self, query, *args):
            await self.fetch(query, *args)
            return None

    async def go():
        conn = await asyncpg.connect(database_dsn)
        try:
            await conn.execute("SET enable_seqscan = off")
            explain = Explain(conn)
            await meetings_q.update_due_to_completed(explain, after_hours=24, batch=100)
            await meetings_q.update_due_reminders(explain, minutes=15, batch=100)
            await credits_q.get_balance(explain, 1)
            return explain.plans
        finally:
            await conn.close()

    completed, reminders, balance = asyncio.run(go())
    assert "meetings_confirmed_scheduled_end_idx" in completed, completed
    assert "meetings_confirmed_unreminded_start_idx" in reminders, reminders
    assert "meetings_requester_held_idx" in balance and "meetings_expert_held_idx" in balance
    for plan in (completed, reminders, balance):
        assert "Seq Scan on meetings" not in plan, plan


def test_escrow_and_reminder_config_defaults_and_rules():
    meetings = load_config(None, environ={}).meetings
    assert (meetings.auto_complete_hours, meetings.reminder_minutes) == (24, 15)
    for key, value in [
        ("AUTO_COMPLETE_HOURS", "-1"),
        ("AUTO_COMPLETE_HOURS", "8761"),
        ("AUTO_COMPLETE_HOURS", "1.5"),
        ("REMINDER_MINUTES", "-1"),
        ("REMINDER_MINUTES", "10081"),
        ("REMINDER_MINUTES", "soon"),
    ]:
        with pytest.raises(ConfigError, match=f"meetings.{key.lower()}"):
            load_config(None, environ={f"EXPERTCONNECT_MEETINGS_{key}": value})
    zero = load_config(
        None,
        environ={
            "EXPERTCONNECT_MEETINGS_AUTO_COMPLETE_HOURS": "0",
            "EXPERTCONNECT_MEETINGS_REMINDER_MINUTES": "0",
        },
    ).meetings
    assert (zero.auto_complete_hours, zero.reminder_minutes) == (0, 0)
