"""0008_normalized_user_names.sql on a database that already has users: the backfill, and what
happens to existing emails that are look-alikes of one another (the oldest account keeps the
email, each newer one is kept apart and reported)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from helpers import admin_dsn, migrations_around, with_database

from expertconnect import migrate
from expertconnect.localdb import ensure_database

MIGRATION = "0008_normalized_user_names.sql"
FULLWIDTH_JOHN = "\uff4a\uff4f\uff48\uff4e@example.com"


async def _users(conn, *pairs: tuple[str, str]) -> list[int]:
    return [
        await conn.fetchval(
            "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, 'x') RETURNING id",
            username,
            email,
        )
        for username, email in pairs
    ]


def test_existing_rows_are_backfilled_and_look_alike_emails_kept_apart(tmp_path):
    before, through = migrations_around(tmp_path, MIGRATION)
    admin = admin_dsn()
    name = f"expertconnect_migration_{uuid.uuid4().hex[:8]}"

    async def go():
        await ensure_database(admin, name)
        conn = await asyncpg.connect(with_database(admin, name))
        warnings: list[str] = []
        conn.add_log_listener(lambda _conn, message: warnings.append(message.message))
        try:
            await migrate.apply_pending(conn, before)
            # Rows the old schema accepted: lower() kept these three emails apart.
            john, fullwidth, ligature_owner, ligature, mixed_case = await _users(
                conn,
                ("John", "john@example.com"),
                ("john2", FULLWIDTH_JOHN),
                ("Fiona", "fi@example.com"),
                ("fiona2", "\ufb01@example.com"),
                ("Mixed.Case", "Mixed.Case@Example.COM"),
            )
            assert await migrate.apply_pending(conn, through) == [MIGRATION]
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT id, username, email, username_normalized, email_normalized FROM users"
                )
            }
            assert rows[john]["username_normalized"] == "john"
            assert rows[john]["email_normalized"] == "john@example.com"
            assert rows[mixed_case]["username_normalized"] == "mixed.case"
            assert rows[mixed_case]["email_normalized"] == "mixed.case@example.com"
            # The older account keeps the email; the newer look-alike is kept apart, named.
            assert rows[fullwidth]["email"] == FULLWIDTH_JOHN  # as typed, untouched
            assert rows[fullwidth]["email_normalized"] == (
                f"john@example.com (look-alike of user {john}, kept apart as user {fullwidth})"
            )
            assert rows[ligature_owner]["email_normalized"] == "fi@example.com"
            assert rows[ligature]["email_normalized"] == (
                f"fi@example.com (look-alike of user {ligature_owner}, "
                f"kept apart as user {ligature})"
            )
            reported = [w for w in warnings if "looks like the email of user" in w]
            assert len(reported) == 2 and f"user {fullwidth} is kept apart" in " ".join(reported)
            # The new rules hold from now on: the normalized columns are required and unique.
            try:
                await _users(conn, ("john3", "john@example.com"))
            except asyncpg.NotNullViolationError as exc:
                assert exc.column_name == "username_normalized"
            else:
                raise AssertionError("a row without its normalized columns was accepted")
            try:
                await conn.execute(
                    """INSERT INTO users (username, email, password_hash,
                                          username_normalized, email_normalized)
                       VALUES ('john3', 'JOHN@example.com', 'x', 'john3', 'john@example.com')"""
                )
            except asyncpg.UniqueViolationError as exc:
                assert exc.constraint_name == "users_email_normalized_key"
            else:
                raise AssertionError("a duplicate normalized email was accepted")
        finally:
            await conn.close()
            cleanup = await asyncpg.connect(admin)
            try:
                await cleanup.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await cleanup.close()

    asyncio.run(go())
