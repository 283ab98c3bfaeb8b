"""Services: what every handler is handed through initialize(), built once in serve.py."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

from expertconnect.auth import PasswordHasher, TokenIssuer
from expertconnect.authcache import AuthCache
from expertconnect.config import Config
from expertconnect.db import Database
from expertconnect.metrics import Metrics
from expertconnect.ratelimit import RateLimiters
from expertconnect.realtime.events import Event
from expertconnect.realtime.hub import Hub


class Relay(Protocol):
    """What actions need of realtime/relay.py's PostgresRelay (which they do not import): the
    id other processes know this one's notifications by; and what serve.py, which finds it
    here, needs to start and stop it."""

    origin: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Frozen: complete when constructed, never assigned to afterwards.
@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    passwords: PasswordHasher
    tokens: TokenIssuer
    limiters: RateLimiters
    # Sockets by user; actions publish committed events through it.
    hub: Hub[Event]
    # Users and revocations in memory, for authentication without a query.
    auth_cache: AuthCache
    # Set with realtime.backend: postgres, to reach sockets held by other processes.
    relay: Relay | None = None
    # server.trusted_proxies, parsed once.
    trusted_proxies: list[IPNetwork] = field(default_factory=list)
    # GET /metrics: this process's series, in a registry of their own.
    metrics: Metrics = field(default_factory=Metrics)
