"""`expertconnect serve`: the wiring of one server process (database, migrations, services,
periodic sweeps, the HTTP server) and its orderly shutdown. The command line is cli.py."""

from __future__ import annotations

import asyncio
import functools
import gc
import ipaddress
import logging
import signal
from collections.abc import Callable
from urllib.parse import urlsplit

import asyncpg
import tornado.httpserver
import tornado.ioloop

from expertconnect import __version__, migrate
from expertconnect.actions import maintenance
from expertconnect.app import make_app
from expertconnect.auth import PasswordHasher, TokenIssuer, load_or_create_secret
from expertconnect.authcache import AuthCache
from expertconnect.config import Config
from expertconnect.db import Database, create_database
from expertconnect.db.listener import Listener
from expertconnect.inflight import InFlight
from expertconnect.localdb import cluster_dir, resolve_dsn
from expertconnect.ratelimit import RateLimiters, TokenBucketLimiter
from expertconnect.realtime.events import Event
from expertconnect.realtime.hub import Hub
from expertconnect.realtime.relay import PostgresRelay
from expertconnect.services import Services

log = logging.getLogger("expertconnect")

GC_THRESHOLDS = (20_000, 20, 20)

# Shutdown budget in seconds, inside the 10 s a supervisor usually waits before SIGKILL:
# in-flight requests may finish, then idle connections and the pool get what is left.
DRAIN_SECONDS = 7.0
CLOSE_CONNECTIONS_SECONDS = 1.0
CLOSE_POOL_SECONDS = 1.5


# What a first connection raises when the database cannot be reached or used: refused, unknown
# host, wrong password, no such database, a timeout.
DATABASE_UNREACHABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class StartupError(Exception):
    """Start-up cannot go on for a reason the operator can fix; the message says which."""


def redacted_dsn(dsn: str) -> str:
    """The DSN as it may appear in a log: without its password."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def run_migrations(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate.apply_pending(conn)
        log.info("migrations: %s", ", ".join(applied) if applied else "up to date")
    finally:
        await conn.close()


def _banner(config: Config, dsn: str) -> None:
    url = f"http://{config.server.host}:{config.server.port}"
    if config.database.dsn:
        database = redacted_dsn(dsn)
    else:
        database = f"{redacted_dsn(dsn)} (private cluster in {cluster_dir(config.var_dir)})"
    log.info("ExpertConnect %s listening on %s", __version__, url)
    log.info("  config:   %s", config.source or "built-in defaults")
    log.info("  database: %s", database)
    log.info("  realtime: %s backend", config.realtime.backend)
    log.info("  API docs: %s/api/docs/ (OpenAPI document: %s/api/openapi.json)", url, url)


async def open_database(config: Config, dsn: str) -> Database:
    """The pool, sized and timed by the database section of the configuration."""
    return await create_database(
        dsn,
        pool_min=config.database.pool_min,
        pool_max=config.database.pool_max,
        command_timeout=config.database.command_timeout,
        acquire_timeout=config.database.acquire_timeout,
    )


async def build_services(config: Config, dsn: str, db: Database) -> tuple[Services, Listener]:
    """What the actions and handlers are handed, built in one place for `serve` and
    `demo-data`, and the LISTEN connection the auth cache and the relay subscribed to. Nothing
    is started: the listener (and the relay) are the caller's to start."""
    loop = asyncio.get_running_loop()
    passwords = await loop.run_in_executor(
        None, PasswordHasher, config.auth.bcrypt_rounds, config.auth.bcrypt_threads
    )
    limits = config.rate_limits
    # One LISTEN connection for the auth cache and the relay; both subscribe when made.
    listener = Listener(dsn)
    hub: Hub[Event] = Hub(config.realtime.max_sockets_per_user)
    relay = PostgresRelay(listener, db, hub) if config.realtime.backend == "postgres" else None
    services = Services(
        config=config,
        db=db,
        passwords=passwords,
        tokens=TokenIssuer(
            load_or_create_secret(config.auth.jwt_secret, config.var_dir),
            config.auth.token_ttl_seconds,
        ),
        limiters=RateLimiters(
            auth=TokenBucketLimiter(limits.auth_per_minute),
            default=TokenBucketLimiter(limits.default_per_minute),
            login_failures=TokenBucketLimiter(limits.auth_per_minute),
            registration=TokenBucketLimiter(limits.registrations_per_hour, period=3600),
            purchase=TokenBucketLimiter(limits.purchases_per_day, period=86400),
        ),
        hub=hub,
        auth_cache=AuthCache(listener, db, config.auth.user_cache_size),
        relay=relay,
        trusted_proxies=[
            ipaddress.ip_network(p, strict=False) for p in config.server.trusted_proxies
        ],
    )
    return services, listener


