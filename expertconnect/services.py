"""Services: what every handler is handed through initialize(), built once in server.py."""

from __future__ import annotations

from dataclasses import dataclass

from expertconnect.auth import PasswordHasher, TokenIssuer
from expertconnect.config import Config
from expertconnect.db import Database
from expertconnect.ratelimit import TokenBucketLimiter
from expertconnect.realtime.hub import Hub


@dataclass
class Services:
    config: Config
    db: Database
    passwords: PasswordHasher
    tokens: TokenIssuer
    # Rate-limit scope ("auth", "default") -> its buckets.
    limiters: dict[str, TokenBucketLimiter]
    # Sockets by user; actions publish committed events through it.
    hub: Hub
