"""Token verification and its cache (pure logic, real pyjwt)."""

import time

import pytest

from expertconnect.auth import InvalidToken, TokenIssuer

SECRET = "a-test-secret-that-is-32-bytes-long"


def test_a_cached_token_still_expires():
    issuer = TokenIssuer(SECRET, ttl_seconds=1)
    token = issuer.issue(7)
    assert issuer.decode(token).user_id == 7  # verified, then remembered
    assert issuer.decode(token).user_id == 7  # from the cache
    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        issuer.decode(token)


def test_the_cache_never_accepts_what_verification_refused():
    issuer = TokenIssuer(SECRET, ttl_seconds=60)
    forged = TokenIssuer("another-secret-of-at-least-32-bytes", ttl_seconds=60).issue(7)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            issuer.decode(forged)


def test_the_cache_is_bounded():
    issuer = TokenIssuer(SECRET, ttl_seconds=60)
    tokens = [issuer.issue(i + 1) for i in range(TokenIssuer.CACHE_SIZE + 50)]
    for token in tokens:
        issuer.decode(token)
    assert len(issuer._verified) == TokenIssuer.CACHE_SIZE
    assert issuer.decode(tokens[0]).user_id == 1  # evicted, verified again