async def serve(config: Config) -> None:
    try:
        dsn = await resolve_dsn(config)
        await run_migrations(dsn)
        db = await open_database(config, dsn)
    except DATABASE_UNREACHABLE as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StartupError(f"cannot reach the database: {reason}") from None
    loop = asyncio.get_running_loop()
    services, listener = await build_services(config, dsn, db)
    hub, relay = services.hub, services.relay
    services.metrics.watch(hub, db)
    if relay is not None:
        await relay.start()
    await listener.start()
    # Every process runs the sweeps (expiry, auto-completion, reminders, retention), once now
    # and then every meetings.expiry_interval_seconds; SKIP LOCKED keeps them from handling a
    # meeting twice. PeriodicCallback awaits a coroutine function and never overlaps runs.
    await maintenance.run_sweeps(services)
    sweeps = tornado.ioloop.PeriodicCallback(
        functools.partial(maintenance.run_sweeps, services),
        config.meetings.expiry_interval_seconds * 1000,
    )
    sweeps.start()
    requests = InFlight(make_app(services))
    server = tornado.httpserver.HTTPServer(
        requests,
        max_body_size=config.server.max_body_size,
        # Tornado times a request's headers from the moment the connection waits for them (its
        # accept, or the previous response): one bound for idle keep-alive and slow headers.
        idle_connection_timeout=config.server.idle_timeout,
        body_timeout=config.server.body_timeout,
    )
    try:
        server.listen(config.server.port, address=config.server.host)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}"
        ) from None
    _banner(config, dsn)
    # Start-up objects live as long as the process: keep them out of every collection. A young
    # generation of 20,000 allocations (CPython's default is 700) makes collections, which
    # stall the event loop, rarer: WebSocket delivery p50 ~10 ms vs ~22-35 ms at 500 msg/s.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("shutting down: %d request(s) in flight", requests.active)
    sweeps.stop()
    server.stop()  # accept no new connections
    services.hub.close_all(1001, "Server shutting down")
    if not await requests.drained(DRAIN_SECONDS):
        log.warning(
            "%d request(s) still running after %.0f s; cutting them off",
            requests.active,
            DRAIN_SECONDS,
        )
    # A socket upgraded on a kept-alive connection while draining is closed too.
    services.hub.close_all(1001, "Server shutting down")
    try:
        await asyncio.wait_for(server.close_all_connections(), CLOSE_CONNECTIONS_SECONDS)
    except TimeoutError:
        log.warning("some connections did not close in time")
    await listener.stop()
    if relay is not None:
        await relay.stop()
    await db.close(CLOSE_POOL_SECONDS)
    log.info("stopped")
    if not config.database.dsn:
        # Left running on purpose: the next start (or another process) needs no start-up of
        # PostgreSQL, and `expertconnect db stop` is one command away.
        log.info(
            "the private PostgreSQL cluster in %s is still running; stop it with "
            "`expertconnect db stop` (or `make stop`)",
            cluster_dir(config.var_dir),
        )


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when configured and installed (it measured faster: docs/performance.md), else
    asyncio's own loop."""
    if name == "uvloop":
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            log.warning("server.event_loop is uvloop but uvloop is not installed: using asyncio")
    return asyncio.new_event_loop
