"""The FastAPI peer: what a user would pick instead, on uvicorn (uvloop, httptools, one worker),
with the server's pool settings (no reset query on release, a FIFO semaphore before acquire).

Two groups of endpoints:
- /floor/get and /floor/post: floor_tornado.py's two endpoints, the same code in FastAPI.
- The project's own paths, written the way a FastAPI user would write them: a `Depends`
  that decodes the JWT and reads the user (with the revocation check, as the project's
  query module does), pydantic request and response models, and the SQL text of the project's
  query modules (expertconnect/db/queries/) copied as it was on 2026-11-28. The copy is on
  purpose: the peer is a fixed reference while the project's queries change.
      GET  /api/users/me/                    users.get_user_with_live_token
      GET  /api/meetings/                    meetings.list_meetings_of_participant
      GET  /api/messages/?with_user=         messages.list_conversation
      GET  /api/experts/?q=                  experts.search_experts
      POST /api/messages/                    messages.insert_message (message + notification,
                                             one statement; no event log, no live push)

    bench/.venv/bin/python bench/floor_fastapi.py PORT DSN JWT_SECRET
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import uuid
from typing import Annotated

import asyncpg
import jwt
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, PlainSerializer

POOL_MIN, POOL_MAX, COMMAND_TIMEOUT = 2, 10, 10.0
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]
NO_CURSOR = 2**63 - 1
PAGE_DEFAULT, PAGE_MAX = 50, 200

SELECT_USER = """SELECT id, username, email, first_name, last_name, bio, profile_picture,
                        date_joined FROM users WHERE id = $1"""
INSERT_MESSAGE = """INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                    RETURNING id, sender_id, receiver_id, content, is_read, created_at"""

# ------------------------------------------------------------ the project's SQL, copied
_PROFILE_COLUMNS = (
    "id, username, email, first_name, last_name, bio, profile_picture, date_joined, timezone"
)
USER_WITH_LIVE_TOKEN = f"""SELECT {_PROFILE_COLUMNS} FROM users
            WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2)"""

_MEETING_FIELDS = """m.id, m.title, m.description,
    m.requester_id, user_display_name(r) AS requester_name,
    m.expert_id, user_display_name(e) AS expert_name,
    m.status, m.category_id, c.name AS category_name,
    m.scheduled_start, m.scheduled_end, m.created_at"""
_MEETING_JOINS = """JOIN users r ON r.id = m.requester_id
    JOIN users e ON e.id = m.expert_id
    JOIN categories c ON c.id = m.category_id"""
LIST_MEETINGS = f"""SELECT {_MEETING_FIELDS}
            FROM ((SELECT * FROM meetings
                   WHERE requester_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                   ORDER BY id DESC LIMIT $4)
                  UNION ALL
                  (SELECT * FROM meetings
                   WHERE expert_id = $1 AND id < $3 AND ($2::text IS NULL OR status = $2)
                   ORDER BY id DESC LIMIT $4)
                  ORDER BY id DESC LIMIT $4) m
            {_MEETING_JOINS}
            ORDER BY m.id DESC"""

_MESSAGE_FIELDS = """m.id, m.sender_id, user_display_name(s) AS sender_name, m.receiver_id,
                     user_display_name(r) AS receiver_name, m.content, m.is_read, m.created_at"""
LIST_CONVERSATION = f"""SELECT {_MESSAGE_FIELDS}
            FROM ((SELECT * FROM messages WHERE sender_id = $1 AND receiver_id = $2 AND id < $3
                   ORDER BY id DESC LIMIT $4)
                  UNION ALL
                  (SELECT * FROM messages WHERE sender_id = $2 AND receiver_id = $1 AND id < $3
                   ORDER BY id DESC LIMIT $4)
                  ORDER BY id DESC LIMIT $4) m
            JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id
            ORDER BY m.id DESC"""
_NOTIFICATION_COLUMNS = (
    "id, user_id, title, content, notification_type, related_id, is_read, created_at"
)
_NOTIFICATION_KEYS = [c.strip() for c in _NOTIFICATION_COLUMNS.split(",")]
INSERT_MESSAGE_AND_NOTIFICATION = f"""WITH m AS (
                INSERT INTO messages (sender_id, receiver_id, content) VALUES ($1, $2, $3)
                RETURNING *),
            named AS (
                SELECT {_MESSAGE_FIELDS}
                FROM m JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.receiver_id),
            n AS (
                INSERT INTO notifications (user_id, notification_type, title, content, related_id)
                SELECT receiver_id, 'new_message', $4, $5 || sender_name || $6, id FROM named
                RETURNING {_NOTIFICATION_COLUMNS})
            SELECT named.*, {", ".join(f"n.{c} AS n_{c}" for c in _NOTIFICATION_KEYS)}
            FROM named, n"""

_CARD_COLUMNS = """u.id, u.username, u.first_name, u.last_name, u.bio, u.profile_picture,
                   u.timezone, sk.skills, rv.average_rating, rv.review_count,
                   mt.completed_meetings"""
_CARD_JOINS = """
    CROSS JOIN LATERAL (
        SELECT coalesce(json_agg(json_build_object(
                   'id', s.id, 'category', s.category_id, 'category_name', c.name,
                   'skill_name', s.skill_name, 'proficiency_level', s.proficiency_level)
                   ORDER BY s.id DESC), '[]') AS skills
        FROM user_skills s JOIN categories c ON c.id = s.category_id
        WHERE s.user_id = u.id) sk
    CROSS JOIN LATERAL (
        SELECT round(avg(r.rating), 2)::float8 AS average_rating, count(*) AS review_count
        FROM reviews r WHERE r.reviewee_id = u.id) rv
    CROSS JOIN LATERAL (
        SELECT count(*) AS completed_meetings
        FROM meetings m WHERE m.expert_id = u.id AND m.status = 'completed') mt"""
_EXPERT_FILTERS = """
    EXISTS (SELECT 1 FROM user_skills s
            WHERE s.user_id = u.id AND ($1::bigint IS NULL OR s.category_id = $1))
    AND ($2::float8 IS NULL
         OR (SELECT round(avg(r.rating), 2) FROM reviews r WHERE r.reviewee_id = u.id) >= $2)
    AND ($3::timestamptz IS NULL OR (
        EXISTS (SELECT 1 FROM user_availability a
                WHERE a.user_id = u.id
                  AND a.day_of_week = extract(dow FROM $3 AT TIME ZONE u.timezone)
                  AND a.start_time <= ($3 AT TIME ZONE u.timezone)::time
                  AND a.end_time > ($3 AT TIME ZONE u.timezone)::time)
        AND NOT EXISTS (SELECT 1 FROM meetings m
                        WHERE m.expert_id = u.id AND m.status IN ('pending', 'confirmed')
                          AND m.scheduled_start <= $3 AND m.scheduled_end > $3)
        AND NOT EXISTS (SELECT 1 FROM meetings m
                        WHERE m.requester_id = u.id AND m.status IN ('pending', 'confirmed')
                          AND m.scheduled_start <= $3 AND m.scheduled_end > $3)))"""
SEARCH_EXPERTS = f"""WITH q AS (
                SELECT websearch_to_tsquery('simple', $4) AS query,
                       ARRAY(SELECT plainto_tsquery('simple', word)
                             FROM unnest(tsvector_to_array(to_tsvector('simple', $4))) AS word
                            ) AS words),
            hits AS (
                SELECT u.id,
                       (SELECT sum(ts_rank(u.search_document, w)) FROM unnest(q.words) AS w)
                           AS rank
                FROM users u CROSS JOIN q
                WHERE u.search_document @@ q.query AND {_EXPERT_FILTERS}
                ORDER BY rank DESC, u.id DESC
                LIMIT $5)
            SELECT {_CARD_COLUMNS}
            FROM hits JOIN users u ON u.id = hits.id {_CARD_JOINS}
            ORDER BY hits.rank DESC, u.id DESC"""

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


def decode(authorization: str) -> dict | None:
    _scheme, _, token = authorization.partition(" ")
    try:
        return jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError:
        return None


def user_id(request: Request) -> int | None:
    claims = decode(request.headers.get("authorization", ""))
    try:
        return int(claims["sub"]) if claims else None
    except ValueError:
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


@app.exception_handler(HTTPException)
async def _error_shape(request: Request, exc: HTTPException) -> JSONResponse:
    # The spec's error shape, as a FastAPI user matching it would write.
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


# ------------------------------------------------------------ the floor's two endpoints
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


# ------------------------------------------------------------ the project's paths, FastAPI-style
# Timestamps as the spec writes them: UTC, to the second, with a Z.
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(lambda v: v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]


class User(BaseModel):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    bio: str
    profile_picture: str
    date_joined: Timestamp
    timezone: str


class Meeting(BaseModel):
    id: int
    title: str
    description: str
    requester_id: int
    requester_name: str
    expert_id: int
    expert_name: str
    status: str
    category_id: int
    category_name: str
    scheduled_start: Timestamp
    scheduled_end: Timestamp
    created_at: Timestamp


class Message(BaseModel):
    id: int
    sender_id: int
    sender_name: str
    receiver_id: int
    receiver_name: str
    content: str
    is_read: bool
    created_at: Timestamp


class NewMessage(BaseModel):
    receiver_id: int = Field(gt=0)
    content: str = Field(min_length=1, max_length=5000)


class Skill(BaseModel):
    id: int
    category: int
    category_name: str
    skill_name: str
    proficiency_level: str


class ExpertCard(BaseModel):
    id: int
    username: str
    first_name: str
    last_name: str
    bio: str
    profile_picture: str
    timezone: str
    skills: list[Skill]
    average_rating: float | None
    review_count: int
    completed_meetings: int


async def current_user(request: Request) -> dict:
    claims = decode(request.headers.get("authorization", ""))
    if claims is None:
        raise HTTPException(401, "Invalid or expired token")
    try:
        uid, jti = int(claims["sub"]), uuid.UUID(claims["jti"])
    except ValueError:
        raise HTTPException(401, "Invalid or expired token") from None
    row = await query("fetchrow", USER_WITH_LIVE_TOKEN, uid, jti)
    if row is None:
        raise HTTPException(401, "Invalid or expired token")
    return dict(row)


CurrentUser = Annotated[dict, Depends(current_user)]


@app.get("/api/users/me/", response_model=User)
async def me(user: CurrentUser) -> dict:
    return user


@app.get("/api/meetings/", response_model=list[Meeting])
async def list_meetings(
    user: CurrentUser,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    before_id: Annotated[int | None, Query(gt=0)] = None,
) -> list:
    rows = await query("fetch", LIST_MEETINGS, user["id"], status, before_id or NO_CURSOR, limit)
    return [dict(row) for row in rows]


@app.get("/api/messages/", response_model=list[Message])
async def list_conversation(
    user: CurrentUser,
    with_user: Annotated[int, Query(gt=0)],
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    before_id: Annotated[int | None, Query(gt=0)] = None,
) -> list:
    rows = await query(
        "fetch", LIST_CONVERSATION, user["id"], with_user, before_id or NO_CURSOR, limit
    )
    return [dict(row) for row in rows]


@app.get("/api/experts/", response_model=list[ExpertCard])
async def search_experts(
    user: CurrentUser,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
) -> list:
    rows = await query("fetch", SEARCH_EXPERTS, None, None, None, q, limit)
    return [{**row, "skills": json.loads(row["skills"])} for row in rows]


@app.post("/api/messages/", response_model=Message, status_code=201)
async def send_message(user: CurrentUser, body: NewMessage) -> dict:
    try:
        row = await query(
            "fetchrow",
            INSERT_MESSAGE_AND_NOTIFICATION,
            user["id"],
            body.receiver_id,
            body.content,
            "New Message",
            "You have a new message from ",
            ".",
        )
    except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as exc:
        raise HTTPException(400, str(exc)) from None
    return dict(row)


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
