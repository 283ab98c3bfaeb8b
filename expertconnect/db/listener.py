"""The process's one LISTEN connection: dedicated (LISTEN is session state, so never a pooled
connection), shared by every subscriber (the auth cache, the relay), with one reconnect loop.

A subscriber names its channels and callbacks, and may ask to be told:
- on_listening(conn): the channels are LISTENed on a new connection and nothing is delivered
  yet as live; load what the notifications will keep up to date (over `conn`). Nothing
  committed from here on is missed.
- on_restored(): a lost connection is back; notifications sent meanwhile were missed.
While the connection is down, `live` is False: a subscriber must not trust what it heard."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

# Seconds between attempts to re-establish a lost LISTEN connection.
RECONNECT_DELAY = 1.0


@dataclass(frozen=True)
class Subscription:
    on_notify: dict[str, Callable[[str], None]]  # channel -> called with each payload
    on_listening: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    on_restored: Callable[[], None] | None = None


class Listener:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._subscriptions: list[Subscription] = []
        self._conn: asyncpg.Connection | None = None
        self._watcher: asyncio.Task[None] | None = None

    def subscribe(self, subscription: Subscription) -> None:
        """Before start()."""
        self._subscriptions.append(subscription)

    @property
    def live(self) -> bool:
        """Hearing every notification right now? (asyncpg marks the connection closed as soon
        as the socket drops.)"""
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Connect and LISTEN (raising if the database cannot be reached), then keep the
        connection up. Without subscribers there is nothing to listen to, and no connection."""
        if not self._subscriptions:
            return
        await self._connect()
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "expertconnect-listener"}
        )
        try:
            for subscription in self._subscriptions:
                for channel, callback in subscription.on_notify.items():
                    await conn.add_listener(channel, _payload_only(callback))
            for subscription in self._subscriptions:
                if subscription.on_listening is not None:
                    await subscription.on_listening(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_DELAY)
            if self.live:
                continue
            try:
                await self._connect()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot LISTEN yet (%r); retrying", exc)
                continue
            log.warning("LISTEN connection restored")
            for subscription in self._subscriptions:
                if subscription.on_restored is not None:
                    subscription.on_restored()


def _payload_only(callback: Callable[[str], None]) -> Callable[..., None]:
    def on_notification(conn: object, pid: int, channel: str, payload: str) -> None:
        callback(payload)

    return on_notification
