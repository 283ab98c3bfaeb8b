"""Counting in-flight HTTP requests, so that shutdown can let them finish before it closes
connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httputil


class InFlight(tornado.httputil.HTTPServerConnectionDelegate):
    """The application, wrapped to count HTTP requests from their headers to the end of their
    response, so that shutdown can wait for them. WebSocket upgrades are not counted: the hub
    closes those sockets with 1001 instead."""

    def __init__(self, app: tornado.httputil.HTTPServerConnectionDelegate):
        self.app = app
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        request = _CountedRequest(self)
        request.inner = self.app.start_request(
            server_conn, _CountedConnection(request_conn, request.done)
        )
        return request

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)

    def begin(self) -> None:
        self.active += 1
        self._idle.clear()

    def end(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._idle.set()

    async def drained(self, within: float) -> bool:
        """True once no request is in flight, False if some still are after `within` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
            return True
        except TimeoutError:
            return False


class _CountedRequest(tornado.httputil.HTTPMessageDelegate):
    def __init__(self, tracker: InFlight):
        self.tracker = tracker
        # Set by InFlight.start_request as soon as this object exists.
        self.inner: tornado.httputil.HTTPMessageDelegate
        self.counted = False

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        # start_request runs before a keep-alive connection's next request exists; counting
        # starts when one does.
        if headers.get("Upgrade", "").lower() != "websocket":
            self.counted = True
            self.tracker.begin()
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.done()
        self.inner.on_connection_close()

    def done(self) -> None:
        if self.counted:
            self.counted = False
            self.tracker.end()


class _CountedConnection(tornado.httputil.HTTPConnection):
    """The request's connection as its handler sees it: finishing the response ends the count."""

    def __init__(self, conn: tornado.httputil.HTTPConnection, on_finish: Callable[[], None]):
        self._conn = conn
        self._on_finish = on_finish

    # HTTPConnection's interface, delegated to the real connection (the base class is abstract).
    def write_headers(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        return self._conn.write_headers(start_line, headers, chunk)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self._conn.write(chunk)

    def finish(self) -> None:
        try:
            self._conn.finish()
        finally:
            self._on_finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
