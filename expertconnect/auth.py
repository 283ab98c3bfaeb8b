"""Passwords (bcrypt, always in an executor) and tokens (JWT HS256, algorithm pinned)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import jwt

from expertconnect.ids import INT64_MAX

log = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: uuid.UUID
    expires_at: int


class InvalidToken(Exception):
    pass


class PasswordHasher:
    """bcrypt off the event loop, in a pool of its own. bcrypt releases the GIL, so the loop
    keeps running; the pool is kept smaller than the machine (cores - 1 threads) so that a
    burst of logins queues up instead of taking every core from the requests being served."""

    def __init__(self, rounds: int, threads: int | None = None):
        self.rounds = rounds
        threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, "bcrypt")
        # Checked against when the username is unknown, so that case costs what a wrong
        # password costs and the timing does not reveal which usernames exist.
        self._decoy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed = await asyncio.get_running_loop().run_in_executor(
            self._executor, bcrypt.hashpw, password.encode(), salt
        )
        return hashed.decode()

    async def check(self, password: str, password_hash: str | None) -> bool:
        stored = password_hash.encode() if password_hash else self._decoy_hash
        try:
            matches = await asyncio.get_running_loop().run_in_executor(
                self._executor, bcrypt.checkpw, password.encode(), stored
            )
        except ValueError:
            # Not a bcrypt hash (a row written by hand, a damaged one): no password matches
            # it, and the login is a plain 401, not a 500.
            log.warning("a stored password hash is not a bcrypt hash; refusing the login")
            return False
        return matches and password_hash is not None


class TokenIssuer:
    # Verified tokens remembered, so a client's every request does not pay for the HMAC and
    # claim checks again (~70 us). Revocation is not cached: it is checked per request.
    CACHE_SIZE = 10_000

    def __init__(self, secret: str, ttl_seconds: int):
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._verified: OrderedDict[str, TokenClaims] = OrderedDict()

    def issue(self, user_id: int) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            self._verified[token] = claims
            if len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
        if claims.expires_at <= time.time():
            self._verified.pop(token, None)
            raise InvalidToken("Signature has expired")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": REQUIRED_CLAIMS},
            )
            # Only the exact shapes issue() writes: int() alone would also take " 7", "0_7" or
            # an Arabic-Indic digit as a subject and "7" as an expiry.
            sub, exp = claims["sub"], claims["exp"]
            if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
                raise InvalidToken("subject is not a decimal user id")
            if not isinstance(exp, int) or isinstance(exp, bool):
                raise InvalidToken("exp is not an integer")
            user_id = int(sub)
            jti = uuid.UUID(str(claims["jti"]))
            expires_at = exp
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidToken(str(exc)) from None
        if not 0 < user_id <= INT64_MAX:
            raise InvalidToken("subject out of range")
        return TokenClaims(user_id=user_id, jti=jti, expires_at=expires_at)


def load_or_create_secret(configured: str, var_dir: Path) -> str:
    """The configured secret, else one generated once and kept in var/jwt_secret (0600)."""
    if configured:
        return configured
    path = var_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    log.warning(
        "auth.jwt_secret is not set: generated one into %s; set it in config "
        "to share tokens between hosts",
        path,
    )
    return secret
