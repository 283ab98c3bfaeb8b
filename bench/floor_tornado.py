"""The reference floor: a bare Tornado app with the server's asyncpg pool settings (no reset
query on release, a FIFO semaphore in front of acquire) that decodes the same JWT and runs one
primary-key SELECT (GET /floor/get) or one INSERT (POST /floor/post), then writes JSON.

The WebSocket floor, on the same URLs as the server's so bench/ws_load.py runs unchanged
against either: /ws/?token= registers the user's socket; /ws/chat/{peer}/?token= takes
{"type": "message.send", "content"} frames, inserts each into messages (one INSERT, committed)
and then writes {"type": "message.receive", "message": row} to the peer's /ws/ sockets.
Nothing else: no event log, no notification, no copy to the sender.

    python bench/floor_tornado.py PORT DSN JWT_SECRET
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import resource
import sys

import asyncpg
import jwt
import tornado.httpserver
import tornado.web
import tornado.websocket

POOL_MIN, POOL_MAX, COMMAND_TIMEOUT = 2, 10, 10.0
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]
SELECT_USER = """SELECT id, username, email, first_name, last_name, bio, profile_picture,
                        date_joined FROM users WHERE id = $1"""
INSERT_MESSAGE = """INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                    RETURNING id, sender_id, receiver_id, content, is_read, created_at"""


async def _no_reset(conn) -> None:
    pass


def _default(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(type(value).__name__)


class Floor(tornado.web.RequestHandler):
    def initialize(self, pool, fair, secret) -> None:
        self.pool, self.fair, self.secret = pool, fair, secret

    def user_id(self) -> int | None:
        _scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS}
            )
            return int(claims["sub"])
        except (jwt.PyJWTError, ValueError):
            return None

    def reply(self, status: int, payload) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload, default=_default, separators=(",", ":")))

    async def query(self, method: str, sql: str, *args):
        async with self.fair:
            async with self.pool.acquire() as conn:
                return await getattr(conn, method)(sql, *args)


class FloorGet(Floor):
    async def get(self) -> None:
        user_id = self.user_id()
        if user_id is None:
            return self.reply(401, {"error": "Invalid or expired token"})
        row = await self.query("fetchrow", SELECT_USER, user_id)
        if row is None:
            return self.reply(404, {"error": "User not found"})
        self.reply(200, dict(row))


class FloorPost(Floor):
    async def post(self) -> None:
        user_id = self.user_id()
        if user_id is None:
            return self.reply(401, {"error": "Invalid or expired token"})
        body = json.loads(self.request.body)
        row = await self.query(
            "fetchrow", INSERT_MESSAGE, user_id, int(body["receiver_id"]), str(body["content"])
        )
        self.reply(201, dict(row))


def token_user_id(token: str, secret: str) -> int | None:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS}
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None


class StreamSocket(tornado.websocket.WebSocketHandler):
    """/ws/: where a user's messages are pushed."""

    def initialize(self, pool, fair, secret, sockets) -> None:
        self.secret, self.sockets = secret, sockets
        self.user_id = None

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.user_id = token_user_id(self.get_query_argument("token", ""), self.secret)
        if self.user_id is None:
            self.close(4401, "Invalid or expired token")
            return
        self.sockets.setdefault(self.user_id, set()).add(self)

    def on_close(self) -> None:
        self.sockets.get(self.user_id, set()).discard(self)


class ChatSocket(tornado.websocket.WebSocketHandler):
    """/ws/chat/{peer}/: every message.send frame is stored, then pushed to the peer."""

    def initialize(self, pool, fair, secret, sockets) -> None:
        self.pool, self.fair, self.secret, self.sockets = pool, fair, secret, sockets
        self.user_id = self.peer_id = None

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, peer: str) -> None:
        self.user_id = token_user_id(self.get_query_argument("token", ""), self.secret)
        self.peer_id = int(peer)
        if self.user_id is None:
            self.close(4401, "Invalid or expired token")

    async def on_message(self, raw) -> None:
        frame = json.loads(raw)
        if frame.get("type") != "message.send":
            return
        async with self.fair:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    INSERT_MESSAGE, self.user_id, self.peer_id, str(frame["content"])
                )
        text = json.dumps(
            {"type": "message.receive", "message": dict(row)},
            default=_default,
            separators=(",", ":"),
        )
        for socket in list(self.sockets.get(self.peer_id, ())):
            socket.write_message(text)


async def main(port: int, dsn: str, secret: str) -> None:
    # A socket per WebSocket client: the soft descriptor limit may be 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_MIN, max_size=POOL_MAX, command_timeout=COMMAND_TIMEOUT, reset=_no_reset
    )
    args = {"pool": pool, "fair": asyncio.Semaphore(POOL_MAX), "secret": secret}
    sockets: dict[int, set[StreamSocket]] = {}
    app = tornado.web.Application(
        [
            (r"/floor/get", FloorGet, args),
            (r"/floor/post", FloorPost, args),
            (r"/ws/", StreamSocket, {**args, "sockets": sockets}),
            (r"/ws/chat/(\d+)/", ChatSocket, {**args, "sockets": sockets}),
        ],
        log_function=lambda handler: None,
    )
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
