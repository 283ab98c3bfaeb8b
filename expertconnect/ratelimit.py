"""Token buckets: pure logic with an injectable clock and a bounded table.

A bucket holds up to `capacity` tokens and refills continuously at capacity per `period`
seconds, so a fresh client may burst to the capacity and then gets one request per refill
interval. A bucket that would be full again carries no information and is dropped."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds at which the bucket is full again
    retry_after: int  # seconds until the next token (0 when allowed)

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class TokenBucketLimiter:
    def __init__(
        self,
        capacity: int,
        period: float = 60.0,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.capacity = capacity
        self.rate = capacity / period  # tokens per second
        self.max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        # key -> (tokens, last refill time); insertion order doubles as age for eviction.
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: Hashable, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def hit(self, key: Hashable, cost: float = 1.0) -> Decision:
        now = self._clock()
        tokens = self._level(key, now)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._store(key, tokens, now)
        missing = self.capacity - tokens
        reset_at = math.ceil(self._wall_clock() + missing / self.rate)
        retry_after = 0 if allowed else max(1, math.ceil((cost - tokens) / self.rate))
        return Decision(allowed, self.capacity, int(tokens), reset_at, retry_after)

    def refund(self, key: Hashable, cost: float = 1.0) -> None:
        """Give back `cost` tokens that hit() took for work that then failed or did not count.
        A quota is taken before its work and refunded after, never checked first and charged
        later: concurrent requests that all pass a check before any of them is charged exceed
        it. The bucket never rises above capacity, so refunds cannot add to the quota."""
        now = self._clock()
        tokens = min(self.capacity, self._level(key, now) + cost)
        if tokens >= self.capacity:
            self._buckets.pop(key, None)  # full again: nothing to remember
        else:
            self._store(key, tokens, now)

    def _store(self, key: Hashable, tokens: float, now: float) -> None:
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_entries:
            self._evict(now)

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled; if that is not enough, drop the least recently used
        (erring toward letting requests through) down to 90 % of the cap, so the O(n) sweep
        runs once per max_entries/10 new keys, not on every request."""
        for key in [
            k
            for k, (t, last) in self._buckets.items()
            if t + (now - last) * self.rate >= self.capacity
        ]:
            del self._buckets[key]
        target = int(self.max_entries * 0.9)
        while len(self._buckets) > target:
            del self._buckets[next(iter(self._buckets))]


@dataclass(frozen=True)
class RateLimiters:
    """Every limiter of the process, one per scope (rate_limits in config.yaml); the attribute
    names are the scopes' names (in metrics, for one)."""

    auth: TokenBucketLimiter  # unauthenticated endpoints, per client address
    default: TokenBucketLimiter  # everything else, per user (REST and chat frames alike)
    login_failures: TokenBucketLimiter  # failed logins, per target username
    registration: TokenBucketLimiter  # accounts opened, per client address
    purchase: TokenBucketLimiter  # credit purchases, per user

    def scope_of(self, limiter: TokenBucketLimiter) -> str:
        """The scope `limiter` limits, e.g. "registration" for self.registration."""
        for scope in fields(self):
            if getattr(self, scope.name) is limiter:
                return scope.name
        raise ValueError("not one of these limiters")
