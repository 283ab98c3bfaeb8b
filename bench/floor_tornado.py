"""The reference floor: a bare Tornado app with the server's asyncpg pool settings (no reset
query on release, a FIFO semaphore in front of acquire) that decodes the same JWT and runs one
primary-key SELECT (GET /floor/get) or one INSERT (POST /floor/post), then writes JSON.

    python bench/floor_tornado.py PORT DSN JWT_SECRET
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

import asyncpg
import jwt
import tornado.httpserver
import tornado.web

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


async def main(port: int, dsn: str, secret: str) -> None:
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_MIN, max_size=POOL_MAX, command_timeout=COMMAND_TIMEOUT, reset=_no_reset
    )
    args = {"pool": pool, "fair": asyncio.Semaphore(POOL_MAX), "secret": secret}
    app = tornado.web.Application(
        [(r"/floor/get", FloorGet, args), (r"/floor/post", FloorPost, args)],
        log_function=lambda handler: None,
    )
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
