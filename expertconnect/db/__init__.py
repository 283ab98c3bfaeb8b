"""The connection pool. `Database` has the same fetch/fetchrow/fetchval/execute methods as an
asyncpg Connection, so every query function takes either; it adds a first-come-first-served
acquire with a timeout, and turns an unreachable database into ServiceUnavailable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

import asyncpg

from expertconnect.config import Config
from expertconnect.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", as opposed to a bad statement.
UNAVAILABLE_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


async def _skip_session_reset(conn: asyncpg.Connection) -> None:
    """The pool never uses session state (SET, LISTEN, advisory locks), so the default reset
    query on release is a wasted round trip per query (see docs/performance.md)."""


class Database:
    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float):
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        # asyncpg's own acquire can starve waiters under load; a FIFO semaphore sized to the
        # pool hands connections out in arrival order.
        self._fair = asyncio.Semaphore(pool.get_max_size())

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await self._fair.acquire()
        except TimeoutError:
            raise ServiceUnavailable("Database is busy, try again") from None
        try:
            try:
                conn = await self.pool.acquire(timeout=self.acquire_timeout)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("database unavailable: %r", exc)
                raise ServiceUnavailable("Database unavailable") from None
            try:
                yield conn
            finally:
                await self.pool.release(conn)
        finally:
            self._fair.release()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction that commits when the block exits cleanly."""
        async with self.acquire() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except UNAVAILABLE_ERRORS as exc:
                log.warning("database connection lost mid-transaction: %r", exc)
                raise ServiceUnavailable("Database unavailable") from None

    async def _run(self, method: str, query: str, *args):
        async with self.acquire() as conn:
            try:
                return await getattr(conn, method)(query, *args)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("database unavailable: %r", exc)
                raise ServiceUnavailable("Database unavailable") from None

    async def fetch(self, query: str, *args):
        return await self._run("fetch", query, *args)

    async def fetchrow(self, query: str, *args):
        return await self._run("fetchrow", query, *args)

    async def fetchval(self, query: str, *args):
        return await self._run("fetchval", query, *args)

    async def execute(self, query: str, *args):
        return await self._run("execute", query, *args)

    async def close(self) -> None:
        await self.pool.close()


async def resolve_dsn(config: Config) -> str:
    """The configured DSN, or the private cluster's (created on first use) with our database."""
    if config.database.dsn:
        return config.database.dsn
    from expertconnect.localdb import ensure_local_cluster

    admin_dsn = await asyncio.get_running_loop().run_in_executor(
        None, ensure_local_cluster, config.var_dir)
    await ensure_database(admin_dsn, config.database.name)
    return admin_dsn.replace("@/postgres?", f"@/{config.database.name}?", 1)


async def ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; quote_ident makes the name safe.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


async def create_database(config: Config, dsn: str) -> Database:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=config.database.pool_min,
        max_size=config.database.pool_max,
        command_timeout=config.database.command_timeout,
        reset=_skip_session_reset,
    )
    return Database(pool, config.database.acquire_timeout)
