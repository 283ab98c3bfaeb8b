"""`python server.py demo-data` on a brand-new database of its own: migrations applied, a
marketplace with every meeting status and payment state created through the actions (so the
ledger invariant holds), a demo account that logs in to a real server and sees the experts,
and a second run refused without --force."""

from __future__ import annotations

from helpers import Db, api_request
from test_cli import SECRET, assert_one_line_error, cli

from expertconnect.demo import DEMO_PASSWORD


def test_demo_data_fills_an_empty_database_and_refuses_a_second_time(
    scratch_database, start_server
):
    env = {
        "EXPERTCONNECT_DATABASE_DSN": scratch_database,
        "EXPERTCONNECT_AUTH_JWT_SECRET": SECRET,
        "EXPERTCONNECT_AUTH_BCRYPT_ROUNDS": "4",
    }
    done = cli("demo-data", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert DEMO_PASSWORD in done.stdout
    db = Db(scratch_database)

    experts = db.fetchval(
        """SELECT count(*) FROM users u
           WHERE EXISTS (SELECT 1 FROM user_skills s WHERE s.user_id = u.id)
             AND EXISTS (SELECT 1 FROM user_availability a WHERE a.user_id = u.id)"""
    )
    assert experts >= 30
    assert db.fetchval("SELECT count(DISTINCT timezone) FROM users") >= 10
    assert db.fetchval("SELECT count(DISTINCT category_id) FROM user_skills") >= 6
    statuses = {r["status"] for r in db.fetch("SELECT DISTINCT status FROM meetings")}
    assert statuses == {"pending", "confirmed", "completed", "cancelled"}
    payments = {r["payment_status"] for r in db.fetch("SELECT payment_status FROM meetings")}
    assert {"held", "released", "refunded"} <= payments, payments
    assert db.fetchval("SELECT count(*) FROM reviews") > 0
    assert db.fetchval("SELECT count(*) FROM messages") > 0
    assert db.fetchval("SELECT count(*) FROM messages WHERE NOT is_read") > 0
    # Every balance is its ledger: initial + purchased + earned + refund - spent.
    mismatched = db.fetch(
        """SELECT a.user_id, a.balance, coalesce(sum(CASE WHEN t.transaction_type = 'spent'
                                                          THEN -t.amount ELSE t.amount END), 0)
                                        AS ledger
           FROM credit_accounts a LEFT JOIN credit_transactions t ON t.user_id = a.user_id
           GROUP BY a.user_id, a.balance
           HAVING a.balance <> coalesce(sum(CASE WHEN t.transaction_type = 'spent'
                                                 THEN -t.amount ELSE t.amount END), 0)"""
    )
    assert mismatched == []
    assert db.fetchval("SELECT count(*) FROM credit_accounts") == db.fetchval(
        "SELECT count(*) FROM users"
    )

    # A demo expert logs in through a real server and finds the experts listed.
    username = db.fetchval(
        """SELECT u.username FROM users u
           WHERE EXISTS (SELECT 1 FROM user_skills s WHERE s.user_id = u.id)
           ORDER BY u.id LIMIT 1"""
    )
    server = start_server(DATABASE_DSN=scratch_database)
    login = api_request(
        server.url,
        "POST",
        "/api/users/login/",
        json={"username": username, "password": DEMO_PASSWORD},
    )
    assert login.status == 200, login.text
    listed = api_request(server.url, "GET", "/api/experts/?limit=200", token=login.json["token"])
    assert listed.status == 200, listed.text
    assert len(listed.json) == experts
    assert username in {e["username"] for e in listed.json}
    assert any(e["review_count"] > 0 for e in listed.json)

    # Not twice: the second run changes nothing and says why in one line.
    users = db.fetchval("SELECT count(*) FROM users")
    again = cli("demo-data", env=env, timeout=120)
    assert_one_line_error(again, "already has", "user", "--force")
    assert db.fetchval("SELECT count(*) FROM users") == users
