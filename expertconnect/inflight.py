"""Counting in-flight HTTP requests, so that shutdown can let them finish before it closes
connections."""

from __future__ import annotations

import asyncio

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

    def start_request(self, server_conn, request_conn):
        request = _CountedRequest(self)
        request.inner = self.app.start_request(
            server_conn, _CountedConnection(request_conn, request.done)
        )
        return request

    def on_close(self, server_conn) -> None:
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
        self.inner: tornado.httputil.HTTPMessageDelegate | None = None
        self.counted = False

    def headers_received(self, start_line, headers):
        # start_request runs before a keep-alive connection's next request exists; counting
        # starts when one does.
        if headers.get("Upgrade", "").lower() != "websocket":
            self.counted = True
            self.tracker.begin()
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk):
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


class _CountedConnection:
    """The request's connection as its handler sees it: finishing the response ends the count."""

    def __init__(self, conn, on_finish):
        self._conn = conn
        self._on_finish = on_finish

    def finish(self) -> None:
        try:
            self._conn.finish()
        finally:
            self._on_finish()

    def __getattr__(self, name):
        return getattr(self._conn, name)
