"""The migration runner: sql/migrations/NNNN_name.sql applied in order, each in its own
transaction together with its schema_migrations row (name + sha256), the whole run under an
advisory lock so concurrent starters apply each file once. Roll forward only."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from expertconnect.resources import MIGRATIONS_DIR

log = logging.getLogger(__name__)

# Arbitrary but fixed: the key every ExpertConnect process locks while migrating.
ADVISORY_LOCK_KEY = 7_310_551_001


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    files = sorted(p for p in directory.glob("*.sql"))
    for p in files:
        prefix = p.name.split("_", 1)[0]
        if not (len(prefix) == 4 and prefix.isdigit()):
            raise MigrationError(f"migration {p.name}: name must start with a 4-digit number")
    return [Migration(p.name, p.read_text()) for p in files]


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


async def _applied(conn: asyncpg.Connection, *, create: bool = True) -> dict[str, str]:
    """Applied migrations by name -> checksum. create=False reads only: a database that was
    never migrated has none, and is left as it is."""
    if create:
        await conn.execute(_CREATE_TABLE)
    elif await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    rows = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
    return {r["name"]: r["checksum"] for r in rows}


def _check_edited(known: list[Migration], applied: dict[str, str]) -> None:
    by_name = {m.name: m for m in known}
    for name, checksum in applied.items():
        m = by_name.get(name)
        if m is not None and m.checksum != checksum:
            raise MigrationError(
                f"migration {name} was edited after it was applied (checksum differs); "
                "add a new migration instead of changing an applied one"
            )


async def status(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR
) -> list[tuple[str, str]]:
    """[(name, 'applied' | 'pending' | 'edited')] for every known migration. Writes nothing."""
    applied = await _applied(conn, create=False)
    result = []
    for m in discover(directory):
        if m.name not in applied:
            result.append((m.name, "pending"))
        elif applied[m.name] != m.checksum:
            result.append((m.name, "edited"))
        else:
            result.append((m.name, "applied"))
    return result


async def apply_pending(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied. Uses session state (the
    advisory lock), so it takes a dedicated connection, never a pooled one."""
    known = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        applied = await _applied(conn)
        _check_edited(known, applied)
        done = []
        for m in known:
            if m.name in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %s", m.name)
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
