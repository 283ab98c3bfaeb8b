"""What a user would pick instead: the floor's two endpoints in FastAPI on uvicorn (uvloop,
httptools, one worker), with the same pool settings, JWT decode and SQL as floor_tornado.py.

    bench/.venv/bin/python bench/floor_fastapi.py PORT DSN JWT_SECRET
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys

import asyncpg
import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

POOL_MIN, POOL_MAX, COMMAND_TIMEOUT = 2, 10, 10.0
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]
SELECT_USER = """SELECT id, username, email, first_name, last_name, bio, profile_picture,
                        date_joined FROM users WHERE id = $1"""
INSERT_MESSAGE = """INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                    RETURNING id, sender_id, receiver_id, content, is_read, created_at"""

DSN, SECRET = sys.argv[2], sys.argv[3]
state: dict = {}


async def _no_reset(conn) -> None:
    pass


def _default(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(type(value).__name__)


def reply(status: int, payload) -> Response:
    return Response(
        json.dumps(payload, default=_default, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )


def user_id(request: Request) -> int | None:
    _scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS}
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None


async def query(method: str, sql: str, *args):
    async with state["fair"]:
        async with state["pool"].acquire() as conn:
            return await getattr(conn, method)(sql, *args)


@contextlib.asynccontextmanager
async def lifespan(app):
    state["pool"] = await asyncpg.create_pool(
        DSN, min_size=POOL_MIN, max_size=POOL_MAX, command_timeout=COMMAND_TIMEOUT, reset=_no_reset
    )
    state["fair"] = asyncio.Semaphore(POOL_MAX)
    yield
    await state["pool"].close()


app = FastAPI(lifespan=lifespan)


@app.get("/floor/get")
async def floor_get(request: Request) -> Response:
    uid = user_id(request)
    if uid is None:
        return reply(401, {"error": "Invalid or expired token"})
    row = await query("fetchrow", SELECT_USER, uid)
    if row is None:
        return reply(404, {"error": "User not found"})
    return reply(200, dict(row))


@app.post("/floor/post")
async def floor_post(request: Request) -> Response:
    uid = user_id(request)
    if uid is None:
        return reply(401, {"error": "Invalid or expired token"})
    body = json.loads(await request.body())
    row = await query(
        "fetchrow", INSERT_MESSAGE, uid, int(body["receiver_id"]), str(body["content"])
    )
    return reply(201, dict(row))


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
