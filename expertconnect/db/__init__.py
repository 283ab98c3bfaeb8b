"""The connection pool. `Database` has the same fetch/fetchrow/fetchval/execute methods as an
asyncpg Connection, so every query function takes either; it adds a first-come-first-served
acquire with a timeout, and turns an unreachable or stalled database into DatabaseUnavailable.
Only the pool: bootstrapping a private cluster and its database is localdb's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", as opposed to a bad statement. Each was
# seen while PostgreSQL was stopped or restarted under load (tests/test_faults.py).
CONNECTION_LOST_ERRORS = (
    OSError,  # refused, reset, socket file gone
    asyncpg.PostgresConnectionError,  # 08xxx: connection does not exist / failed
    asyncpg.InterfaceError,  # "the underlying connection is closed"
    asyncpg.InternalClientError,  # protocol state broken by a vanished server
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: shutting down, starting up, cancelled
    asyncpg.exceptions.TooManyConnectionsError,
)
# A statement past database.command_timeout (asyncpg cancels it server-side; the connection
# stays usable) or a connection not handed out within database.acquire_timeout.
TIMEOUT_ERRORS = (asyncio.TimeoutError,)
UNAVAILABLE_ERRORS = CONNECTION_LOST_ERRORS + TIMEOUT_ERRORS


# A row as the query functions hand it on: column name -> value, as asyncpg decoded it.
Row = dict[str, Any]


def exactly_one(row: asyncpg.Record | None) -> Row:
    """The row of a statement that always returns one (INSERT ... RETURNING, an aggregate): no
    row there is a broken invariant, never an answer."""
    if row is None:
        raise LookupError("the statement returned no row")
    return dict(row)


class Executor(Protocol):
    """What a query function needs of `conn`: the Database (a pooled connection per call), an
    asyncpg Connection, or a pooled one inside a transaction all have these four."""

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]: ...

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...

    async def execute(self, query: str, *args: object) -> str: ...


class DatabaseUnavailable(Exception):
    """The database cannot answer right now (down, restarting, or too busy); the request may be
    retried. The data layer's own word for it: the one place that renders errors (see
    errors.as_api_error) makes it a 503, jobs log it and try again on their next run."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def unavailable(exc: BaseException) -> DatabaseUnavailable:
    if isinstance(exc, TIMEOUT_ERRORS):
        log.warning("database timed out")
        return DatabaseUnavailable("Database is busy, try again")
    log.warning("database unavailable: %r", exc)
    return DatabaseUnavailable("Database unavailable")


def _discard(conn: PoolConnectionProxy) -> None:
    """Terminate a connection that failed in use, unless asyncpg has already dropped it (the
    pool proxy then refuses every call with InterfaceError)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


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
        # Calls answered as unavailable, for the metrics (read when scraped).
        self.unavailable_total = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection within database.acquire_timeout (queueing and connecting
        together), else DatabaseUnavailable. A connection that fails in use is thrown away, not
        pooled again: after a PostgreSQL restart every pooled connection is dead, and each is
        replaced by a fresh one on its next acquire."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.acquire_timeout
        if self._fair.locked():
            try:
                async with asyncio.timeout_at(deadline):
                    await self._fair.acquire()
            except TimeoutError as exc:
                raise self._unavailable(exc) from None
        else:
            await self._fair.acquire()  # free: returns at once, no timer needed
        try:
            try:
                conn = await self.pool.acquire(timeout=max(deadline - loop.time(), 0.001))
            except UNAVAILABLE_ERRORS as exc:
                raise self._unavailable(exc) from None
            try:
                yield conn
            except UNAVAILABLE_ERRORS as exc:
                if not isinstance(exc, TIMEOUT_ERRORS):
                    _discard(conn)
                raise self._unavailable(exc) from None
            finally:
                await self._release(conn)
        finally:
            self._fair.release()

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        self.unavailable_total += 1
        return unavailable(exc)

    async def _release(self, conn: PoolConnectionProxy) -> None:
        # A failed release has already terminated the connection (asyncpg does so when the
        # reset fails); the request's own answer must not be replaced by that failure.
        try:
            await self.pool.release(conn)
        except (Exception, asyncio.CancelledError) as exc:
            log.warning("dropped a database connection on release: %r", exc)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PoolConnectionProxy]:
        """A connection inside a transaction that commits when the block exits cleanly. A
        commit whose answer is lost raises DatabaseUnavailable; its writes may or may not have
        been applied, but nothing answered 2xx is ever missing."""
        async with self.acquire() as conn:
            async with conn.transaction():
                yield conn

    async def _run(self, method: str, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await getattr(conn, method)(query, *args)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        return await self._run("fetch", query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        return await self._run("fetchrow", query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        return await self._run("fetchval", query, *args)

    async def execute(self, query: str, *args: object) -> str:
        return await self._run("execute", query, *args)

    async def close(self, grace: float = 5.0) -> None:
        """Close the pool gracefully; connections still busy after `grace` seconds are cut."""
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except TimeoutError:
            log.warning("database pool did not close in %.0f s; terminating it", grace)
            self.pool.terminate()


async def create_database(
    dsn: str, *, pool_min: int, pool_max: int, command_timeout: float, acquire_timeout: float
) -> Database:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=pool_min,
        max_size=pool_max,
        command_timeout=command_timeout,
        reset=_skip_session_reset,
    )
    return Database(pool, acquire_timeout)
