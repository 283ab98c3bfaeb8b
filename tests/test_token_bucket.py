"""The token bucket's arithmetic, the process's limiters by scope, and the client address they
are keyed by (pure logic)."""

import ipaddress

import pytest

from expertconnect.handlers.base import client_address
from expertconnect.ratelimit import RateLimiters, TokenBucketLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _limiter(capacity=10, **kwargs):
    clock = Clock()
    return TokenBucketLimiter(capacity, 60.0, clock=clock, wall_clock=clock, **kwargs), clock


def test_a_fresh_client_bursts_to_capacity_then_waits_one_refill_interval():
    limiter, clock = _limiter(10)
    decisions = [limiter.hit("a") for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions[:3]] == [9, 8, 7]
    refused = decisions[-1]
    assert refused.retry_after == 6  # 60 s / 10 tokens
    assert refused.headers()["Retry-After"] == "6"
    clock.now += 5.9
    assert not limiter.hit("a").allowed
    clock.now += 0.2
    assert limiter.hit("a").allowed


def test_reset_is_when_the_bucket_is_full_again():
    limiter, clock = _limiter(10)
    for _ in range(4):
        decision = limiter.hit("a")
    assert decision.reset_at == int(clock.now + 4 * 6)


def test_buckets_are_per_key():
    limiter, _ = _limiter(1)
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    assert limiter.hit("b").allowed


def test_a_refunded_token_is_usable_at_once():
    limiter, _ = _limiter(2)
    assert limiter.hit("a").allowed and limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    limiter.refund("a")
    decision = limiter.hit("a")
    assert decision.allowed and decision.remaining == 0
    assert not limiter.hit("a").allowed


def test_a_refund_never_raises_a_bucket_above_capacity():
    limiter, clock = _limiter(3)
    limiter.refund("fresh")  # nothing was taken: still 3, not 4
    limiter.hit("a")
    clock.now += 60  # refilled meanwhile
    limiter.refund("a")
    limiter.refund("a")
    assert [limiter.hit(k).allowed for k in ["fresh"] * 4] == [True, True, True, False]
    assert [limiter.hit(k).allowed for k in ["a"] * 4] == [True, True, True, False]
    assert limiter.hit("b").remaining == 2


def test_a_refund_adds_to_what_refilled_meanwhile():
    limiter, clock = _limiter(10)
    for _ in range(10):
        limiter.hit("a")
    clock.now += 6  # one token back by refill
    limiter.refund("a")  # and one by refund
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]


def test_take_then_refund_never_lets_concurrent_work_exceed_the_quota():
    """The order the handlers use: every attempt takes a token first; the ones whose work
    fails give it back. However they interleave, successes never exceed the capacity."""
    limiter, _ = _limiter(5)
    taken = [limiter.hit("u").allowed for _ in range(8)]  # all in flight at once
    assert taken.count(True) == 5
    limiter.refund("u")  # one of the five failed: one more may try
    assert limiter.hit("u").allowed
    assert not limiter.hit("u").allowed


def test_memory_stays_bounded_under_many_distinct_addresses():
    limiter, clock = _limiter(10, max_entries=100_000)
    for i in range(250_000):
        limiter.hit(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        clock.now += 0.0001
    assert len(limiter) <= 100_000


def test_full_buckets_are_dropped_first():
    limiter, clock = _limiter(10, max_entries=10)
    for i in range(10):
        limiter.hit(i)
    clock.now += 120  # every bucket has refilled
    limiter.hit("busy")
    limiter.hit("busy")
    limiter.hit("new")
    assert len(limiter) == 2


TRUSTED = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


def test_each_limiter_is_named_by_its_scope_even_when_two_have_the_same_limits():
    # auth and login_failures are both rate_limits.auth_per_minute: the 429 metric's scope
    # label must still say which one refused.
    limiters = RateLimiters(
        auth=TokenBucketLimiter(10),
        default=TokenBucketLimiter(60),
        login_failures=TokenBucketLimiter(10),
        registration=TokenBucketLimiter(5, period=3600),
        purchase=TokenBucketLimiter(20, period=86400),
    )
    for scope in ("auth", "default", "login_failures", "registration", "purchase"):
        assert limiters.scope_of(getattr(limiters, scope)) == scope
    with pytest.raises(ValueError):
        limiters.scope_of(TokenBucketLimiter(10))


def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    assert client_address("203.0.113.9", ["1.2.3.4"], TRUSTED) == "203.0.113.9"


def test_a_trusted_proxy_gives_the_right_most_untrusted_hop():
    hops = ["6.6.6.6, 198.51.100.7, 10.1.2.3"]  # the client could forge the left part
    assert client_address("127.0.0.1", hops, TRUSTED) == "198.51.100.7"


def test_garbage_forwarded_for_falls_back_to_the_peer():
    assert client_address("127.0.0.1", ["not-an-ip"], TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", [], TRUSTED) == "127.0.0.1"
