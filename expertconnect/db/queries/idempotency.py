"""Stored answers of requests sent with an Idempotency-Key (idempotency_keys)."""

from __future__ import annotations

import datetime as dt

from expertconnect.db import Executor, Row, exactly_one


async def get_claimed_key(conn: Executor, user_id: int, key: str) -> Row:
    """Lock the user's key for this transaction, without waiting, and read its stored answer:
    {"locked", "request_hash", "status", "body"}; the last three are None when nothing is
    stored, and all of them when not locked (another transaction holds the key). See
    claim_idempotency_key in 0010_idempotency_keys.sql for why this is a function."""
    row = await conn.fetchrow("SELECT * FROM claim_idempotency_key($1, $2)", user_id, key)
    return exactly_one(row)


async def insert_answer(
    conn: Executor, user_id: int, key: str, request_hash: bytes, status: int, body: str
) -> None:
    """Store the answer of the work this transaction did under the key (which it holds)."""
    await conn.execute(
        """INSERT INTO idempotency_keys (user_id, key, request_hash, status, body)
           VALUES ($1, $2, $3, $4, $5)""",
        user_id,
        key,
        request_hash,
        status,
        body,
    )


async def delete_answers_before(conn: Executor, cutoff: dt.datetime, batch: int) -> int:
    """Prune up to `batch` answers stored before `cutoff`, oldest first; returns how many.
    SKIP LOCKED: processes sweeping at once take different rows."""
    return await conn.fetchval(
        """WITH doomed AS (
               SELECT user_id, key FROM idempotency_keys WHERE created_at < $1
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),
           gone AS (
               DELETE FROM idempotency_keys k USING doomed d
               WHERE k.user_id = d.user_id AND k.key = d.key
               RETURNING 1)
           SELECT count(*) FROM gone""",
        cutoff,
        batch,
    )
