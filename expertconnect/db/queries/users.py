"""Users and revoked tokens."""

from __future__ import annotations

import datetime as dt
import uuid

from expertconnect import names
from expertconnect.db import Executor, Row, exactly_one

_PROFILE_COLUMNS = (
    "id, username, email, first_name, last_name, bio, profile_picture, date_joined, timezone, "
    "credits_per_hour"
)


async def get_user_with_live_token(conn: Executor, user_id: int, jti: uuid.UUID) -> Row | None:
    """The user, unless the token `jti` was revoked: authentication in one round trip."""
    row = await conn.fetchrow(
        f"""SELECT {_PROFILE_COLUMNS} FROM users
            WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2)""",
        user_id,
        jti,
    )
    return dict(row) if row else None


async def get_user(conn: Executor, user_id: int) -> Row | None:
    row = await conn.fetchrow(f"SELECT {_PROFILE_COLUMNS} FROM users WHERE id = $1", user_id)
    return dict(row) if row else None


async def get_login(conn: Executor, username: str) -> Row | None:
    """The account and its password hash, by username in its normalized form (NFKC, case
    folded: names.lookup_key), never PostgreSQL's lower(), which folds differently."""
    row = await conn.fetchrow(
        f"SELECT {_PROFILE_COLUMNS}, password_hash FROM users WHERE username_normalized = $1",
        names.lookup_key(username),
    )
    return dict(row) if row else None


async def exists_user(conn: Executor, user_id: int) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", user_id)


async def count_users(conn: Executor) -> int:
    """Every account (demo-data fills only a database that has none)."""
    return await conn.fetchval("SELECT count(*) FROM users")


async def insert_user(
    conn: Executor,
    *,
    username: str,
    email: str,
    password_hash: str,
    first_name: str,
    last_name: str,
) -> Row:
    """`username` and `email` as they will be shown; their compared forms are derived here, so
    no caller can store one without the other."""
    row = await conn.fetchrow(
        f"""INSERT INTO users (username, email, password_hash, first_name, last_name,
                               username_normalized, email_normalized)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_PROFILE_COLUMNS}""",
        username,
        email,
        password_hash,
        first_name,
        last_name,
        names.lookup_key(username),
        names.lookup_key(email),
    )
    return exactly_one(row)


async def update_profile(
    conn: Executor,
    user_id: int,
    *,
    first_name: str | None,
    last_name: str | None,
    bio: str | None,
    profile_picture: str | None,
    timezone: str | None = None,
    credits_per_hour: int | None = None,
) -> Row | None:
    """Set the fields given; a None leaves that field as it is. A time zone PostgreSQL does not
    know raises InvalidParameterValueError (via users_timezone_known_check)."""
    row = await conn.fetchrow(
        f"""UPDATE users SET
                first_name      = COALESCE($2, first_name),
                last_name       = COALESCE($3, last_name),
                bio             = COALESCE($4, bio),
                profile_picture = COALESCE($5, profile_picture),
                timezone        = COALESCE($6, timezone),
                credits_per_hour = COALESCE($7, credits_per_hour)
            WHERE id = $1
            RETURNING {_PROFILE_COLUMNS}""",
        user_id,
        first_name,
        last_name,
        bio,
        profile_picture,
        timezone,
        credits_per_hour,
    )
    return dict(row) if row else None


async def insert_revoked_token(
    conn: Executor, jti: uuid.UUID, user_id: int, expires_at: dt.datetime
) -> None:
    await conn.execute(
        """INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (jti) DO NOTHING""",
        jti,
        user_id,
        expires_at,
    )


async def delete_expired_revocations(conn: Executor, now: dt.datetime) -> None:
    """A revoked token past its expiry is rejected by its exp claim anyway."""
    await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < $1", now)


async def list_live_revocations(conn: Executor) -> list[Row]:
    """Revoked tokens that have not expired yet: [{"jti", "expires_at"}]."""
    rows = await conn.fetch("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > now()")
    return [dict(r) for r in rows]
