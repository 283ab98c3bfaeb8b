"""What the database holds as a whole: the readiness probe, and whether it is empty."""

from expertconnect.db import Executor


async def list_applied_migrations(conn: Executor) -> frozenset[str]:
    """Names of the applied migrations; answering at all shows the database is reachable."""
    rows = await conn.fetch("SELECT name FROM schema_migrations")
    return frozenset(r["name"] for r in rows)


async def exists_any_table(conn: Executor) -> bool:
    """Does the database hold any table of its own (restore refuses to overwrite one)?"""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public')")
    )
