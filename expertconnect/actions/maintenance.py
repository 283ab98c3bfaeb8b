"""Housekeeping that runs periodically in every process; each step is safe to run in several
processes at once (SKIP LOCKED, idempotent deletes)."""

from __future__ import annotations

import datetime as dt
import logging

from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import users as users_q

log = logging.getLogger(__name__)

# Rows deleted per statement, so a purge never holds many locks or runs one long statement.
PURGE_BATCH = 5000


async def purge_expired(services) -> None:
    """Drop events past the retention window and revocations of tokens that have expired."""
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=services.config.realtime.retention_days)
    try:
        purged = 0
        while True:
            deleted = await events_q.delete_events_before(services.db, cutoff, PURGE_BATCH)
            purged += deleted
            if deleted < PURGE_BATCH:
                break
        await users_q.delete_expired_revocations(services.db, now)
        services.auth_cache.prune(now.timestamp())
    except DatabaseUnavailable as exc:
        log.warning("housekeeping skipped: %s", exc.message)
        return
    if purged:
        log.info("purged %d events older than %s", purged, cutoff.isoformat())
