"""Credit balance, ledger, purchases and meeting payments, including their behaviour under
concurrent requests (the guarded debits and the ledger invariant)."""

import concurrent.futures
import random
from decimal import Decimal

from helpers import recv

LEDGER_KEYS = {
    "id",
    "user",
    "username",
    "transaction_type",
    "amount",
    "description",
    "related_meeting_id",
    "created_at",
}


def make_meeting(db, requester, expert, status="confirmed") -> int:
    """A meeting inserted directly: the meetings API is not what these tests are about."""
    return db.fetchval(
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                 scheduled_start, scheduled_end)
           VALUES ('Consultation', $1, $2, 1, $3,
                   now() + interval '1 day', now() + interval '1 day 1 hour')
           RETURNING id""",
        requester.id,
        expert.id,
        status,
    )


def balance(api, user) -> int:
    r = api("GET", "/api/credits/balance/", token=user.token)
    assert r.status == 200, r.text
    return r.json["balance"]


def ledger(api, user, **params) -> list:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = api("GET", "/api/credit-transactions/" + (f"?{query}" if query else ""), token=user.token)
    assert r.status == 200, r.text
    return r.json


def purchase(api, user, credits, method="credit_card"):
    return api(
        "POST",
        "/api/payments/purchase_credits/",
        token=user.token,
        json={"payment_method": method, "amount": f"{credits}.00", "credits_to_purchase": credits},
    )


def transfer(api, user, meeting_id, amount=1):
    return api(
        "POST",
        "/api/credits/transfer/",
        token=user.token,
        json={"meeting_id": meeting_id, "amount": amount},
    )


def give_credits(api, user, total):
    """Buy credits until the balance is exactly `total` (new users start with 1)."""
    missing = total - balance(api, user)
    if missing > 0:
        assert purchase(api, user, missing).status == 200
    assert balance(api, user) == total


# ---------------------------------------------------------------- balance and ledger


def test_a_new_user_has_one_credit_and_its_ledger_entry(api, make_user):
    user = make_user()
    r = api("GET", "/api/credits/balance/", token=user.token)
    assert r.status == 200
    assert set(r.json) == {"id", "user", "balance", "updated_at", "held", "incoming"}
    assert r.json["user"] == user.id and r.json["balance"] == 1
    assert r.json["held"] == r.json["incoming"] == 0
    assert r.json["updated_at"].endswith("Z")
    rows = ledger(api, user)
    assert len(rows) == 1 and set(rows[0]) == LEDGER_KEYS
    assert [(t["transaction_type"], t["amount"], t["description"]) for t in rows] == [
        ("initial", 1, "Initial free credit")
    ]
    assert rows[0]["user"] == user.id and rows[0]["username"] == user.username
    assert rows[0]["related_meeting_id"] is None


def test_credit_endpoints_require_a_token(api):
    assert api("GET", "/api/credits/balance/").status == 401
    assert api("GET", "/api/credit-transactions/").status == 401
    assert api("POST", "/api/credits/transfer/", json={"meeting_id": 1, "amount": 1}).status == 401
    assert api("POST", "/api/payments/purchase_credits/", json={}).status == 401


def test_ledger_is_newest_first_paged_and_private(api, make_user):
    user, other = make_user(), make_user()
    for n in (2, 3, 4):
        assert purchase(api, user, n).status == 200
    rows = ledger(api, user)
    assert [t["amount"] for t in rows] == [4, 3, 2, 1]
    ids = [t["id"] for t in rows]
    assert ids == sorted(ids, reverse=True)
    assert [t["amount"] for t in ledger(api, user, limit=2)] == [4, 3]
    assert [t["amount"] for t in ledger(api, user, limit=2, before_id=ids[1])] == [2, 1]
    assert ledger(api, user, before_id=ids[-1]) == []
    assert all(t["user"] == other.id for t in ledger(api, other))


def test_ledger_rejects_bad_query_parameters(api, make_user):
    user = make_user()
    for query in (
        "limit=0",
        "limit=201",
        "limit=abc",
        "limit=1.5",
        "before_id=0",
        "before_id=-3",
        "before_id=x",
        "before_id=99999999999999999999",
    ):
        r = api("GET", f"/api/credit-transactions/?{query}", token=user.token)
        assert r.status == 400, query
        assert set(r.json["errors"]) == {query.split("=")[0]}


# ---------------------------------------------------------------- purchases


def test_purchase_records_a_payment_a_ledger_row_and_the_new_balance(api, make_user, db):
    user = make_user()
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=user.token,
        json={"payment_method": "credit_card", "amount": "10.00", "credits_to_purchase": 10},
    )
    assert r.status == 200, r.text
    assert set(r.json) == {"success", "payment", "transaction", "new_balance"}
    assert r.json["success"] is True and r.json["new_balance"] == 11
    payment = r.json["payment"]
    assert set(payment) == {
        "id",
        "user",
        "payment_method",
        "amount",
        "currency",
        "status",
        "credits_purchased",
        "transaction_id",
        "created_at",
    }
    assert payment["user"] == user.id and payment["payment_method"] == "credit_card"
    assert payment["amount"] == "10.00" and payment["currency"] == "USD"
    assert payment["status"] == "completed" and payment["credits_purchased"] == 10
    assert payment["transaction_id"] == f"sim_{payment['id']}_10_10"
    txn = r.json["transaction"]
    assert set(txn) == LEDGER_KEYS
    assert (
        txn["user"],
        txn["username"],
        txn["transaction_type"],
        txn["amount"],
        txn["description"],
        txn["related_meeting_id"],
    ) == (user.id, user.username, "purchased", 10, "Purchased 10 credits for $10.00", None)
    assert balance(api, user) == 11
    assert ledger(api, user)[0] == txn
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user.id) == 1


def test_purchase_accepts_the_amount_as_a_number(api, make_user):
    user = make_user()
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=user.token,
        json={"payment_method": "paypal", "amount": 3, "credits_to_purchase": 3},
    )
    assert r.status == 200, r.text
    assert r.json["payment"]["amount"] == "3.00" and r.json["new_balance"] == 4


def test_purchase_with_the_wrong_amount_is_refused_and_changes_nothing(api, make_user, db):
    user = make_user()
    r = api(
        "POST",
        "/api/payments/purchase_credits/",
        token=user.token,
        json={"payment_method": "credit_card", "amount": "9.99", "credits_to_purchase": 10},
    )
    assert r.status == 400
    assert set(r.json["errors"]) == {"amount"}
    assert "10.00" in r.json["errors"]["amount"][0]
    assert balance(api, user) == 1 and len(ledger(api, user)) == 1
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user.id) == 0


def test_purchase_with_an_unknown_payment_method_is_refused(api, make_user):
    user = make_user()
    for method in ("bitcoin", "", "CREDIT_CARD", 1, None):
        r = api(
            "POST",
            "/api/payments/purchase_credits/",
            token=user.token,
            json={"payment_method": method, "amount": "1.00", "credits_to_purchase": 1},
        )
        assert r.status == 400, method
        assert set(r.json["errors"]) == {"payment_method"}
    assert balance(api, user) == 1


def test_purchase_rejects_bad_types_and_ranges(api, make_user):
    user = make_user()
    for credits in (True, 1.5, "1", 0, -1, 10_001, None, [1]):
        r = api(
            "POST",
            "/api/payments/purchase_credits/",
            token=user.token,
            json={
                "payment_method": "credit_card",
                "amount": "1.00",
                "credits_to_purchase": credits,
            },
        )
        assert r.status == 400, credits
        assert "credits_to_purchase" in r.json["errors"], credits
    for amount in (True, "abc", "1.001", -1, 0, "NaN", "Infinity", [1]):
        r = api(
            "POST",
            "/api/payments/purchase_credits/",
            token=user.token,
            json={"payment_method": "credit_card", "amount": amount, "credits_to_purchase": 1},
        )
        assert r.status == 400, amount
        assert set(r.json["errors"]) == {"amount"}, amount
    r = api("POST", "/api/payments/purchase_credits/", token=user.token, json={})
    assert r.status == 400
    assert set(r.json["errors"]) == {"payment_method", "amount", "credits_to_purchase"}
    assert balance(api, user) == 1


# ---------------------------------------------------------------- transfers


def test_paying_for_a_completed_meeting_moves_credits_and_writes_both_ledger_rows(
    api, make_user, db
):
    requester, expert = make_user(), make_user()
    give_credits(api, requester, 5)
    # Completed: nothing left to wait for, so the expert is paid at once (tests/test_escrow.py
    # has payments held for open meetings).
    meeting_id = make_meeting(db, requester, expert, status="completed")
    r = transfer(api, requester, meeting_id, 2)
    assert r.status == 200, r.text
    assert r.json == {
        "success": True,
        "message": "2 credit(s) transferred successfully",
        "new_balance": 3,
    }
    assert balance(api, requester) == 3 and balance(api, expert) == 3
    spent, earned = ledger(api, requester)[0], ledger(api, expert)[0]
    assert (
        spent["transaction_type"],
        spent["amount"],
        spent["description"],
        spent["related_meeting_id"],
        spent["user"],
        spent["username"],
    ) == (
        "spent",
        2,
        "Credit spent for meeting with expert",
        meeting_id,
        requester.id,
        requester.username,
    )
    assert (
        earned["transaction_type"],
        earned["amount"],
        earned["description"],
        earned["related_meeting_id"],
        earned["user"],
        earned["username"],
    ) == (
        "earned",
        2,
        "Credit earned for meeting with requester",
        meeting_id,
        expert.id,
        expert.username,
    )


def test_transfer_for_a_pending_meeting_is_allowed_and_held(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert, status="pending")
    r = transfer(api, requester, meeting_id, 1)
    assert r.status == 200 and r.json["new_balance"] == 0
    assert balance(api, expert) == 1
    assert api("GET", "/api/credits/balance/", token=expert.token).json["incoming"] == 1


def _snapshot(db, *users):
    """Every balance and ledger row of `users`, to show that a refusal changed nothing."""
    ids = [u.id for u in users]
    return (
        db.fetch(
            "SELECT user_id, balance, updated_at FROM credit_accounts "
            "WHERE user_id = ANY($1) ORDER BY user_id",
            ids,
        ),
        db.fetch("SELECT * FROM credit_transactions WHERE user_id = ANY($1) ORDER BY id", ids),
    )


def test_a_stranger_gets_404_for_someone_elses_meeting_and_nothing_changes(api, make_user, db):
    requester, expert, stranger = make_user(), make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert)
    before = _snapshot(db, requester, expert, stranger)
    r = transfer(api, stranger, meeting_id, 1)
    missing = transfer(api, stranger, meeting_id + 10_000_000, 1)
    assert r.status == missing.status == 404
    assert r.json == missing.json == {"error": "Meeting not found"}
    assert _snapshot(db, requester, expert, stranger) == before


def test_the_expert_cannot_pay_for_the_meeting(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert)
    before = _snapshot(db, requester, expert)
    r = transfer(api, expert, meeting_id, 1)
    assert r.status == 400
    assert r.json == {"error": "Only the requester of a meeting can pay for it"}
    assert _snapshot(db, requester, expert) == before


def test_a_cancelled_meeting_cannot_be_paid_for(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert, status="cancelled")
    before = _snapshot(db, requester, expert)
    r = transfer(api, requester, meeting_id, 1)
    assert r.status == 400 and "error" in r.json
    assert _snapshot(db, requester, expert) == before


def test_an_overdraft_is_refused_and_changes_nothing(api, make_user, db):
    requester, expert = make_user(), make_user()
    give_credits(api, requester, 3)
    meeting_id = make_meeting(db, requester, expert)
    before = _snapshot(db, requester, expert)
    r = transfer(api, requester, meeting_id, 4)
    assert r.status == 400 and r.json == {"error": "Insufficient credits"}
    assert _snapshot(db, requester, expert) == before
    assert transfer(api, requester, meeting_id, 3).status == 200
    assert balance(api, requester) == 0 and balance(api, expert) == 1
    assert api("GET", "/api/credits/balance/", token=requester.token).json["held"] == 3


def test_transfer_rejects_bad_types_and_ranges(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert)
    for amount in (True, 1.5, "1", 0, -1, 1_000_001, None):
        r = transfer(api, requester, meeting_id, amount)
        assert r.status == 400, amount
        assert set(r.json["errors"]) == {"amount"}, amount
    for bad_id in (True, 1.5, str(meeting_id), 0, -1, 2**63, None):
        r = transfer(api, requester, bad_id, 1)
        assert r.status == 400, bad_id
        assert set(r.json["errors"]) == {"meeting_id"}, bad_id
    assert balance(api, requester) == 1 and balance(api, expert) == 1


# ---------------------------------------------------------------- concurrency


def test_concurrent_transfers_never_overdraw(api, make_user, db):
    requester, expert = make_user(), make_user()
    give_credits(api, requester, 5)
    meeting_id = make_meeting(db, requester, expert)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(lambda _: transfer(api, requester, meeting_id, 1).status, range(12))
        )
    assert sorted(statuses) == [200] * 5 + [400] * 7
    # A confirmed meeting: the five credits are held on it, not yet the expert's.
    assert balance(api, requester) == 0 and balance(api, expert) == 1
    assert (
        db.fetchval(
            "SELECT count(*) FROM credit_transactions "
            "WHERE user_id = $1 AND transaction_type = 'spent'",
            requester.id,
        )
        == 5
    )
    assert db.fetchval("SELECT paid_credits FROM meetings WHERE id = $1", meeting_id) == 5
    assert api("GET", "/api/credits/balance/", token=expert.token).json["incoming"] == 5


def test_the_ledger_explains_every_balance_after_a_mixed_concurrent_workload(api, make_user, db):
    users = [make_user() for _ in range(4)]
    for user in users:
        give_credits(api, user, 3)
    # A meeting in each direction between every pair: transfers cross in both directions.
    # Pending (payable too): these all share one hour, and confirmed meetings of one person
    # may not overlap (0004_booking_rules.sql).
    meetings = [
        (a, make_meeting(db, a, b, status="pending")) for a in users for b in users if a is not b
    ]
    rng = random.Random(20250320)
    jobs = []
    for _ in range(120):
        if rng.random() < 0.25:
            jobs.append(("purchase", rng.choice(users), rng.randint(1, 4)))
        else:
            payer, meeting_id = rng.choice(meetings)
            jobs.append(("transfer", payer, (meeting_id, rng.randint(1, 3))))

    def run(job):
        kind, user, arg = job
        if kind == "purchase":
            return purchase(
                api,
                user,
                arg,
                method=rng.choice(["credit_card", "debit_card", "paypal", "bank_transfer"]),
            ).status
        return transfer(api, user, *arg).status

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(run, jobs))
    assert set(statuses) <= {200, 400}
    assert statuses.count(200) > len(jobs) // 2  # the workload really moved credits

    ids = [u.id for u in users]
    rows = db.fetch(
        """SELECT a.user_id, a.balance,
                  COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type <> 'spent'), 0)
                - COALESCE(sum(t.amount) FILTER (WHERE t.transaction_type = 'spent'), 0) AS ledger
           FROM credit_accounts a LEFT JOIN credit_transactions t ON t.user_id = a.user_id
           WHERE a.user_id = ANY($1)
           GROUP BY a.user_id, a.balance""",
        ids,
    )
    assert len(rows) == len(users)
    for row in rows:
        assert row["balance"] == row["ledger"], dict(row)
        assert row["balance"] >= 0
    minted = db.fetchval(
        """SELECT sum(amount) FROM credit_transactions
           WHERE user_id = ANY($1) AND transaction_type IN ('initial', 'purchased')""",
        ids,
    )
    # The meetings are pending: what was paid is held on them, not in any balance.
    held = db.fetchval(
        "SELECT COALESCE(sum(paid_credits), 0) FROM meetings "
        "WHERE requester_id = ANY($1) AND payment_status = 'held'",
        ids,
    )
    assert held > 0
    assert sum(r["balance"] for r in rows) + held == minted
    paid = db.fetchval(
        "SELECT COALESCE(sum(credits_purchased), 0) FROM payments WHERE user_id = ANY($1)", ids
    )
    assert minted == paid + len(users)  # each user's 1 initial credit
    assert db.fetchval(
        "SELECT COALESCE(sum(amount), 0) FROM payments WHERE user_id = ANY($1)", ids
    ) == Decimal(paid)


def test_the_expert_is_notified_of_a_payment(api, make_user, db):
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert)
    r = api(
        "POST",
        "/api/credits/transfer/",
        token=requester.token,
        json={"meeting_id": meeting_id, "amount": 1},
    )
    assert r.status == 200
    notes = api("GET", "/api/notifications/", token=expert.token).json
    assert [(n["notification_type"], n["related_id"]) for n in notes] == [
        ("credits_received", meeting_id)
    ]
    assert api("GET", "/api/notifications/", token=requester.token).json == []


async def test_a_held_payment_is_pushed_to_the_expert_as_the_log_replays_it(ws, api, make_user, db):
    """The held payment logs its notification.receive in its own statement, the payload
    spelled in SQL; the live frame is spelled by realtime/events.py: both must agree."""
    requester, expert = make_user(), make_user()
    meeting_id = make_meeting(db, requester, expert, status="pending")
    db.execute("UPDATE meetings SET title = $2 WHERE id = $1", meeting_id, "Tea & 'quotes' 100%")
    stream = await ws("/ws/", expert.token)
    assert transfer(api, requester, meeting_id, 1).status == 200
    live = await recv(stream)
    assert live["type"] == "notification.receive"
    assert live["notification"] == api("GET", "/api/notifications/", token=expert.token).json[0]
    assert live["notification"]["title"] == "Credits Held"
    assert live["notification"]["content"] == (
        "1 credit(s) for the meeting 'Tea & 'quotes' 100%' are held for you until it is completed."
    )
    replay = await ws(f"/ws/?last_event_id={live['event_id'] - 1}", expert.token)
    assert await recv(replay) == live
