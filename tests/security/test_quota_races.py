"""Quotas under concurrent requests, over real HTTP: a burst fired at once never gets past a
quota, because each request takes its token before the work and gives it back only when the
work fails or does not count. Checked first and charged after, 80 simultaneous purchases got
60 past a quota of 50, and 100 wrong passwords for one username all reached the check."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from helpers import PASSWORD, api_request

BURST_TIMEOUT = 60  # seconds; every request of a burst is answered well within it


def _burst(n: int, call) -> list:
    """call(i) for i in 0..n-1 from n threads released at the same instant."""
    start = threading.Barrier(n)

    def one(i: int):
        start.wait(timeout=BURST_TIMEOUT)
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n), timeout=BURST_TIMEOUT))


def _login(url: str, username: str, password: str, address: str):
    return api_request(
        url,
        "POST",
        "/api/users/login/",
        headers={"X-Forwarded-For": address},
        json={"username": username, "password": password},
    )


def test_concurrent_purchases_stop_exactly_at_the_daily_quota(start_server, make_user, db):
    own = start_server(RATE_LIMITS_PURCHASES_PER_DAY="50")
    user = make_user()
    body = {"payment_method": "credit_card", "amount": "1.00", "credits_to_purchase": 1}

    def purchase(_):
        path = "/api/payments/purchase_credits/"
        return api_request(own.url, "POST", path, token=user.token, json=body).status

    statuses = _burst(80, purchase)
    assert Counter(statuses) == {200: 50, 429: 30}
    # The ledger agrees: 50 payments, 50 purchase entries, the balance they add up to.
    assert db.fetchval("SELECT count(*) FROM payments WHERE user_id = $1", user.id) == 50
    purchased = db.fetchval(
        """SELECT count(*) FROM credit_transactions
           WHERE user_id = $1 AND transaction_type = 'purchased'""",
        user.id,
    )
    assert purchased == 50
    balance = api_request(own.url, "GET", "/api/credits/balance/", token=user.token).json
    assert balance["balance"] == 1 + 50  # the initial free credit and the purchases


def test_concurrent_registrations_from_one_address_stop_exactly_at_the_hourly_quota(
    start_server, make_user
):
    own = start_server(RATE_LIMITS_REGISTRATIONS_PER_HOUR="20")
    taken = make_user()

    def register(**overrides):
        tag = uuid.uuid4().hex[:12]
        body = {
            "username": f"burst_{tag}",
            "email": f"burst_{tag}@example.com",
            "password": PASSWORD,
            **overrides,
        }
        return api_request(own.url, "POST", "/api/users/register/", json=body).status

    # Registrations refused inside the work (a taken username) give their token back.
    assert [register(username=taken.username) for _ in range(3)] == [400] * 3
    statuses = _burst(25, lambda _: register())
    assert Counter(statuses) == {201: 20, 429: 5}


def test_concurrent_wrong_passwords_for_one_username_stop_at_its_lockout(start_server, make_user):
    # 10 per minute per address and per username; ten addresses behind a trusted proxy send
    # ten guesses each, so only the per-username lockout can refuse any of them.
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="10", SERVER_TRUSTED_PROXIES="127.0.0.1")
    victim = make_user()
    # Correct logins give back the failure they reserved: fifteen of them leave all ten.
    for i in range(15):
        assert _login(own.url, victim.username, PASSWORD, f"198.51.100.{i}").status == 200

    began = time.monotonic()
    answers = _burst(
        100,
        lambda i: _login(own.url, victim.username, "wrong-password", f"203.0.113.{i % 10}"),
    )
    elapsed = time.monotonic() - began
    statuses = Counter(r.status for r in answers)
    assert set(statuses) == {401, 429}
    # 401 means the password was checked. The bucket refills one token per 6 s meanwhile.
    refilled = int(elapsed / 6)
    assert 10 <= statuses[401] <= 10 + refilled, (statuses, elapsed)
    # The account is now cooling down, even for the right password from a fresh address.
    assert _login(own.url, victim.username, PASSWORD, "198.51.100.200").status == 429
