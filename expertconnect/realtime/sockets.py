"""The WebSocket endpoints: /ws/ (everything for the user), /ws/notifications/ and
/ws/chat/{receiver_id}/. Authenticated before the upgrade; each socket replays what it missed
(?last_event_id=N) and then receives live events in sequence order, with no gap and no duplicate:
the order is the Sequencer's (realtime/sequencer.py), the reads of the log and the sending are
done here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import tornado.iostream
import tornado.web
import tornado.websocket

from expertconnect import wire
from expertconnect.actions import messages as messages_actions
from expertconnect.actions.errors import ActionError
from expertconnect.auth import InvalidToken, TokenClaims
from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import users as users_q
from expertconnect.errors import (
    NO_CREDENTIALS,
    ApiError,
    TooManyRequests,
    ValidationError,
    as_api_error,
)
from expertconnect.ids import parse_id
from expertconnect.observability import RequestContextHandler
from expertconnect.realtime import events
from expertconnect.realtime.events import Event
from expertconnect.realtime.sequencer import PUSHED, REPLAYED, Sequencer
from expertconnect.services import Services
from expertconnect.validation import Form

log = logging.getLogger(__name__)

# Close codes in the private 4000-4999 range, after the HTTP statuses they mirror.
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4408


class EventSocket(tornado.websocket.WebSocketHandler, RequestContextHandler):
    """Base of the three endpoints. Subclasses say which event types they carry."""

    event_types: tuple[str, ...] = ()

    def initialize(self, services: Services) -> None:
        self.services = services
        self.user_id: int | None = None
        self.claims: TokenClaims | None = None
        self.peer_id: int | None = None
        # Made in open(), once last_event_id is known.
        self.sequencer: Sequencer | None = None
        self._expiry_timer: asyncio.TimerHandle | None = None
        # A catch-up started by a live event; kept so the task is not garbage-collected.
        self._catch_up_task: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ handshake
    def check_origin(self, origin: str) -> bool:
        """Only called when a browser sends Origin; non-browser clients send none."""
        allowed = self.services.config.realtime.allowed_origins
        if allowed:
            return origin in allowed
        return urlsplit(origin).netloc.lower() == self.request.headers.get("Host", "").lower()

    def set_default_headers(self) -> None:
        # Until the upgrade this is an HTTP endpoint like the others (see finish()).
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Request-ID", self.request_id)

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"error": message})

    def finish(self, chunk: str | bytes | dict | None = None) -> asyncio.Future[None]:
        """Tornado refuses some handshakes itself (no Upgrade header, a foreign Origin, an
        unknown protocol version) with a plain-text body: send those as the API's JSON error."""
        if self.get_status() >= 400 and not isinstance(chunk, dict):
            chunk = {"error": chunk if isinstance(chunk, str) and chunk else self._reason}
        if isinstance(chunk, dict):
            self.set_header("Content-Type", "application/json; charset=utf-8")
            chunk = wire.dumps(chunk)
        return super().finish(chunk)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = "Internal server error" if status_code >= 500 else self._reason
        if isinstance(exc, tornado.web.HTTPError) and status_code < 500 and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.finish({"error": message})

    def _query_text(self, name: str) -> str | None:
        """A query argument as sent (the last one if repeated), or None if absent or not
        UTF-8. Unlike get_query_argument() this neither strips characters nor raises."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            return None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        token = (self._query_text("token") or "").strip()
        if not token:
            return self._refuse(401, NO_CREDENTIALS)  # REST's answer to a missing token
        try:
            claims = self.services.tokens.decode(token)
        except InvalidToken:
            return self._refuse(401, "Invalid or expired token")
        # A handshake is a request like any REST call: it draws from the user's bucket
        # (checked where REST checks it, after the token and before the user lookup).
        decision = self.services.limiters.default.hit(claims.user_id)
        for name, value in decision.headers().items():
            self.set_header(name, value)
        if not decision.allowed:
            self.services.metrics.rate_limited.labels("default").inc()
            refusal = TooManyRequests(decision.headers())
            return self._refuse(refusal.status, refusal.message)
        try:
            user = await self.services.auth_cache.user_for_token(claims.user_id, claims.jti)
            if user is None:
                return self._refuse(401, "Invalid or expired token")
            self.user_id, self.claims, self.user = claims.user_id, claims, user
            self.request_context.user_id = claims.user_id
            await self.prepare_socket(*args)
        except (ApiError, DatabaseUnavailable) as exc:
            answer = as_api_error(exc)
            return self._refuse(answer.status, answer.message)
        if "last_event_id" in self.request.query_arguments:
            self._resume_from = parse_id(self._query_text("last_event_id"), minimum=0)
            if self._resume_from is None:
                return self._refuse(400, "last_event_id must be a non-negative integer")
        else:
            # A fresh connection starts at the user's head as of now, before the upgrade: an
            # event committed between the client seeing the 101 and open() registering the
            # socket is then replayed from the log, not skipped as "before we connected".
            try:
                self._resume_from = await events_q.get_head(self.services.db, claims.user_id)
            except DatabaseUnavailable as exc:
                return self._refuse(503, exc.message)
        await super().get(*args, **kwargs)

    async def prepare_socket(self, *args: str) -> None:
        """Subclass lookups before the upgrade (they may raise ApiError or
        DatabaseUnavailable)."""

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    # ------------------------------------------------------------------ lifecycle
    async def open(self, *args: str) -> None:
        # Authenticated in get() and upgraded: the hub knows sockets by user and token.
        assert self.user_id is not None and self.claims is not None
        connection = self.ws_connection
        assert connection is not None and connection.stream is not None
        connection.stream.max_write_buffer_size = self.services.config.realtime.max_buffered_bytes
        self.sequencer = Sequencer(
            self._resume_from,
            lambda event: self.wants(event.event_type, event.peer_id),
            count=self._count_frame,
        )
        self.services.hub.add(self.user_id, self)
        # The token was found unrevoked in get(), but the handshake may have awaited since
        # (the user's row, a chat's receiver), and a logout sweeps only the sockets already in
        # the hub. So it is checked again now that this socket is in the hub; with logout in
        # this process (revocation committed, then auth_cache.token_revoked() and
        # hub.close_token() with no await between them) either:
        # - token_revoked() ran before this check: the check sees it and closes the socket; or
        # - it runs after: so does close_token(), which finds this socket in the hub.
        # With logout in another process (realtime.backend: postgres), that process commits
        # the revocation, whose trigger NOTIFYs it on the AUTH channel, and then NOTIFYs the
        # logout on CONTROL; this process hears both in commit order. The check answers from
        # the auth cache without awaiting while the cache hears every change: the AUTH
        # notification arrived before it (closed here) or after it, and then so does CONTROL,
        # whose close_token() finds this socket. Not hearing (LISTEN down, or cache off), the
        # check reads the database: a revocation committed before that read is seen; one
        # committed after is followed by a CONTROL notification (or, if LISTEN is down then,
        # by the relay closing every socket with 1012 when it is back, and the reconnect is
        # refused), which finds this socket in the hub.
        if not await self.services.auth_cache.still_valid(self.user_id, self.claims.jti):
            self.close(CLOSE_UNAUTHORIZED, "Logged out")
            return
        remaining = self.claims.expires_at - time.time()
        self._expiry_timer = asyncio.get_running_loop().call_later(
            max(0.0, remaining), self.close, CLOSE_UNAUTHORIZED, "Token expired"
        )
        # Registered before reading the log: anything committed from here on is either in the
        # read or arrives live (and is held until the read is done).
        await self._catch_up()

    def on_close(self) -> None:
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        if self.user_id is not None:
            self.services.hub.remove(self.user_id, self)

    @property
    def token_jti(self) -> uuid.UUID | None:
        return self.claims.jti if self.claims else None

    # ------------------------------------------------------------------ delivery
    def wants(self, event_type: str, peer_id: int | None) -> bool:
        return event_type in self.event_types

    def deliver(self, event: Event) -> bool:
        """Called by the hub for every committed event of this user, in any order."""
        if self._closed or self.sequencer is None:
            return False
        for frame in self.sequencer.on_live(event):
            if not self._send(frame):
                return False
        if self.sequencer.read_needed:
            # A gap: the log has the missing events. (While a catch-up runs, no read is
            # needed: live events are held until it ends.)
            self._catch_up_task = asyncio.create_task(self._catch_up())
        return True

    def _count_frame(self, kind: str) -> None:
        metrics = self.services.metrics
        if kind == PUSHED:
            metrics.events_pushed.inc()
        elif kind == REPLAYED:
            metrics.events_replayed.inc()
        else:
            metrics.resync_required.inc()

    def _send(self, frame: dict) -> bool:
        try:
            self.write_message(wire.dumps(frame))
            return True
        except tornado.iostream.StreamBufferFullError:
            log.info("closing slow socket of user %s: send buffer full", self.user_id)
            # Lift the cap for the few bytes of the close frame; Tornado aborts the connection
            # if the client does not answer the close in time. (write_message raised: the
            # socket is upgraded.)
            connection = self.ws_connection
            assert connection is not None and connection.stream is not None
            connection.stream.max_write_buffer_size = None
            self.close(CLOSE_TOO_SLOW, "Too slow: send buffer full")
        except tornado.websocket.WebSocketClosedError:
            pass
        self._closed = True
        return False

    async def _catch_up(self) -> None:
        """Do the reads of the event log the sequencer asks for, sending the frames it answers,
        until it is live again."""
        assert self.sequencer is not None and self.user_id is not None
        types = list(self.event_types)
        try:
            while (read := self.sequencer.next_read()) is not None:
                page = await events_q.list_events_after(
                    self.services.db, self.user_id, read.after, types, self.peer_id, read.limit
                )
                frames = self.sequencer.on_page(
                    page["head"],
                    page["purged_through"],
                    [Event.from_row(row) for row in page["events"]],
                )
                for frame in frames:
                    if not self._send(frame):
                        return
        except DatabaseUnavailable:
            self.close(1011, "Database unavailable")

    # ------------------------------------------------------------------ inbound
    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        self._send(events.error_frame("This socket does not accept messages"))
        return None  # handled at once (ChatSocket's is a coroutine)


class UserStreamSocket(EventSocket):
    """/ws/ : every event of the user."""

    event_types = (events.MESSAGE_RECEIVE, events.NOTIFICATION_RECEIVE, events.MESSAGE_READ)


class NotificationSocket(EventSocket):
    """/ws/notifications/ : notification.receive only."""

    event_types = (events.NOTIFICATION_RECEIVE,)


class ChatSocket(EventSocket):
    """/ws/chat/{receiver_id}/ : one conversation; the client sends message.send frames."""

    event_types = (events.MESSAGE_RECEIVE, events.MESSAGE_READ)

    async def prepare_socket(self, *args: str) -> None:
        (receiver_id,) = args  # the route's one group
        peer_id = parse_id(receiver_id)
        if peer_id is not None and await users_q.exists_user(self.services.db, peer_id):
            self.peer_id = peer_id

    async def open(self, *args: str) -> None:
        if self.peer_id is None:
            self.close(CLOSE_NOT_FOUND, "Receiver not found")
            return
        await super().open(*args)

    def wants(self, event_type: str, peer_id: int | None) -> bool:
        return event_type in self.event_types and peer_id == self.peer_id

    async def on_message(self, message: str | bytes) -> None:
        if self.user_id is None or self.peer_id is None or self.ws_connection is None:
            # Closed by the server: open() found no receiver, or a logout or an expired token
            # closed it. Tornado still hands over the frames the client sent before it
            # answered the close; there is no one to send them for.
            return
        try:
            frame = wire.loads(
                message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
            )
        except (wire.MalformedJSON, UnicodeEncodeError):
            self._send(events.error_frame("Malformed JSON"))
            return
        if not isinstance(frame, dict) or frame.get("type") != "message.send":
            self._send(events.error_frame('Unknown frame type: expected "message.send"'))
            return
        if self.peer_id == self.user_id:
            self._send(events.error_frame("You cannot send a message to yourself"))
            return
        decision = self.services.limiters.default.hit(self.user_id)
        if not decision.allowed:
            self.services.metrics.rate_limited.labels("default").inc()
            self._send(
                events.error_frame(f"Rate limit exceeded; retry in {decision.retry_after} s")
            )
            return
        form = Form(frame)
        content = form.string(
            "content", max_length=self.services.config.realtime.max_message_length
        )
        client_msg_id = form.string(
            "client_msg_id", required=False, max_length=messages_actions.CLIENT_MSG_ID_MAX
        )
        try:
            form.validate()
            sent = await messages_actions.send_message(
                self.services,
                self.user_id,
                self.peer_id,
                form.valid(content),
                client_msg_id=client_msg_id,
            )
            if sent.repeated:
                # A retry: nothing was stored; this socket gets the original's frame again.
                self._send(
                    sent.echo
                    or events.error_frame(
                        f"client_msg_id already used for message {sent.message['id']}"
                    )
                )
        except (ApiError, ActionError, DatabaseUnavailable) as exc:
            answer = as_api_error(exc)
            if answer.status == 401:
                # The user was deleted while the socket was open: it authenticates no more.
                self.close(CLOSE_UNAUTHORIZED, answer.message)
            elif isinstance(answer, ValidationError):
                problems = "; ".join(
                    f"{field}: {msg}" for field, msgs in answer.errors.items() for msg in msgs
                )
                self._send(events.error_frame(problems))
            else:
                self._send(events.error_frame(answer.message))


ROUTES = [
    (r"/ws/", UserStreamSocket),
    (r"/ws/notifications/", NotificationSocket),
    (r"/ws/chat/(\d{1,19})/", ChatSocket),
]
