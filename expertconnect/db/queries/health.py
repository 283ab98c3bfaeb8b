"""The database readiness probe."""

from expertconnect.db import Executor


async def list_applied_migrations(conn: Executor) -> frozenset[str]:
    """Names of the applied migrations; answering at all shows the database is reachable."""
    rows = await conn.fetch("SELECT name FROM schema_migrations")
    return frozenset(r["name"] for r in rows)
