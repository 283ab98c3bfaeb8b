"""The database liveness probe."""


async def ping(conn) -> None:
    await conn.fetchval("SELECT 1")
