"""ExpertConnect server: wiring only.

python server.py [--config PATH]                   serve (applies pending migrations first)
python server.py migrate [--config PATH] [--status]  apply migrations, or list them, and exit
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import ipaddress
import logging
import signal
import sys

import asyncpg
import tornado.httpserver
import tornado.ioloop

from expertconnect import migrate
from expertconnect.actions import maintenance, meetings
from expertconnect.app import make_app
from expertconnect.auth import PasswordHasher, TokenIssuer, load_or_create_secret
from expertconnect.authcache import AuthCache
from expertconnect.config import ConfigError, load_config
from expertconnect.db import create_database
from expertconnect.db.listener import Listener
from expertconnect.inflight import InFlight
from expertconnect.localdb import LocalDatabaseError, resolve_dsn
from expertconnect.ratelimit import RateLimiters, TokenBucketLimiter
from expertconnect.realtime.hub import Hub
from expertconnect.realtime.relay import PostgresRelay
from expertconnect.services import Services

log = logging.getLogger("expertconnect")

GC_THRESHOLDS = (20_000, 20, 20)

# Retention purges are cheap and not urgent: hourly, and once at start-up.
HOUSEKEEPING_INTERVAL_MS = 3600 * 1000
# Shutdown budget in seconds, inside the 10 s a supervisor usually waits before SIGKILL:
# in-flight requests may finish, then idle connections and the pool get what is left.
DRAIN_SECONDS = 7.0
CLOSE_CONNECTIONS_SECONDS = 1.0
CLOSE_POOL_SECONDS = 1.5


async def run_migrations(dsn: str, show_status: bool = False) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if show_status:
            for name, state in await migrate.status(conn):
                print(f"{state:8} {name}")
            return
        applied = await migrate.apply_pending(conn)
        log.info("migrations: %s", ", ".join(applied) if applied else "up to date")
    finally:
        await conn.close()


async def serve(config) -> None:
    dsn = await resolve_dsn(config)
    await run_migrations(dsn)
    db = await create_database(
        dsn,
        pool_min=config.database.pool_min,
        pool_max=config.database.pool_max,
        command_timeout=config.database.command_timeout,
        acquire_timeout=config.database.acquire_timeout,
    )
    loop = asyncio.get_running_loop()
    passwords = await loop.run_in_executor(
        None, PasswordHasher, config.auth.bcrypt_rounds, config.auth.bcrypt_threads
    )
    limits = config.rate_limits
    listener = Listener(dsn)
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
        hub=Hub(config.realtime.max_sockets_per_user),
        auth_cache=AuthCache(listener, db, config.auth.user_cache_size),
        trusted_proxies=[
            ipaddress.ip_network(p, strict=False) for p in config.server.trusted_proxies
        ],
    )
    if config.realtime.backend == "postgres":
        services.relay = PostgresRelay(listener, db, services.hub)
        await services.relay.start()
    await listener.start()
    await maintenance.purge_expired(services)
    # PeriodicCallback awaits what a coroutine function returns (Tornado 6.2+) and never starts
    # a run before the previous one has finished.
    housekeeping = tornado.ioloop.PeriodicCallback(
        functools.partial(maintenance.purge_expired, services), HOUSEKEEPING_INTERVAL_MS
    )
    housekeeping.start()
    # Every process runs expiry; SKIP LOCKED keeps them from cancelling a request twice.
    expiry = tornado.ioloop.PeriodicCallback(
        functools.partial(meetings.expire_pending_requests, services),
        config.meetings.expiry_interval_seconds * 1000,
    )
    expiry.start()
    requests = InFlight(make_app(services))
    server = tornado.httpserver.HTTPServer(requests, max_body_size=config.server.max_body_size)
    server.listen(config.server.port, address=config.server.host)
    log.info("ExpertConnect listening on http://%s:%d", config.server.host, config.server.port)
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
    housekeeping.stop()
    expiry.stop()
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
    if services.relay is not None:
        await services.relay.stop()
    await db.close(CLOSE_POOL_SECONDS)
    log.info("stopped")


def event_loop_factory(name: str):
    """uvloop when configured and installed (it measured faster: docs/performance.md), else
    asyncio's own loop."""
    if name == "uvloop":
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            log.warning("server.event_loop is uvloop but uvloop is not installed: using asyncio")
    return asyncio.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ExpertConnect API server")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--config", default="config.yaml", help="path to config.yaml")
    parser.add_argument("--status", action="store_true", help="with migrate: list, apply nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        if args.command == "migrate":

            async def migrate_only():
                await run_migrations(await resolve_dsn(config), show_status=args.status)

            asyncio.run(migrate_only())
        else:
            with asyncio.Runner(
                loop_factory=event_loop_factory(config.server.event_loop)
            ) as runner:
                runner.run(serve(config))
    except (ConfigError, LocalDatabaseError, migrate.MigrationError) as exc:
        log.error("%s", exc)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
